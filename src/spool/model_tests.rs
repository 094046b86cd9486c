//! The spool checked step by step against a model small enough to be obviously
//! right: per sink, an ordered map from sequence number to record.
//!
//! The operations are what the daemon does to a spool, in any order: batches
//! spanning several sinks, acknowledgements out of order and in batches (some
//! for entries already gone), reads from any point, a clean reopen, and a crash
//! between two operations (the file as it is on disk at that moment, opened
//! with no clean shutdown). Time is the records' own timestamps, which the test
//! sets, so `max_age` eviction needs no wall clock.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use tempfile::TempDir;

use super::{Limits, Record, Spool, Stats, FILE};

const SINKS: [&str; 3] = ["mqtt", "influx", "third"];
const LIMITS: Limits = Limits {
    max_bytes: 600,
    max_age: Duration::from_millis(90_000),
};

#[derive(Debug, Clone)]
enum Op {
    /// Records as (sink, payload size, milliseconds the clock moved first; a
    /// negative step is a clock set back).
    Append(Vec<(usize, usize, i64)>),
    /// Acknowledge the held entries at these positions (modulo the count), in
    /// this order, plus `stale` sequence numbers that are no longer held.
    Ack {
        sink: usize,
        picks: Vec<usize>,
        stale: usize,
    },
    Read {
        sink: usize,
        skip: u64,
        max: usize,
    },
    Reopen,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    // Whole seconds, so records land exactly on the age cutoff often enough.
    let step = prop_oneof![8 => 0i64..20, 1 => -30i64..0].prop_map(|s| s * 1_000);
    let record = (0..SINKS.len(), 0usize..120, step);
    prop_oneof![
        4 => proptest::collection::vec(record, 1..8).prop_map(Op::Append),
        3 => (0..SINKS.len(), proptest::collection::vec(0usize..64, 0..6), 0usize..3)
            .prop_map(|(sink, picks, stale)| Op::Ack { sink, picks, stale }),
        1 => (0..SINKS.len(), 0u64..6, 0usize..8).prop_map(|(sink, skip, max)| Op::Read { sink, skip, max }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

#[derive(Default)]
struct SinkModel {
    next: u64,
    held: BTreeMap<u64, Record>,
    dropped: u64,
}

impl SinkModel {
    fn bytes(&self) -> u64 {
        self.held.values().map(|r| r.encode().len() as u64).sum()
    }

    fn expected_stats(&self) -> Stats {
        Stats {
            next_seq: self.next,
            first_seq: self.held.keys().next().copied().unwrap_or(self.next),
            count: self.held.len() as u64,
            bytes: self.bytes(),
            oldest_ms: self.held.values().next().map(|r| r.at_ms),
            dropped: self.dropped,
        }
    }
}

#[derive(Default)]
struct Model {
    sinks: BTreeMap<&'static str, SinkModel>,
}

impl Model {
    fn append(&mut self, batch: &[(&'static str, Record)]) {
        for (sink, r) in batch {
            let s = self.sinks.entry(sink).or_default();
            s.held.insert(s.next, r.clone());
            s.next += 1;
        }
        // The contract: age is measured against the newest record of the batch,
        // and a sink over either limit loses its oldest entries first.
        let newest = batch.iter().map(|(_, r)| r.at_ms).max().unwrap_or(0);
        let cutoff = newest - LIMITS.max_age.as_millis() as i64;
        let mut touched: Vec<&str> = batch.iter().map(|(s, _)| *s).collect();
        touched.dedup();
        for sink in touched {
            let s = self.sinks.get_mut(sink).expect("appended above");
            while let Some((&seq, head)) = s.held.iter().next() {
                if s.bytes() > LIMITS.max_bytes || head.at_ms < cutoff {
                    s.held.remove(&seq);
                    s.dropped += 1;
                } else {
                    break;
                }
            }
        }
    }

    fn ack(&mut self, sink: &str, seqs: &[u64]) {
        if let Some(s) = self.sinks.get_mut(sink) {
            for seq in seqs {
                s.held.remove(seq);
            }
        }
    }

    fn stats(&self, sink: &str) -> Stats {
        self.sinks
            .get(sink)
            .map(SinkModel::expected_stats)
            .unwrap_or_default()
    }
}

fn scratch() -> TempDir {
    // Thousands of cases commit tens of thousands of transactions: on tmpfs an
    // fsync costs nothing, and what is checked is the file's content, not the disk.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

fn check(spool: &Spool, model: &Model, step: usize, op: &Op) -> Result<(), TestCaseError> {
    for sink in SINKS {
        let held: Vec<(u64, Record)> = spool.read(sink, 0, usize::MAX).unwrap();
        let want: Vec<(u64, Record)> = model
            .sinks
            .get(sink)
            .map(|s| s.held.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default();
        prop_assert_eq!(
            &held,
            &want,
            "entries of {} after step {} ({:?})",
            sink,
            step,
            op
        );
        prop_assert_eq!(
            spool.stats(sink),
            model.stats(sink),
            "stats of {} after step {} ({:?})",
            sink,
            step,
            op
        );
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut dir = scratch();
    let mut spool = Spool::open(dir.path(), LIMITS).unwrap();
    let mut model = Model::default();
    let mut clock: i64 = 1_750_000_000_000;
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Append(records) => {
                let batch: Vec<(&'static str, Record)> = records
                    .iter()
                    .map(|&(sink, size, dt)| {
                        clock += dt;
                        let r = Record {
                            at_ms: clock,
                            key: format!("site/{sink}/{clock}"),
                            payload: vec![b'p'; size],
                        };
                        (SINKS[sink], r)
                    })
                    .collect();
                spool.append(&batch).unwrap();
                model.append(&batch);
            }
            Op::Ack { sink, picks, stale } => {
                let name = SINKS[*sink];
                let held: Vec<u64> = model
                    .sinks
                    .get(name)
                    .map(|s| s.held.keys().copied().collect())
                    .unwrap_or_default();
                let mut seqs: Vec<u64> = Vec::new();
                if !held.is_empty() {
                    seqs.extend(picks.iter().map(|p| held[p % held.len()]));
                }
                let next = model.sinks.get(name).map_or(0, |s| s.next);
                // Gone already (acknowledged or dropped), or never handed out.
                for i in 0..*stale as u64 {
                    let gone = (0..next).rev().find(|q| !held.contains(q));
                    seqs.push(gone.unwrap_or(next + 7 + i));
                }
                spool.ack(name, &seqs).unwrap();
                model.ack(name, &seqs);
            }
            Op::Read { sink, skip, max } => {
                let name = SINKS[*sink];
                let from = spool.stats(name).first_seq + skip;
                let got = spool.read(name, from, *max).unwrap();
                let want: Vec<(u64, Record)> = model
                    .sinks
                    .get(name)
                    .map(|s| {
                        s.held
                            .range(from..)
                            .take(*max)
                            .map(|(k, v)| (*k, v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                prop_assert_eq!(got, want, "read of {} from {} at step {}", name, from, step);
            }
            Op::Reopen => {
                drop(spool);
                spool = Spool::open(dir.path(), LIMITS).unwrap();
            }
            Op::Crash => {
                // The process dies: what survives is the file as the last commit
                // left it, never closed. The copy is opened; the original is
                // dropped unseen, so its clean shutdown cannot help.
                let after = scratch();
                std::fs::copy(dir.path().join(FILE), after.path().join(FILE)).unwrap();
                drop(spool);
                dir = after;
                spool = Spool::open(dir.path(), LIMITS).unwrap();
            }
        }
        check(&spool, &model, step, op)?;
    }
    Ok(())
}

fn cases() -> u32 {
    // BESSMON_SPOOL_MODEL_CASES raises the count for a long run.
    std::env::var("BESSMON_SPOOL_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn the_spool_matches_its_model_across_sinks_acks_limits_and_crashes(
        ops in proptest::collection::vec(op(), 1..30)
    ) {
        run(ops)?;
    }
}

/// Each kind of step at least once, so a strategy change cannot quietly stop
/// exercising one of them.
#[test]
fn a_fixed_sequence_covers_every_step() {
    let ops = vec![
        Op::Append(vec![(0, 10, 0), (1, 10, 5), (0, 200, 5), (2, 1, 0)]),
        Op::Ack {
            sink: 0,
            picks: vec![1, 0],
            stale: 1,
        },
        Op::Crash,
        Op::Append(vec![(0, 300, 100_000), (0, 300, 0)]),
        Op::Read {
            sink: 0,
            skip: 0,
            max: 3,
        },
        Op::Reopen,
        Op::Append(vec![(1, 5, -40_000)]),
        Op::Crash,
    ];
    run(ops).unwrap();
}
