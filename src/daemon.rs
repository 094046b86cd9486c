//! The running daemon: acquisition feeding accounting, the ledger committed at
//! least every 10 s and once more on the way out. One cancellation token stops
//! it: pollers finish their current poll, the channel drains, the books are
//! committed, and `run` returns.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::account::accountant::Accountant;
use crate::account::store::StoreError;
use crate::acquire::{self, Sample};
use crate::clock::SharedClock;
use crate::config::validate::Validated;

/// At least this often the ledger and counter state reach the disk.
pub const COMMIT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Log every device's readings every this many polls (0: never).
    pub log_every: u64,
    /// Log each site's state and today's savings this often (real time).
    pub summary_every: Option<Duration>,
}

pub async fn run(
    v: &Validated,
    clock: SharedClock,
    cancel: CancellationToken,
    opts: Options,
) -> Result<(), StoreError> {
    let mut books = tokio::task::block_in_place(|| Accountant::open(v))?;
    let (tx, mut rx) = mpsc::channel::<Sample>(v.config.daemon.sample_queue);
    let mut pollers = acquire::spawn(v.devices(), clock.clone(), tx, cancel.clone());
    let mut summary =
        tokio::time::interval(opts.summary_every.unwrap_or(Duration::from_secs(3600)));
    summary.tick().await;
    tracing::info!(
        "polling {} devices on {} sites ({} requests per poll); ledger in {}",
        v.devices().count(),
        v.sites.len(),
        v.requests_per_poll(),
        v.config.daemon.state_dir.display()
    );
    let mut availability = Availability::default();
    let mut commit = tokio::time::interval(COMMIT_EVERY);
    commit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            s = rx.recv() => match s {
                Some(s) => {
                    books.on_sample(&s);
                    availability.observe(&s, opts.log_every);
                    if books.needs_commit() {
                        if let Err(e) = tokio::task::block_in_place(|| books.commit()) {
                            tracing::error!("cannot commit the ledger: {e}");
                        }
                    }
                }
                // Every poller has stopped: the last sample is in.
                None => break,
            },
            _ = summary.tick(), if opts.summary_every.is_some() => {
                for line in books.summary(clock.now()) {
                    tracing::info!("{line}");
                }
            }
            _ = commit.tick() => {
                if let Err(e) = tokio::task::block_in_place(|| books.commit()) {
                    // Keep running: the books stay in memory and the next commit retries.
                    tracing::error!("cannot commit the ledger: {e}");
                }
            }
        }
    }
    while pollers.join_next().await.is_some() {}
    tokio::task::block_in_place(|| books.commit())?;
    tracing::info!("ledger committed; stopped");
    Ok(())
}

/// Logs availability changes and errors as they happen, and optionally readings.
#[derive(Default)]
struct Availability {
    online: HashMap<(Arc<str>, Arc<str>), (bool, u64)>,
}

impl Availability {
    fn observe(&mut self, s: &Sample, every: u64) {
        let key = (s.device.site.clone(), s.device.device.clone());
        let entry = self.online.entry(key.clone()).or_insert((!s.online, 0));
        let changed = entry.0 != s.online;
        entry.0 = s.online;
        entry.1 += 1;
        let n = entry.1;
        if changed {
            if s.online {
                tracing::info!("{}/{} online", key.0, key.1);
            } else {
                let why = s.errors.first().map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!("{}/{} offline: {why}", key.0, key.1);
            }
        } else if s.online {
            for e in &s.errors {
                tracing::warn!("{e}");
            }
        }
        if s.missed > 0 {
            tracing::warn!(
                "{}/{}: {} poll(s) missed (poll overran its interval)",
                key.0,
                key.1,
                s.missed
            );
        }
        if every > 0 && n % every == 1 && s.online {
            let values: Vec<String> = s
                .readings
                .iter()
                .filter(|r| !s.device.profile.points[r.point].is_scale_factor)
                .map(|r| {
                    let p = &s.device.profile.points[r.point];
                    let v = match r.value {
                        crate::acquire::decode::Value::Num(x) => {
                            format!("{}", (x * 1000.0).round() / 1000.0)
                        }
                        ref other => other.to_string(),
                    };
                    format!(
                        "{}={v}{}{}",
                        p.name,
                        p.unit.as_deref().unwrap_or(""),
                        if r.valid { "" } else { "(invalid)" }
                    )
                })
                .collect();
            tracing::info!(
                "{}/{} @ {}: {}",
                key.0,
                key.1,
                s.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                values.join(" ")
            );
        }
    }
}
