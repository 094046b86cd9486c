//! `bessmon run`: the daemon. Polls every configured device and reports what
//! it reads; accounting and the network sinks hang off the same sample stream.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{load_config, Outcome};
use crate::acquire::{self, Sample};
use crate::clock::{SharedClock, SystemClock};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file (default: $BESSMON_CONFIG, then /etc/bessmon/bessmon.toml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
}

pub async fn run(a: Args) -> Outcome {
    let v = load_config(a.config.as_ref())?;
    let cancel = CancellationToken::new();
    crate::shutdown::cancel_on_signal(cancel.clone());
    let clock: SharedClock = Arc::new(SystemClock);
    let (tx, rx) = mpsc::channel(v.config.daemon.sample_queue);
    let mut tasks = acquire::spawn(v.devices(), clock, tx, cancel.clone());
    tracing::info!(
        "polling {} devices on {} sites ({} requests per poll)",
        v.devices().count(),
        v.sites.len(),
        v.requests_per_poll()
    );
    report_samples(rx, 0).await;
    while tasks.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}

/// Logs availability changes and errors as they happen, and with `every` > 0 one
/// line per device every `every` samples. Returns when every poller has stopped.
pub async fn report_samples(mut rx: mpsc::Receiver<Sample>, every: u64) {
    let mut online: HashMap<(Arc<str>, Arc<str>), bool> = HashMap::new();
    let mut count: HashMap<(Arc<str>, Arc<str>), u64> = HashMap::new();
    while let Some(s) = rx.recv().await {
        let key = (s.device.site.clone(), s.device.device.clone());
        let was = online.insert(key.clone(), s.online);
        if was != Some(s.online) {
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
        let n = count.entry(key.clone()).or_default();
        *n += 1;
        if every > 0 && *n % every == 1 && s.online {
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
