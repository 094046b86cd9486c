//! Keeps a misbehaving device from flooding the log: a warning that repeats
//! (same scope, same wording up to its numbers) is logged a few times a
//! minute; the rest are counted and summarised once the minute is over. A
//! noisy RS-485 line at a 1 s poll would otherwise write thousands of lines an
//! hour per site, and journald's own rate limit drops lines without saying
//! which. Metrics still count every event.
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Lines logged per key and window before the rest are only counted.
const BURST: u32 = 5;
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Entry {
    since: Instant,
    logged: u32,
    suppressed: u64,
    latest: String,
}

#[derive(Debug, Default)]
pub struct LogThrottle {
    entries: HashMap<String, Entry>,
}

/// The message with its digits removed: "read 8922" and "read 3972136960" are
/// the same warning about the same thing.
fn shape(scope: &str, msg: &str) -> String {
    let mut k = String::with_capacity(scope.len() + msg.len() + 1);
    k.push_str(scope);
    k.push('\0');
    k.extend(msg.chars().filter(|c| !c.is_ascii_digit()));
    k
}

impl LogThrottle {
    /// True when `msg` should be logged now; otherwise it is counted.
    pub fn admit(&mut self, scope: &str, msg: &str, now: Instant) -> bool {
        let e = self.entries.entry(shape(scope, msg)).or_insert(Entry {
            since: now,
            logged: 0,
            suppressed: 0,
            latest: String::new(),
        });
        if now.duration_since(e.since) >= WINDOW && e.suppressed == 0 {
            e.since = now;
            e.logged = 0;
        }
        if e.logged < BURST {
            e.logged += 1;
            true
        } else {
            e.suppressed += 1;
            e.latest.clear();
            e.latest.push_str(msg);
            false
        }
    }

    /// Summaries of what was held back in windows that have ended (in every
    /// window with `all`, at shutdown), and those windows forgotten. Call it
    /// every few seconds.
    pub fn flush(&mut self, now: Instant, all: bool) -> Vec<String> {
        let mut out = Vec::new();
        self.entries.retain(|_, e| {
            let age = now.duration_since(e.since);
            if age < WINDOW && !all {
                return true;
            }
            if e.suppressed > 0 {
                out.push(format!(
                    "{} more like this in the last {:.0} s, the latest: {}",
                    e.suppressed,
                    age.as_secs_f64(),
                    e.latest
                ));
            }
            false
        });
        out
    }

    /// Logs `msg` as a warning unless it is being throttled.
    pub fn warn(&mut self, scope: &str, msg: &str) {
        if self.admit(scope, msg, Instant::now()) {
            tracing::warn!("{msg}");
        }
    }

    /// Logs the summaries [`Self::flush`] returns, as warnings.
    pub fn flush_to_log(&mut self, all: bool) {
        for line in self.flush(Instant::now(), all) {
            tracing::warn!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_and_summarised_once_the_window_ends() {
        let mut t = LogThrottle::default();
        let t0 = Instant::now();
        let logged = (0..100)
            .filter(|i| {
                t.admit(
                    "lab",
                    &format!("site lab: charge read {i} once: a glitch"),
                    t0,
                )
            })
            .count();
        assert_eq!(logged, BURST as usize);
        // Another scope and another wording are not held back by it.
        assert!(t.admit("other", "site other: charge read 1 once: a glitch", t0));
        assert!(t.admit("lab", "site lab: meter offline", t0));
        assert!(t.flush(t0 + Duration::from_secs(30), false).is_empty());
        let summary = t.flush(t0 + WINDOW, false);
        assert_eq!(summary.len(), 1, "{summary:?}");
        assert!(
            summary[0].starts_with("95 more like this in the last 60 s")
                && summary[0].ends_with("charge read 99 once: a glitch"),
            "{}",
            summary[0]
        );
        // A new window logs again.
        assert!(t.admit("lab", "site lab: charge read 7 once: a glitch", t0 + WINDOW));
        assert!(
            t.flush(t0 + WINDOW * 3, false).is_empty(),
            "nothing held back"
        );
        for _ in 0..10 {
            t.admit("lab", "site lab: meter offline", t0 + WINDOW * 3);
        }
        let at_stop = t.flush(t0 + WINDOW * 3 + Duration::from_secs(5), true);
        assert_eq!(at_stop.len(), 1, "{at_stop:?}");
        assert!(at_stop[0].starts_with("5 more like this in the last 5 s"));
    }
}
