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
}

pub async fn run(a: Args) -> Outcome {
    let v = load_config(a.config.as_ref())?;
    let cancel = CancellationToken::new();
    crate::shutdown::cancel_on_signal(cancel.clone());
    let clock: SharedClock = Arc::new(SystemClock);
    let opts = crate::daemon::Options {
        log_every: 0,
        summary_every: Some(std::time::Duration::from_secs(60)),
    };
    crate::daemon::run(&v, clock, cancel, opts)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))
}
