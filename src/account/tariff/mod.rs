//! Time-of-use tariffs as data: bands at minute resolution per season (months)
//! and day type, prices per band name with dated price changes, holidays and
//! worked weekends (调休), an IANA time zone and an optional demand charge.
//!
//! `parse` checks a file and resolves it into a [`Tariff`] whose day plans are
//! sorted boundary lists, so finding the band of an instant is a binary search
//! (see `lookup`). Every gap and overlap is reported, naming both bands.
mod lookup;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use serde::Deserialize;

pub use lookup::{Cursor, Segment};

use crate::duration::parse_duration;
use crate::validation::ValidationError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TariffFile {
    id: String,
    name: String,
    timezone: String,
    currency: String,
    source: String,
    #[serde(default)]
    notes: Option<String>,
    prices: BTreeMap<String, f64>,
    demand_charge: Option<DemandFile>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
    #[serde(default)]
    price_changes: Vec<PriceChangeFile>,
    #[serde(default)]
    seasons: Vec<SeasonFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemandFile {
    price_per_kw_month: f64,
    #[serde(default = "default_window")]
    window: String,
}

fn default_window() -> String {
    "15m".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceChangeFile {
    from: String,
    prices: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeasonFile {
    months: Vec<u8>,
    #[serde(default = "default_day_types")]
    day_types: Vec<String>,
    bands: Vec<BandFile>,
}

fn default_day_types() -> Vec<String> {
    vec!["all".into()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BandFile {
    start: String,
    end: String,
    band: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DayType {
    Weekday,
    Weekend,
    Holiday,
}

impl DayType {
    pub const ALL: [DayType; 3] = [DayType::Weekday, DayType::Weekend, DayType::Holiday];

    pub fn as_str(self) -> &'static str {
        match self {
            DayType::Weekday => "weekday",
            DayType::Weekend => "weekend",
            DayType::Holiday => "holiday",
        }
    }
}

/// One day's bands: segment i covers local minutes `[starts[i], starts[i+1])`, the last to 24:00.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPlan {
    pub starts: Vec<u16>,
    pub bands: Vec<u8>,
}

impl DayPlan {
    /// The segment holding local minute `m` (0..1440): binary search.
    pub fn index_at(&self, m: u16) -> usize {
        self.starts.partition_point(|&s| s <= m).saturating_sub(1)
    }

    pub fn end_of(&self, i: usize) -> u16 {
        self.starts.get(i + 1).copied().unwrap_or(1440)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub price_per_kw_month: f64,
    pub window: std::time::Duration,
}

#[derive(Debug, PartialEq)]
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
    /// Price sets by the first local date they apply to, sorted; the first applies from the beginning of time.
    pub price_sets: Vec<(Date, Vec<f64>)>,
    pub holidays: BTreeSet<Date>,
    pub workdays: BTreeSet<Date>,
    /// `plans[month - 1][day type]`.
    plans: Vec<[Arc<DayPlan>; 3]>,
    pub demand: Option<Demand>,
}

impl Tariff {
    pub fn day_type(&self, date: Date) -> DayType {
        if self.holidays.contains(&date) {
            DayType::Holiday
        } else if self.workdays.contains(&date) {
            DayType::Weekday
        } else if matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
            DayType::Weekend
        } else {
            DayType::Weekday
        }
    }

    pub fn plan(&self, date: Date) -> &DayPlan {
        &self.plans[date.month() as usize - 1][self.day_type(date) as usize]
    }

    /// The prices in force on a local date.
    pub fn prices(&self, date: Date) -> &[f64] {
        let i = self
            .price_sets
            .partition_point(|(from, _)| *from <= date)
            .saturating_sub(1);
        &self.price_sets[i].1
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

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

pub fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
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
    let date = |s: &str| s.parse::<Date>().ok();
    let mut holidays = BTreeSet::new();
    for (i, h) in f.holidays.iter().enumerate() {
        match date(h) {
            Some(d) => {
                holidays.insert(d);
            }
            None => e(
                &format!("holidays[{i}]"),
                format!("`{h}` is not a YYYY-MM-DD date"),
            ),
        }
    }
    let mut workdays = BTreeSet::new();
    for (i, w) in f.workdays.iter().enumerate() {
        match date(w) {
            Some(d) if holidays.contains(&d) => e(
                &format!("workdays[{i}]"),
                format!("{d} is listed as a holiday too"),
            ),
            Some(d) => {
                workdays.insert(d);
            }
            None => e(
                &format!("workdays[{i}]"),
                format!("`{w}` is not a YYYY-MM-DD date"),
            ),
        }
    }

    // Every band any season names.
    let mut names: BTreeSet<String> = BTreeSet::new();
    for s in &f.seasons {
        for b in &s.bands {
            names.insert(b.band.clone());
        }
    }
    let bands: Vec<String> = names.into_iter().collect();
    if bands.len() > 255 {
        e("seasons", "more than 255 band names".into());
    }
    let mut price_sets = Vec::new();
    let check_prices =
        |key: &str, p: &BTreeMap<String, f64>, e: &mut dyn FnMut(&str, String)| -> Vec<f64> {
            for b in &bands {
                if !p.contains_key(b) {
                    e(key, format!("no price for band `{b}`"));
                }
            }
            for (name, v) in p {
                if !v.is_finite() {
                    e(&format!("{key}.{name}"), format!("{v} is not a price"));
                }
            }
            bands
                .iter()
                .map(|b| p.get(b).copied().unwrap_or(0.0))
                .collect()
        };
    price_sets.push((Date::MIN, check_prices("prices", &f.prices, &mut e)));
    for (i, c) in f.price_changes.iter().enumerate() {
        let key = format!("price_changes[{i}]");
        let Some(from) = date(&c.from) else {
            e(
                &format!("{key}.from"),
                format!("`{}` is not a YYYY-MM-DD date", c.from),
            );
            continue;
        };
        let p = check_prices(&format!("{key}.prices"), &c.prices, &mut e);
        if price_sets.iter().any(|(d, _)| *d == from) {
            e(&format!("{key}.from"), format!("{from} is given twice"));
        }
        price_sets.push((from, p));
    }
    price_sets.sort_by_key(|(d, _)| *d);

    let demand = f.demand_charge.as_ref().map(|d| {
        let window = parse_duration(&d.window).unwrap_or_else(|m| {
            e("demand_charge.window", m);
            std::time::Duration::from_secs(900)
        });
        if window.as_secs() == 0 || 86400 % window.as_secs() != 0 || window.subsec_nanos() != 0 {
            e(
                "demand_charge.window",
                format!("{} must divide a day into whole windows", d.window),
            );
        }
        if !d.price_per_kw_month.is_finite() || d.price_per_kw_month < 0.0 {
            e(
                "demand_charge.price_per_kw_month",
                format!("{} is not a price", d.price_per_kw_month),
            );
        }
        Demand {
            price_per_kw_month: d.price_per_kw_month,
            window,
        }
    });

    // Each season's bands, sorted and checked to tile the day.
    let mut season_plans: Vec<Option<Arc<DayPlan>>> = Vec::new();
    for (si, s) in f.seasons.iter().enumerate() {
        let key = format!("seasons[{si}]");
        let mut spans: Vec<(u16, u16, &str, usize)> = Vec::new();
        for (bi, b) in s.bands.iter().enumerate() {
            let (start, end) = (parse_hhmm(&b.start), parse_hhmm(&b.end));
            if start.is_none() {
                e(
                    &format!("{key}.bands[{bi}].start"),
                    format!("`{}` is not HH:MM (00:00..24:00)", b.start),
                );
            }
            if end.is_none() {
                e(
                    &format!("{key}.bands[{bi}].end"),
                    format!("`{}` is not HH:MM (00:00..24:00)", b.end),
                );
            }
            if let (Some(st), Some(en)) = (start, end) {
                if en <= st {
                    e(
                        &format!("{key}.bands[{bi}]"),
                        format!(
                            "{} ends at {} before it starts at {}",
                            b.band, b.end, b.start
                        ),
                    );
                } else {
                    spans.push((st, en, &b.band, bi));
                }
            }
        }
        spans.sort();
        let months = format!("months {:?}", s.months);
        let mut ok = !spans.is_empty();
        let mut at = 0u16;
        let mut prev: Option<&str> = None;
        for &(st, en, band, _) in &spans {
            if st > at {
                ok = false;
                let before = prev
                    .map(|p| format!("between `{p}` and `{band}`"))
                    .unwrap_or_else(|| format!("before `{band}`"));
                e(
                    &key,
                    format!("{months}: gap {}-{} {before}", hhmm(at), hhmm(st)),
                );
            } else if st < at {
                ok = false;
                e(
                    &key,
                    format!(
                        "{months}: `{band}` ({}-{}) overlaps `{}` until {}",
                        hhmm(st),
                        hhmm(en),
                        prev.unwrap_or("?"),
                        hhmm(at)
                    ),
                );
            }
            if en > at {
                at = en;
                prev = Some(band);
            }
        }
        if at < 1440 && !spans.is_empty() {
            ok = false;
            e(
                &key,
                format!(
                    "{months}: gap {}-24:00 after `{}`",
                    hhmm(at),
                    prev.unwrap_or("?")
                ),
            );
        }
        if spans.is_empty() {
            e(
                &format!("{key}.bands"),
                "a season needs bands covering 00:00-24:00".into(),
            );
        }
        for &m in &s.months {
            if !(1..=12).contains(&m) {
                e(&format!("{key}.months"), format!("{m} is not a month"));
            }
        }
        for d in &s.day_types {
            if !matches!(d.as_str(), "all" | "weekday" | "weekend" | "holiday") {
                e(
                    &format!("{key}.day_types"),
                    format!("`{d}` is not all, weekday, weekend or holiday"),
                );
            }
        }
        season_plans.push(ok.then(|| {
            let mut plan = DayPlan {
                starts: Vec::new(),
                bands: Vec::new(),
            };
            for (st, _, band, _) in spans {
                let idx = bands.iter().position(|b| b == band).unwrap_or(0) as u8;
                // Adjacent spans of one band are one segment.
                if plan.bands.last() != Some(&idx) {
                    plan.starts.push(st);
                    plan.bands.push(idx);
                }
            }
            Arc::new(plan)
        }));
    }

    // For every month and day type: exactly one season, a specific day type beating "all".
    let mut plans = Vec::with_capacity(12);
    let placeholder = Arc::new(DayPlan {
        starts: vec![0],
        bands: vec![0],
    });
    for month in 1..=12u8 {
        let mut row: [Arc<DayPlan>; 3] = [
            placeholder.clone(),
            placeholder.clone(),
            placeholder.clone(),
        ];
        for dt in DayType::ALL {
            let matches = |specific: bool| -> Vec<usize> {
                f.seasons
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| {
                        s.months.contains(&month)
                            && s.day_types.iter().any(|d| {
                                if specific {
                                    d == dt.as_str()
                                } else {
                                    d == "all"
                                }
                            })
                    })
                    .map(|(i, _)| i)
                    .collect()
            };
            let specific = matches(true);
            let chosen = if specific.is_empty() {
                matches(false)
            } else {
                specific
            };
            match chosen[..] {
                [] => e(
                    "seasons",
                    format!("month {month}, day type {}: no season applies", dt.as_str()),
                ),
                [i] => {
                    if let Some(p) = &season_plans[i] {
                        row[dt as usize] = p.clone();
                    }
                }
                [i, j, ..] => e(
                    "seasons",
                    format!(
                        "month {month}, day type {}: both seasons[{i}] and seasons[{j}] apply",
                        dt.as_str()
                    ),
                ),
            }
        }
        plans.push(row);
    }

    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Tariff {
        id: f.id,
        name: f.name,
        tz,
        timezone: f.timezone,
        currency: f.currency,
        source: f.source,
        notes: f.notes,
        bands,
        price_sets,
        holidays,
        workdays,
        plans,
        demand,
    })
}

/// Finds tariffs by id: the bundled set first, then each of `dirs`.
#[derive(Debug, Clone)]
pub struct TariffCatalog {
    dirs: Vec<PathBuf>,
}

impl TariffCatalog {
    pub fn new(dirs: &[PathBuf]) -> Self {
        Self {
            dirs: dirs.to_vec(),
        }
    }

    pub fn find(&self, id: &str) -> Option<(PathBuf, String)> {
        crate::bundled::find(crate::bundled::Kind::Tariffs, id, &self.dirs)
    }

    pub fn load(&self, id: &str) -> Option<Result<Arc<Tariff>, Vec<ValidationError>>> {
        self.find(id)
            .map(|(p, t)| Tariff::parse(&p, &t).map(Arc::new))
    }
}

/// Loads a tariff from a path (for `tariff show FILE` and `replay --tariff FILE`).
pub fn load_file(path: &Path) -> Result<Tariff, Vec<ValidationError>> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        vec![ValidationError::new(
            path,
            "",
            format!("cannot read: {err}"),
        )]
    })?;
    Tariff::parse(path, &text)
}

#[cfg(test)]
mod tests;
