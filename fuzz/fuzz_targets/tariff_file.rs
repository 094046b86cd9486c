#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bessmon::fuzzing::tariff_file(data);
});
