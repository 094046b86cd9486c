//! `bessmon run`: the daemon.
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{load_config, Failure, Outcome};
use crate::clock::{SharedClock, SystemClock};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file (default: $BESSMON_CONFIG, then /etc/bessmon/bessmon.toml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Poll only the sites in shard i of n (by a stable hash of the site id).
    #[arg(long)]
    pub shard: Option<crate::config::shard::Shard>,
}

pub async fn run(a: Args) -> Outcome {
    let mut v = load_config(a.config.as_ref())?;
    if let Some(shard) = a.shard {
        v.retain_shard(shard);
        tracing::info!(
            "shard {}/{}: {} of the configured sites",
            shard.index,
            shard.count,
            v.sites.len()
        );
    }
    let cancel = CancellationToken::new();
    crate::shutdown::cancel_on_signal(cancel.clone());
    let clock: SharedClock = Arc::new(SystemClock);
    // SIGHUP reads the same file, with the same overrides, for the same shard.
    let source = crate::config::ConfigSource::from_arg(a.config.as_deref());
    let shard = a.shard;
    let reload = crate::daemon::reload::Reloader(Arc::new(move || {
        let mut v = crate::config::validate::load_and_validate(&source)?;
        if let Some(shard) = shard {
            v.retain_shard(shard);
        }
        Ok(v)
    }));
    let opts = crate::daemon::Options {
        log_every: 0,
        summary_every: Some(std::time::Duration::from_secs(60)),
        reload: Some(reload),
    };
    crate::daemon::run(&v, clock, cancel, opts)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))
}
