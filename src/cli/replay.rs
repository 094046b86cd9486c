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
    #[command(flatten)]
    pub at: super::SiteArg,
    #[arg(long)]
    pub csv: PathBuf,
    /// Price the history with this tariff (file or bundled id) instead of the site's.
    #[arg(long)]
    pub tariff: Option<PathBuf>,
    #[arg(long, default_value = "lifetime")]
    pub period: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write the history's days into the site's ledger (the daemon of its
    /// state directory must be stopped); days the ledger has are refused.
    #[arg(long)]
    pub into_ledger: bool,
    /// With --into-ledger: overwrite days the ledger already has.
    #[arg(long, requires = "into_ledger")]
    pub replace: bool,
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
    let v = load_config(a.at.config.as_ref())?;
    let site = find_site(&v, &a.at.site)?;
    let mut setup = setup_for(site);
    if let Some(t) = &a.tariff {
        if a.into_ledger {
            return Err(Failure::input(
                "--tariff prices a what-if; a site's ledger is priced with the site's own tariff, so --into-ledger takes no --tariff",
            ));
        }
        setup.tariff = super::tariff::load(t)?;
    }
    if a.into_ledger {
        return into_ledger(&v, setup, &a, period);
    }
    let r = replay_csv(setup, &a.csv, period)?;
    super::report::print(&r, a.format);
    Ok(())
}

/// Backfills the site's ledger with the history's days of `period`.
fn into_ledger(
    v: &crate::config::validate::Validated,
    setup: SiteSetup,
    a: &Args,
    period: Period,
) -> Outcome {
    use crate::account::ledger::Revision;
    let name = a.csv.display().to_string();
    let file = std::fs::File::open(&a.csv).map_err(|e| Failure::input(format!("{name}: {e}")))?;
    let tariff = setup.tariff.clone();
    let (mut days, months) =
        crate::account::replay::replay_books(setup, &name, file, |m| tracing::warn!("{m}"))
            .map_err(|e| Failure::input(e.to_string()))?;
    days.retain(|d, _| period.contains(*d));
    if days.is_empty() {
        return Err(Failure::input(format!(
            "{name}: no days of period {period} in the history"
        )));
    }
    let store = crate::account::store::Store::open(&v.daemon.state_dir).map_err(|e| {
        Failure::runtime(format!(
            "{e} (is the daemon of this state directory running? stop it first)"
        ))
    })?;
    let have = store
        .load(&a.at.site)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let clash: Vec<jiff::civil::Date> = days
        .keys()
        .filter(|d| have.days.contains_key(d))
        .copied()
        .collect();
    if let (Some(first), Some(last)) = (clash.first(), clash.last()) {
        if !a.replace {
            return Err(Failure::input(format!(
                "site {}: the ledger already has {} of these days ({first} to {last}); --replace overwrites them",
                a.at.site,
                clash.len()
            )));
        }
    }
    let at = jiff::Timestamp::now();
    for (d, day) in days.iter_mut() {
        day.revisions.push(Revision {
            at,
            what: format!(
                "{} from {name} by replay with tariff `{}`",
                if have.days.contains_key(d) {
                    "replaced"
                } else {
                    "backfilled"
                },
                tariff.id
            ),
        });
    }
    // A month both hold keeps the higher peaks and all windows counted: the
    // days are disjoint unless replaced, when the old peak may stay as a bound.
    let months: std::collections::BTreeMap<_, _> = months
        .into_iter()
        .filter(|(m, _)| days.keys().any(|d| (d.year(), d.month()) == *m))
        .map(|(m, mut p)| {
            if let Some(old) = have.months.get(&m) {
                if old.max_kw > p.max_kw {
                    (p.max_kw, p.max_at) = (old.max_kw, old.max_at);
                }
                if old.baseline_max_kw > p.baseline_max_kw {
                    (p.baseline_max_kw, p.baseline_at) = (old.baseline_max_kw, old.baseline_at);
                }
                p.measured_windows += old.measured_windows;
                p.unmeasured_windows += old.unmeasured_windows;
            }
            (m, p)
        })
        .collect();
    store
        .put(&a.at.site, &days, &months)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    println!(
        "site {}: {} days ({} to {}) written into the ledger in {}{}",
        a.at.site,
        days.len(),
        days.keys()
            .next()
            .map(|d| d.to_string())
            .unwrap_or_default(),
        days.keys()
            .last()
            .map(|d| d.to_string())
            .unwrap_or_default(),
        v.daemon.state_dir.display(),
        if clash.is_empty() {
            String::new()
        } else {
            format!(", {} of them replacing what was there", clash.len())
        }
    );
    Ok(())
}
