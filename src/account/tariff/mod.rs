//! Time-of-use tariffs as data: bands at minute resolution per season (months)
//! and day type, prices per band name with dated price changes, holidays and
//! worked weekends (调休), an IANA time zone and an optional demand charge.
//!
//! `parse` checks a file and resolves it into a [`Tariff`], one concept per
//! file: `file` (the TOML as written), `calendar` (which kind of day a date
//! is), `prices` (band prices and dated changes), `day` (a season's bands
//! tiling 00:00-24:00 as a sorted boundary list), `season` (which plan each
//! month and day type takes), `demand` (the demand charge's window) and
//! `catalog` (where tariffs are found) and `sequence` (a site's tariffs in
//! force one after another). Finding the band of an instant is a binary
//! search (`lookup`). Every gap and overlap is reported, naming both bands.
mod calendar;
mod catalog;
mod day;
mod demand;
mod file;
mod lookup;
mod prices;
mod season;
mod sequence;
mod warnings;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::tz::TimeZone;

pub use calendar::DayType;
pub use catalog::{load_file, TariffCatalog};
pub use day::{hhmm, DayPlan};
pub use demand::Demand;
pub use lookup::{Cursor, Segment};

use crate::validation::ValidationError;
use file::TariffFile;

#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    pub id: String,
    pub name: String,
    pub tz: TimeZone,
    pub timezone: String,
    pub currency: String,
    pub source: String,
    pub notes: Option<String>,
    /// Band names, sorted; bands are referred to by index into this list.
    pub bands: Vec<String>,
    /// Price sets by the first local date they apply to, sorted; the first
    /// applies from the beginning of time. A band that a part of a sequence
    /// does not use is priced NaN there: it never occurs on those dates.
    pub price_sets: Vec<(Date, Vec<f64>)>,
    /// The files in force one after another, by first local date; the first
    /// also covers every earlier date. One for a tariff file.
    eras: Vec<Era>,
    pub demand: Option<Demand>,
}

/// One tariff file's calendar and day plans, in force from `from`.
#[derive(Debug, Clone, PartialEq)]
struct Era {
    from: Date,
    id: String,
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
    /// `plans[month - 1][day type]`, band indices into the tariff's `bands`.
    plans: Vec<[Arc<DayPlan>; 3]>,
    /// The file says its prices are republished every month.
    prices_monthly: bool,
    /// Some season is chosen by the holiday day type, so a year without a
    /// holiday list would price its holidays as ordinary days.
    holiday_bands: bool,
    /// The first dates of the file's own price changes.
    price_dates: Vec<Date>,
}

impl Tariff {
    fn era(&self, date: Date) -> &Era {
        let i = self.eras.partition_point(|e| e.from <= date);
        &self.eras[i.saturating_sub(1)]
    }

    pub fn day_type(&self, date: Date) -> DayType {
        let era = self.era(date);
        calendar::day_type(&era.holidays, &era.workdays, date)
    }

    pub fn plan(&self, date: Date) -> &DayPlan {
        &self.era(date).plans[date.month() as usize - 1][self.day_type(date) as usize]
    }

    /// The id of the tariff file in force on a local date (the tariff's own
    /// id unless it is a site's sequence).
    pub fn file_id(&self, date: Date) -> &str {
        &self.era(date).id
    }

    /// The files of a sequence with the first date each is in force from
    /// (None for the first, which also covers all earlier dates).
    pub fn parts(&self) -> Vec<(Option<Date>, &str)> {
        self.eras
            .iter()
            .map(|e| (Some(e.from).filter(|d| *d != Date::MIN), e.id.as_str()))
            .collect()
    }

    /// The demand price per kW-month in force in the month of `date` (the
    /// price on its first day), when the tariff has a demand charge.
    pub fn demand_price(&self, date: Date) -> Option<f64> {
        let d = self.demand.as_ref()?;
        Some(d.price_on(date.first_of_month()))
    }

    /// The prices in force on a local date.
    pub fn prices(&self, date: Date) -> &[f64] {
        prices::on(&self.price_sets, date)
    }

    /// When the prices in force on a local date took effect, for a tariff
    /// with dated price changes (None while the file's base prices apply).
    pub fn prices_since(&self, date: Date) -> Option<Date> {
        prices::since(&self.price_sets, date)
    }

    /// Parses and checks a tariff file; `source` names it in every error.
    pub fn parse(source: &Path, text: &str) -> Result<Tariff, Vec<ValidationError>> {
        let file: TariffFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|r| text[..r.start.min(text.len())].matches('\n').count() + 1);
            vec![ValidationError::new(
                source,
                "",
                format!(
                    "{}{}",
                    e.message(),
                    line.map(|l| format!(" (line {l})")).unwrap_or_default()
                ),
            )]
        })?;
        resolve(source, file)
    }
}

fn resolve(source: &Path, f: TariffFile) -> Result<Tariff, Vec<ValidationError>> {
    let mut errs = Vec::new();
    let mut e = |key: &str, msg: String| errs.push(ValidationError::new(source, key, msg));
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !stem.is_empty() && stem != f.id {
        e(
            "id",
            format!("`{}` must equal the file stem `{stem}`", f.id),
        );
    }
    let tz = TimeZone::get(&f.timezone).unwrap_or_else(|err| {
        e(
            "timezone",
            format!("`{}` is not an IANA time zone: {err}", f.timezone),
        );
        TimeZone::UTC
    });
    if f.currency.trim().is_empty() {
        e("currency", "must not be empty".into());
    }
    if f.source.trim().is_empty() {
        e("source", "say where the numbers come from".into());
    }
    let (holidays, workdays) = calendar::dates(&f, &mut e);
    let bands = prices::band_names(&f, &mut e);
    let price_sets = prices::price_sets(&f, &bands, &mut e);
    let demand = f
        .demand_charge
        .as_ref()
        .map(|d| demand::check(d, &f.price_changes, &mut e));
    if demand.is_none() {
        if let Some(i) = f
            .price_changes
            .iter()
            .position(|c| c.demand_price_per_kw_month.is_some())
        {
            e(
                &format!("price_changes[{i}].demand_price_per_kw_month"),
                "the tariff has no demand_charge to change the price of".into(),
            );
        }
    }
    let season_plans: Vec<Option<Arc<DayPlan>>> = f
        .seasons
        .iter()
        .enumerate()
        .map(|(si, s)| day::plan(&format!("seasons[{si}]"), s, &bands, &mut e))
        .collect();
    season::check(&f, &mut e);
    let plans = season::plans(&f, &season_plans, &mut e);
    if !errs.is_empty() {
        return Err(errs);
    }
    let holiday_bands = f
        .seasons
        .iter()
        .any(|s| s.day_types.iter().any(|d| d == "holiday"));
    Ok(Tariff {
        eras: vec![Era {
            from: Date::MIN,
            id: f.id.clone(),
            holidays,
            workdays,
            plans,
            prices_monthly: f.prices_monthly,
            holiday_bands,
            price_dates: price_sets.iter().skip(1).map(|(d, _)| *d).collect(),
        }],
        id: f.id,
        name: f.name,
        tz,
        timezone: f.timezone,
        currency: f.currency,
        source: f.source,
        notes: f.notes,
        bands,
        price_sets,
        demand,
    })
}

#[cfg(test)]
mod tests;
