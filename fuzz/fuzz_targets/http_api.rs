#![no_main]
use std::sync::OnceLock;

use bessmon::fuzzing::Api;

static API: OnceLock<Api> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| API.get_or_init(Api::start).request(data));
