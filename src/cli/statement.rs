//! `bessmon statement`: the month's settlement statement for a site, from
//! the ledger on disk (readable while the daemon runs), as JSON, CSV, a
//! printable HTML page or a PDF of it.
use std::path::PathBuf;

use clap::ValueEnum;

use super::{find_site, load_config, Failure, Outcome};
use crate::account::{statement, store};

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
pub enum Format {
    Html,
    Pdf,
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: super::SiteArg,
    /// The month, YYYY-MM.
    #[arg(long)]
    pub period: String,
    #[arg(long, value_enum, default_value = "html")]
    pub format: Format,
    /// Where to write it (default: standard output; for a PDF,
    /// statement-SITE-PERIOD.pdf in the current folder).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// A statement covers one month: the period's own parser, then its shape.
fn month(p: &str) -> Result<(i16, i8), Failure> {
    match super::parse_period(p) {
        Ok(crate::account::report::Period::Month(y, m)) => Ok((y, m)),
        _ => Err(Failure::input(format!(
            "--period `{p}`: a statement covers one month, YYYY-MM"
        ))),
    }
}

pub fn run(a: Args) -> Outcome {
    let period = month(&a.period)?;
    let v = load_config(a.at.config.as_ref())?;
    let site = find_site(&v, &a.at.site)?;
    let loaded = store::read_only(&v.daemon.state_dir, &a.at.site)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let terms = site.terms();
    let s = statement::build(
        &statement::Site {
            id: &site.id,
            name: &site.name,
            tariff: &site.tariff,
            terms: &terms,
            contract: site.settle.contract.as_ref(),
        },
        period,
        &loaded.days,
        &loaded.months,
    )
    .map_err(Failure::input)?;
    let text = match a.format {
        Format::Json => serde_json::to_string_pretty(&s).unwrap_or_default() + "\n",
        Format::Csv => crate::publish::statement::csv(&s),
        Format::Html => crate::publish::statement::html(&s),
        Format::Pdf => {
            let out = a
                .output
                .clone()
                .unwrap_or_else(|| format!("statement-{}-{}.pdf", a.at.site, a.period).into());
            crate::publish::statement::pdf(&crate::publish::statement::html(&s), &out)
                .map_err(Failure::runtime)?;
            eprintln!("wrote {}", out.display());
            return Ok(());
        }
    };
    match &a.output {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| Failure::runtime(format!("{}: {e}", p.display())))
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_for_one_month() {
        assert_eq!(month("2026-02").unwrap(), (2026, 2));
        for bad in ["2026", "2026-13", "2026-2", "lifetime", "2026-02-01"] {
            let e = month(bad).unwrap_err();
            assert!(e.lines[0].contains("YYYY-MM"), "{bad}: {:?}", e.lines);
        }
    }
}
