//! The fuzz targets of `fuzz/` on the stable toolchain: every seed of each
//! corpus, the regression inputs of crashes found (`fuzz/regressions/`), then
//! random inputs and random edits of the seeds. libFuzzer finds more, given
//! time (README: Fuzzing); this catches a regression in CI without it.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bessmon::fuzzing::{self, Api, ModbusReplies};
use proptest::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let s = files(&root().join("corpus").join(target));
    assert!(
        !s.is_empty(),
        "no seed corpus for {target} in fuzz/corpus/{target}"
    );
    s
}

/// Seeds, regressions, then `cases` inputs: half random bytes, half seeds
/// with bytes flipped, inserted, deleted or spliced from another seed.
/// `accepted` seeds at least must pass the target's validation, so that the
/// code behind it is reached (all of them when `None`).
fn exercise(target: &str, cases: u32, accepted: Option<usize>, run: impl Fn(&[u8]) -> bool) {
    let corpus = seeds(target);
    let passed = corpus.iter().filter(|s| run(s)).count();
    let want = accepted.unwrap_or(corpus.len());
    assert!(
        passed >= want,
        "{target}: only {passed} of {} seeds pass validation (want {want})",
        corpus.len()
    );
    for input in &files(&root().join("regressions").join(target)) {
        run(input);
    }
    let n = corpus.len();
    let edits = proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..12);
    let input = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (0..n, 0..n, edits).prop_map(move |(a, b, edits)| {
            let (a, b) = (&corpus[a], &corpus[b]);
            let mut v = a.clone();
            for (op, at, byte) in edits {
                let at = if v.is_empty() { 0 } else { at % v.len() };
                match op % 4 {
                    0 if !v.is_empty() => v[at] ^= 1 << (byte % 8),
                    1 => v.insert(at, byte),
                    2 if !v.is_empty() => {
                        v.remove(at);
                    }
                    _ => {
                        let from = (byte as usize * 7) % b.len().max(1);
                        let piece = &b[from..b.len().min(from + 16)];
                        v.splice(at..at, piece.iter().copied());
                    }
                }
            }
            v
        }),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&input, |data| {
            run(&data);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("fuzz target {target}: {e}"));
}

fn crate_profiles() -> usize {
    bessmon::bundled::PROFILES.len()
}

#[test]
fn modbus_replies() {
    static R: OnceLock<ModbusReplies> = OnceLock::new();
    let r = R.get_or_init(|| {
        ModbusReplies::bundled_and(&[include_str!("data/profiles/test-all-types.toml")])
    });
    assert_eq!(r.profiles(), crate_profiles() + 1);
    exercise("modbus_reply", 20_000, None, |d| {
        r.run(d);
        true
    });
}

#[test]
fn profile_files() {
    exercise("profile_file", 1000, None, fuzzing::profile_file);
}

#[test]
fn tariff_files() {
    exercise("tariff_file", 500, None, fuzzing::tariff_file);
}

#[test]
fn configurations() {
    exercise("config", 500, None, fuzzing::config);
}

#[test]
fn replay_histories() {
    exercise("replay_csv", 300, None, fuzzing::replay_csv);
}

#[test]
fn spool_records() {
    exercise("spool_record", 20_000, None, fuzzing::spool_record);
}

#[test]
fn periods() {
    exercise("period", 20_000, Some(4), fuzzing::period);
}

#[test]
fn http_api_targets() {
    let api = Api::start();
    exercise("http_api", 1000, None, |d| {
        api.request(d);
        true
    });
}
