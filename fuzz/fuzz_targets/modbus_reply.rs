#![no_main]
use std::sync::OnceLock;

use bessmon::fuzzing::ModbusReplies;

// Every bundled profile, and the test profile that has every data type,
// word order, scale factor and sentinel.
static REPLIES: OnceLock<ModbusReplies> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    REPLIES
        .get_or_init(|| {
            ModbusReplies::bundled_and(&[include_str!(
                "../../tests/data/profiles/test-all-types.toml"
            )])
        })
        .run(data)
});
