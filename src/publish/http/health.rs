//! Whether the daemon's own loops are alive, for `/healthz` and systemd's
//! watchdog: the accounting loop beats at least every spool tick, and a sink
//! task that ended before shutdown is dead. Devices that do not answer are
//! not ill health (restarting would not help); metrics and availability say
//! so instead.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Longer than any one step of the accounting loop should take, even a
/// ledger commit on a slow disk.
pub const STALL: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Milliseconds after `started` of the accounting loop's last beat.
    beat_ms: AtomicU64,
    sink_died: AtomicBool,
    /// Ledger commits that failed (the books stay in memory and the next
    /// commit retries; a disk that stays broken shows here first).
    pub ledger_commit_failures: AtomicU64,
    /// Spool writes that failed (the messages wait in memory, bounded).
    pub spool_write_failures: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            started: Instant::now(),
            beat_ms: AtomicU64::new(0),
            sink_died: AtomicBool::new(false),
            ledger_commit_failures: AtomicU64::new(0),
            spool_write_failures: AtomicU64::new(0),
        }
    }
}

impl Health {
    pub fn beat(&self) {
        self.beat_ms
            .store(self.started.elapsed().as_millis() as u64, Relaxed);
    }

    pub fn sink_died(&self) {
        self.sink_died.store(true, Relaxed);
    }

    /// None when healthy, else what is wrong.
    pub fn problem(&self) -> Option<String> {
        self.problem_at(self.started.elapsed())
    }

    fn problem_at(&self, now: Duration) -> Option<String> {
        if self.sink_died.load(Relaxed) {
            return Some("a sink task has stopped".into());
        }
        let since = now.saturating_sub(Duration::from_millis(self.beat_ms.load(Relaxed)));
        (since > STALL)
            .then(|| format!("the accounting loop has not run for {} s", since.as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_stops_beating_or_a_dead_sink_is_ill_health() {
        let h = Health::default();
        h.beat();
        assert_eq!(h.problem(), None);
        let later = h.started.elapsed() + STALL + Duration::from_secs(5);
        assert!(h.problem_at(later).unwrap().contains("has not run for 3"));
        h.sink_died();
        assert_eq!(h.problem().as_deref(), Some("a sink task has stopped"));
    }
}
