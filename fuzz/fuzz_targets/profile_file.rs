#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bessmon::fuzzing::profile_file(data);
});
