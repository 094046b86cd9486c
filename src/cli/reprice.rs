//! `bessmon reprice`: price booked energy again after a price correction
//! (the grid company republished a month, a price was mistyped). Energy and
//! bands stay as booked; the summary shows what changed and the days record it.

use super::{find_site, load_config, parse_period, Failure, Outcome};
use crate::account::report::{self, Period};
use crate::account::reprice::reprice;
use crate::account::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: super::SiteArg,
    /// YYYY-MM-DD, YYYY-MM, YYYY or lifetime.
    #[arg(long)]
    pub period: String,
    /// Show what would change without writing it.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: Args) -> Outcome {
    let period: Period = parse_period(&a.period)?;
    let v = load_config(a.at.config.as_ref())?;
    let site = find_site(&v, &a.at.site)?;
    let store = Store::open(&v.daemon.state_dir).map_err(|e| {
        Failure::runtime(format!(
            "{e} (is the daemon of this state directory running? stop it first: it keeps today's books in memory)"
        ))
    })?;
    let mut loaded = store
        .load(&a.at.site)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let terms = site.terms();
    let savings = |days: &_| {
        report::build(
            &a.at.site,
            period,
            &site.tariff,
            &terms,
            days,
            &loaded.months,
        )
    };
    let before = savings(&loaded.days);
    let (summary, changed) = reprice(
        &site.tariff,
        &mut loaded.days,
        period,
        jiff::Timestamp::now(),
    );
    let after = savings(&loaded.days);
    println!(
        "site {} period {period}: {} days in the ledger, {} re-priced with tariff `{}`",
        a.at.site, summary.days_looked_at, summary.days_changed, site.tariff.id
    );
    if !summary.changes.is_empty() {
        println!(
            "\n{:<10} {:<12} {:>10} {:>10} {:>12} {:>14}",
            "date", "band", "before", "after", "charge kWh", "discharge kWh"
        );
        for c in &summary.changes {
            println!(
                "{:<10} {:<12} {:>10} {:>10} {:>12.3} {:>14.3}",
                c.date.to_string(),
                c.band,
                c.before,
                c.after,
                c.charge_kwh,
                c.discharge_kwh
            );
        }
    }
    for b in &summary.unknown_bands {
        println!(
            "band {b} is not in tariff `{}`: its days keep their price",
            site.tariff.id
        );
    }
    println!(
        "\nsavings {:.2} -> {:.2} {} (range {:.2}..{:.2} -> {:.2}..{:.2})",
        before.total.savings,
        after.total.savings,
        site.tariff.currency,
        before.savings_range[0],
        before.savings_range[1],
        after.savings_range[0],
        after.savings_range[1]
    );
    if a.dry_run || changed.is_empty() {
        if a.dry_run {
            println!("dry run: nothing written");
        }
        return Ok(());
    }
    store
        .put(&a.at.site, &changed, &Default::default())
        .map_err(|e| Failure::runtime(e.to_string()))?;
    println!("{} days written; each records the revision", changed.len());
    Ok(())
}
