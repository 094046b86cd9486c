//! `bessmon tariff show FILE --date D`: a tariff's bands on one local date.
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
        /// A tariff file, or the id of a bundled tariff.
        file: PathBuf,
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
    let What::Show { file, date } = a.what;
    let t = load(&file)?;
    let (spans, hours) = t.day(date);
    println!("{}: {}", t.id, t.name);
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
    if let Some(d) = &t.demand {
        println!(
            "demand charge {} {}/kW-month over {}-minute windows",
            d.price_per_kw_month,
            t.currency,
            d.window.as_secs() / 60
        );
    }
    println!("source: {}", t.source);
    if let Some(n) = &t.notes {
        println!("note: {n}");
    }
    Ok(())
}
