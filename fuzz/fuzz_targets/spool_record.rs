#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bessmon::fuzzing::spool_record(data);
});
