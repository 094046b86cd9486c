//! `bessmon tariff show FILE --date D`: a tariff's bands on one local date;
//! `bessmon tariff show -c CONFIG --site ID --date D`: the tariff a site's
//! configuration puts in force on that date (one of a dated list).
use std::path::PathBuf;
use std::sync::Arc;

use jiff::civil::Date;

use super::{Failure, Outcome};
use crate::account::tariff::{hhmm, load_file, Tariff, TariffCatalog};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// The bands of a local date: start, end, band, price, and the day's length.
    Show {
        /// A tariff file, or the id of a bundled tariff (or give --site).
        #[arg(required_unless_present = "site")]
        file: Option<PathBuf>,
        #[arg(short = 'c', long = "config", requires = "site")]
        config: Option<PathBuf>,
        /// The site whose tariff to show, from the configuration.
        #[arg(long, conflicts_with = "file")]
        site: Option<String>,
        #[arg(long)]
        date: Date,
    },
}

pub fn load(file: &std::path::Path) -> Result<Arc<Tariff>, Failure> {
    let errs = |e: Vec<crate::validation::ValidationError>| Failure {
        code: 1,
        lines: e.iter().map(|x| x.to_string()).collect(),
    };
    if file.exists() {
        return load_file(file).map(Arc::new).map_err(errs);
    }
    match TariffCatalog::new(&[]).load(&file.to_string_lossy()) {
        Some(Ok(t)) => Ok(t),
        Some(Err(e)) => Err(errs(e)),
        None => Err(Failure::input(format!(
            "{}: no such file, and no bundled tariff has that id",
            file.display()
        ))),
    }
}

pub fn run(a: Args) -> Outcome {
    let What::Show {
        file,
        config,
        site,
        date,
    } = a.what;
    let t = match (file, site) {
        (Some(file), _) => load(&file)?,
        (None, Some(site)) => {
            let v = super::load_config(config.as_ref())?;
            super::find_site(&v, &site)?.tariff.clone()
        }
        (None, None) => return Err(Failure::input("give a tariff FILE or --site")),
    };
    let (spans, hours) = t.day(date);
    println!("{}: {}", t.id, t.name);
    let parts = t.parts();
    if parts.len() > 1 {
        for (from, id) in &parts {
            let from = from.map_or("earlier dates".to_string(), |d| format!("from {d}"));
            println!("  {id} {from}");
        }
        println!("in force on {date}: {}", t.file_id(date));
    }
    println!("time zone {}, currency {}", t.timezone, t.currency);
    println!(
        "{date} ({:?}, {}): {hours} h",
        date.weekday(),
        t.day_type(date).as_str()
    );
    println!("{:<6} {:<6} {:<12} {:>10}", "start", "end", "band", "price");
    for (s, e, b, price) in spans {
        println!(
            "{:<6} {:<6} {:<12} {:>10}",
            hhmm(s),
            hhmm(e),
            t.bands[b as usize],
            price
        );
    }
    if let (Some(d), Some(price)) = (&t.demand, t.demand_price(date)) {
        println!(
            "demand charge {} {}/kW-month over {}-minute windows",
            price,
            t.currency,
            d.window.as_secs() / 60
        );
    }
    for w in t
        .missing_prices(date)
        .into_iter()
        .chain(t.missing_holidays(date.year()))
    {
        println!("warning: {w}");
    }
    println!("source: {}", t.source);
    if let Some(n) = &t.notes {
        println!("note: {n}");
    }
    Ok(())
}
