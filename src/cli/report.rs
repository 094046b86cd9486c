//! `bessmon report`: savings for a day, month, year or lifetime, from the
//! ledger on disk (readable while the daemon runs).

use clap::ValueEnum;

use super::{find_site, load_config, parse_period, Failure, Outcome};
use crate::account::report::{self, Report};
use crate::account::store;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: super::SiteArg,
    /// YYYY-MM-DD, YYYY-MM, YYYY or lifetime.
    #[arg(long, default_value = "lifetime")]
    pub period: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub fn print(r: &Report, format: Format) {
    match format {
        Format::Table => print!("{}", r.to_table()),
        Format::Json => println!("{}", serde_json::to_string_pretty(r).unwrap_or_default()),
        Format::Csv => print!("{}", r.to_csv()),
    }
}

pub fn run(a: Args) -> Outcome {
    let period = parse_period(&a.period)?;
    let v = load_config(a.at.config.as_ref())?;
    let site = find_site(&v, &a.at.site)?;
    let loaded = store::read_only(&v.daemon.state_dir, &a.at.site)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let r = report::build(
        &a.at.site,
        period,
        &site.tariff,
        &site.terms(),
        &loaded.days,
        &loaded.months,
    );
    print(&r, a.format);
    Ok(())
}
