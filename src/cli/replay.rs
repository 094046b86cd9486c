//! `bessmon replay`: recompute a site's ledger from a CSV history with the
//! daemon's own accounting (what-if with another tariff, or backfill).
use std::path::PathBuf;

use super::report::Format;
use super::{find_site, load_config, parse_period, Failure, Outcome};
use crate::account::accountant::setup_for;
use crate::account::energy::SiteSetup;
use crate::account::replay::replay;
use crate::account::report::{Period, Report};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub site: String,
    #[arg(long)]
    pub csv: PathBuf,
    /// Price the history with this tariff (file or bundled id) instead of the site's.
    #[arg(long)]
    pub tariff: Option<PathBuf>,
    #[arg(long, default_value = "lifetime")]
    pub period: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// Runs a CSV history file through a fresh account; the engine `run` uses too.
pub fn replay_csv(
    setup: SiteSetup,
    csv: &std::path::Path,
    period: Period,
) -> Result<Report, Failure> {
    let file =
        std::fs::File::open(csv).map_err(|e| Failure::input(format!("{}: {e}", csv.display())))?;
    replay(setup, &csv.display().to_string(), file, period, |m| {
        tracing::warn!("{m}")
    })
    .map_err(|e| Failure::input(e.to_string()))
}

pub fn run(a: Args) -> Outcome {
    let period = parse_period(&a.period)?;
    let v = load_config(a.config.as_ref())?;
    let site = find_site(&v, &a.site)?;
    let mut setup = setup_for(site);
    if let Some(t) = &a.tariff {
        setup.tariff = super::tariff::load(t)?;
    }
    let r = replay_csv(setup, &a.csv, period)?;
    super::report::print(&r, a.format);
    Ok(())
}
