//! A per-sink append-only queue in a redb file.
//!
//! Records are bytes with a timestamp and a key; the spool knows nothing more.
//! Appends come in batches, one transaction each. A sink reads from its oldest
//! unacknowledged entry on, and an entry is removed only when the sink
//! acknowledges it (MQTT PUBACK, HTTP 2xx), so after a crash the unacknowledged
//! tail is delivered first, in order, with its original timestamps.
//! Delivery is at least once: an entry sent but not yet acknowledged when the
//! process died is sent again.
//!
//! When a sink's queue passes `max_bytes`, or holds entries older than
//! `max_age` (measured against the newest entry's timestamp), the oldest
//! entries are dropped, counted, and reported in a log line at most once a minute.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

pub const FILE: &str = "spool.redb";

/// redb's page cache for the spool file.
const CACHE_BYTES: usize = 16 << 20;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("spool_meta");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Milliseconds since the Unix epoch: when what it carries happened.
    pub at_ms: i64,
    pub key: String,
    pub payload: Vec<u8>,
}

impl Record {
    /// The bytes stored for this record: `at_ms` (i64, big-endian), the key's
    /// length (u32, big-endian), the key, then the payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v
    }

    /// As `encode`, into `v` (cleared first), so one buffer serves a batch.
    pub fn encode_into(&self, v: &mut Vec<u8>) {
        let key = self.key.as_bytes();
        v.clear();
        v.reserve(12 + key.len() + self.payload.len());
        v.extend_from_slice(&self.at_ms.to_be_bytes());
        v.extend_from_slice(&(key.len() as u32).to_be_bytes());
        v.extend_from_slice(key);
        v.extend_from_slice(&self.payload);
    }

    /// `None` for bytes that are not a record (a damaged file): the reader
    /// skips such an entry and says so.
    pub fn decode(b: &[u8]) -> Option<Record> {
        let at_ms = i64::from_be_bytes(b.get(0..8)?.try_into().ok()?);
        let n = u32::from_be_bytes(b.get(8..12)?.try_into().ok()?) as usize;
        let key = String::from_utf8(b.get(12..12 + n)?.to_vec()).ok()?;
        Some(Record {
            at_ms,
            key,
            payload: b.get(12 + n..)?.to_vec(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_age: Duration,
}

/// A sink's queue at a glance (exported as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// The sequence number the next append gets.
    pub next_seq: u64,
    /// The oldest sequence number still held (== next_seq when empty).
    pub first_seq: u64,
    pub count: u64,
    pub bytes: u64,
    pub oldest_ms: Option<i64>,
    /// Entries dropped to stay within the limits, since the file was created.
    pub dropped: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("spool {path}: {message}")]
pub struct SpoolError {
    pub path: PathBuf,
    pub message: String,
}

pub struct Spool {
    /// `None` after an I/O error until reopened: redb refuses every operation
    /// on a database that saw one ("Previous I/O error"), so a disk that
    /// filled up and was freed again needs a fresh open. Transactions run
    /// under the read lock; reopening takes the write lock.
    db: RwLock<Option<Database>>,
    broken: AtomicBool,
    path: PathBuf,
    limits: Limits,
    stats: Mutex<HashMap<String, Stats>>,
    notify: Mutex<HashMap<String, Arc<Notify>>>,
    last_drop_log: Mutex<(Option<Instant>, u64)>,
}

fn open_db(path: &Path) -> Result<Database, String> {
    // redb caches up to 1 GiB by default, and a long outage's spool is read
    // once, front to back: the cache would only grow the daemon's RSS.
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| e.to_string())
}

/// After removals: where the queue now starts, and how old its head is.
fn refresh_head(t: &redb::Table<u64, &[u8]>, s: &mut Stats) -> Result<(), redb::StorageError> {
    match t.first()? {
        Some((k, v)) => {
            s.first_seq = k.value();
            s.oldest_ms = Record::decode(v.value()).map(|r| r.at_ms);
        }
        None => {
            s.first_seq = s.next_seq;
            s.oldest_ms = None;
        }
    }
    Ok(())
}

fn table(sink: &str) -> String {
    format!("queue:{sink}")
}

impl Spool {
    pub fn open(state_dir: &Path, limits: Limits) -> Result<Spool, SpoolError> {
        let path = state_dir.join(FILE);
        let fail = |m: String| SpoolError {
            path: path.clone(),
            message: m,
        };
        std::fs::create_dir_all(state_dir)
            .map_err(|e| fail(format!("cannot create the state directory: {e}")))?;
        let db = open_db(&path).map_err(fail)?;
        let mut stats = HashMap::new();
        {
            let txn = db.begin_read().map_err(|e| fail(e.to_string()))?;
            if let Ok(t) = txn.open_table(META) {
                for item in t.iter().map_err(|e| fail(e.to_string()))? {
                    let (k, v) = item.map_err(|e| fail(e.to_string()))?;
                    let s: Stats =
                        serde_json::from_slice(v.value()).map_err(|e| fail(e.to_string()))?;
                    stats.insert(k.value().to_string(), s);
                }
            }
        }
        Ok(Spool {
            db: RwLock::new(Some(db)),
            broken: AtomicBool::new(false),
            path,
            limits,
            stats: Mutex::new(stats),
            notify: Mutex::new(HashMap::new()),
            last_drop_log: Mutex::new((None, 0)),
        })
    }

    /// Reopens the file if an earlier operation failed.
    fn heal(&self) -> Result<(), SpoolError> {
        if !self.broken.load(Relaxed) {
            return Ok(());
        }
        let mut g = self.db.write().unwrap_or_else(|e| e.into_inner());
        if !self.broken.load(Relaxed) {
            return Ok(());
        }
        // The old handle first: redb locks the file while it is open.
        *g = None;
        *g = Some(open_db(&self.path).map_err(|m| self.fail(m))?);
        self.broken.store(false, Relaxed);
        tracing::info!("spool {}: reopened after an I/O error", self.path.display());
        Ok(())
    }

    /// Runs `f` on the open database; a failure marks it for reopening.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, SpoolError>,
    ) -> Result<T, SpoolError> {
        self.heal()?;
        let g = self.db.read().unwrap_or_else(|e| e.into_inner());
        let Some(db) = g.as_ref() else {
            return Err(self.fail("closed after an I/O error; reopened at the next operation"));
        };
        let r = f(db);
        if r.is_err() {
            self.broken.store(true, Relaxed);
        }
        r
    }

    fn fail(&self, e: impl std::fmt::Display) -> SpoolError {
        SpoolError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Woken whenever entries are appended for `sink`.
    pub fn notifier(&self, sink: &str) -> Arc<Notify> {
        self.notify
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(sink.to_string())
            .or_default()
            .clone()
    }

    pub fn stats(&self, sink: &str) -> Stats {
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sink)
            .copied()
            .unwrap_or_default()
    }

    /// Appends a batch (records for several sinks) in one transaction, then
    /// enforces the limits on the sinks it touched.
    pub fn append(&self, batch: &[(&str, Record)]) -> Result<(), SpoolError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Held across the transaction: an append and an ack that both started from
        // the same stats would otherwise write back stale sequence numbers.
        let mut guard = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let mut stats = guard.clone();
        let mut dropped_now = 0;
        self.with_db(|db| {
            let txn = db.begin_write().map_err(|e| self.fail(e))?;
            {
                let mut sinks: Vec<&str> = Vec::new();
                for (sink, _) in batch {
                    if !sinks.contains(sink) {
                        sinks.push(sink);
                    }
                }
                let newest = batch.iter().map(|(_, r)| r.at_ms).max().unwrap_or(0);
                // One table handle and one stats entry per sink, one buffer
                // for every record: opening a table per record cost more than
                // writing it.
                let mut bytes = Vec::new();
                for sink in sinks {
                    let name = table(sink);
                    let mut t = txn
                        .open_table(TableDefinition::<u64, &[u8]>::new(&name))
                        .map_err(|e| self.fail(e))?;
                    let s = match stats.get_mut(sink) {
                        Some(s) => s,
                        None => stats.entry(sink.to_string()).or_default(),
                    };
                    for (_, rec) in batch.iter().filter(|(k, _)| *k == sink) {
                        rec.encode_into(&mut bytes);
                        t.insert(s.next_seq, bytes.as_slice())
                            .map_err(|e| self.fail(e))?;
                        if s.count == 0 {
                            s.first_seq = s.next_seq;
                            s.oldest_ms = Some(rec.at_ms);
                        }
                        s.next_seq += 1;
                        s.count += 1;
                        s.bytes += bytes.len() as u64;
                    }
                    let cutoff = newest - self.limits.max_age.as_millis() as i64;
                    while s.count > 0
                        && (s.bytes > self.limits.max_bytes
                            || s.oldest_ms.is_some_and(|o| o < cutoff))
                    {
                        let len = match t.pop_first().map_err(|e| self.fail(e))? {
                            Some((_, v)) => v.value().len() as u64,
                            None => break,
                        };
                        s.bytes -= len.min(s.bytes);
                        s.count -= 1;
                        s.dropped += 1;
                        dropped_now += 1;
                        refresh_head(&t, s).map_err(|e| self.fail(e))?;
                    }
                }
                let mut meta = txn.open_table(META).map_err(|e| self.fail(e))?;
                for (sink, s) in &stats {
                    let v = serde_json::to_vec(s).map_err(|e| self.fail(e))?;
                    meta.insert(sink.as_str(), v.as_slice())
                        .map_err(|e| self.fail(e))?;
                }
            }
            txn.commit().map_err(|e| self.fail(e))
        })?;
        *guard = stats;
        drop(guard);
        if dropped_now > 0 {
            self.log_drops(dropped_now);
        }
        let mut woke: Vec<&str> = Vec::new();
        for (sink, _) in batch {
            if !woke.contains(sink) {
                self.notifier(sink).notify_one();
                woke.push(sink);
            }
        }
        Ok(())
    }

    fn log_drops(&self, n: u64) {
        let mut g = self.last_drop_log.lock().unwrap_or_else(|e| e.into_inner());
        g.1 += n;
        if g.0.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            tracing::warn!(
                "spool full (max_bytes {} B, max_age {:?}): dropped the {} oldest entries since the last report",
                self.limits.max_bytes,
                self.limits.max_age,
                g.1
            );
            *g = (Some(Instant::now()), 0);
        }
    }

    /// Up to `max` entries of `sink` with sequence numbers from `from` on, in order.
    pub fn read(
        &self,
        sink: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<(u64, Record)>, SpoolError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(|e| self.fail(e))?;
            let name = table(sink);
            let t = match txn.open_table(TableDefinition::<u64, &[u8]>::new(&name)) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(self.fail(e)),
            };
            let mut out = Vec::new();
            for item in t.range(from..).map_err(|e| self.fail(e))?.take(max) {
                let (k, v) = item.map_err(|e| self.fail(e))?;
                match Record::decode(v.value()) {
                    Some(r) => out.push((k.value(), r)),
                    None => tracing::error!(
                        "spool {}: entry {} of {sink} is unreadable; skipped",
                        self.path.display(),
                        k.value()
                    ),
                }
            }
            Ok(out)
        })
    }

    /// Removes acknowledged entries.
    pub fn ack(&self, sink: &str, seqs: &[u64]) -> Result<(), SpoolError> {
        if seqs.is_empty() {
            return Ok(());
        }
        // Held across the transaction: an append and an ack that both started from
        // the same stats would otherwise write back stale sequence numbers.
        let mut guard = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let mut stats = guard.clone();
        self.with_db(|db| {
            let txn = db.begin_write().map_err(|e| self.fail(e))?;
            {
                let name = table(sink);
                let mut t = txn
                    .open_table(TableDefinition::<u64, &[u8]>::new(&name))
                    .map_err(|e| self.fail(e))?;
                let s = stats.entry(sink.to_string()).or_default();
                for &seq in seqs {
                    if let Some(v) = t.remove(seq).map_err(|e| self.fail(e))? {
                        s.bytes -= (v.value().len() as u64).min(s.bytes);
                        s.count = s.count.saturating_sub(1);
                    }
                }
                refresh_head(&t, s).map_err(|e| self.fail(e))?;
                let v = serde_json::to_vec(&*s).map_err(|e| self.fail(e))?;
                txn.open_table(META)
                    .map_err(|e| self.fail(e))?
                    .insert(sink, v.as_slice())
                    .map_err(|e| self.fail(e))?;
            }
            txn.commit().map_err(|e| self.fail(e))
        })?;
        *guard = stats;
        drop(guard);
        Ok(())
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod model_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: i64, size: usize) -> Record {
        Record {
            at_ms: i,
            key: format!("k{i}"),
            payload: vec![b'x'; size],
        }
    }

    #[test]
    fn old_entries_expire_against_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(
            dir.path(),
            Limits {
                max_bytes: u64::MAX,
                max_age: Duration::from_secs(10),
            },
        )
        .unwrap();
        spool
            .append(&[("s", rec(0, 1)), ("s", rec(5_000, 1))])
            .unwrap();
        spool.append(&[("s", rec(12_000, 1))]).unwrap();
        let left: Vec<i64> = spool
            .read("s", 0, 10)
            .unwrap()
            .iter()
            .map(|(_, r)| r.at_ms)
            .collect();
        assert_eq!(left, vec![5_000, 12_000]);
        assert_eq!(spool.stats("s").dropped, 1);
    }

    /// An appender and an acknowledger at once: no sequence number may be handed
    /// out twice (a lost update would overwrite an entry not yet delivered).
    #[test]
    fn concurrent_append_and_ack_keep_every_entry_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(
            Spool::open(
                dir.path(),
                Limits {
                    max_bytes: u64::MAX,
                    max_age: Duration::from_secs(3600),
                },
            )
            .unwrap(),
        );
        let writer = {
            let spool = spool.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    spool.append(&[("s", rec(i, 4))]).unwrap();
                }
            })
        };
        let mut seen = Vec::new();
        let mut next = 0;
        while seen.len() < 300 {
            let got = spool.read("s", next, 10).unwrap();
            for (seq, r) in &got {
                seen.push(r.at_ms);
                next = seq + 1;
            }
            spool
                .ack("s", &got.iter().map(|(s, _)| *s).collect::<Vec<_>>())
                .unwrap();
        }
        writer.join().unwrap();
        assert_eq!(seen, (0..300).collect::<Vec<i64>>());
        assert_eq!(spool.stats("s").count, 0);
        assert_eq!(spool.stats("s").next_seq, 300);
    }

    #[test]
    fn sinks_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(
            dir.path(),
            Limits {
                max_bytes: u64::MAX,
                max_age: Duration::from_secs(3600),
            },
        )
        .unwrap();
        spool
            .append(&[("a", rec(1, 1)), ("b", rec(2, 1)), ("a", rec(3, 1))])
            .unwrap();
        spool.ack("a", &[0]).unwrap();
        assert_eq!(spool.read("a", 0, 10).unwrap().len(), 1);
        assert_eq!(spool.read("b", 0, 10).unwrap().len(), 1);
        assert_eq!(spool.stats("a").first_seq, 1);
    }
}
