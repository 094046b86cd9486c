#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bessmon::fuzzing::replay_csv(data);
});
