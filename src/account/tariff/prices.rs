//! What each band costs: the band names every season uses, their prices, and
//! dated price changes, each set complete (a missing band's price is an
//! error, never a zero).
use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;

use super::file::TariffFile;

/// Every band name any season uses, sorted; bands are referred to by their
/// index in this list.
pub(super) fn band_names(f: &TariffFile, e: &mut impl FnMut(&str, String)) -> Vec<String> {
    let names: BTreeSet<&str> = f
        .seasons
        .iter()
        .flat_map(|s| s.bands.iter().map(|b| b.band.as_str()))
        .collect();
    if names.len() > 255 {
        e("seasons", "more than 255 band names".into());
    }
    names.into_iter().map(str::to_string).collect()
}

/// One complete price set, in the order of `bands`.
fn price_set(
    key: &str,
    p: &BTreeMap<String, f64>,
    bands: &[String],
    e: &mut impl FnMut(&str, String),
) -> Vec<f64> {
    for b in bands {
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
}

/// The price sets by the first local date they apply to, sorted; the first
/// (the file's `prices`) applies from the beginning of time.
pub(super) fn price_sets(
    f: &TariffFile,
    bands: &[String],
    e: &mut impl FnMut(&str, String),
) -> Vec<(Date, Vec<f64>)> {
    let mut sets = vec![(Date::MIN, price_set("prices", &f.prices, bands, e))];
    for (i, c) in f.price_changes.iter().enumerate() {
        let key = format!("price_changes[{i}]");
        let Ok(from) = c.from.parse::<Date>() else {
            e(
                &format!("{key}.from"),
                format!("`{}` is not a YYYY-MM-DD date", c.from),
            );
            continue;
        };
        let p = price_set(&format!("{key}.prices"), &c.prices, bands, e);
        if sets.iter().any(|(d, _)| *d == from) {
            e(&format!("{key}.from"), format!("{from} is given twice"));
        }
        sets.push((from, p));
    }
    sets.sort_by_key(|(d, _)| *d);
    sets
}

fn index_on(sets: &[(Date, Vec<f64>)], date: Date) -> usize {
    sets.partition_point(|(from, _)| *from <= date)
        .saturating_sub(1)
}

/// The set in force on a local date.
pub(super) fn on(sets: &[(Date, Vec<f64>)], date: Date) -> &[f64] {
    &sets[index_on(sets, date)].1
}

/// The first local date of the set in force on `date`; None for the file's
/// base prices, which have no start.
pub(super) fn since(sets: &[(Date, Vec<f64>)], date: Date) -> Option<Date> {
    Some(sets[index_on(sets, date)].0).filter(|d| *d != Date::MIN)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn file(extra: &str) -> TariffFile {
        toml::from_str(&format!(
            "id = \"t\"\nname = \"t\"\ntimezone = \"UTC\"\ncurrency = \"CNY\"\nsource = \"s\"\n\
             prices = {{ valley = 0.38, peak = 1.13 }}\n{extra}\n\
             [[seasons]]\nmonths = [1]\nbands = [{{ start = \"00:00\", end = \"08:00\", band = \"valley\" }}, {{ start = \"08:00\", end = \"24:00\", band = \"peak\" }}]"
        ))
        .unwrap()
    }

    fn errors(f: &TariffFile) -> (Vec<(Date, Vec<f64>)>, Vec<String>) {
        let mut errs = Vec::new();
        let mut e = |k: &str, m: String| errs.push(format!("{k}: {m}"));
        let bands = band_names(f, &mut e);
        let sets = price_sets(f, &bands, &mut e);
        (sets, errs)
    }

    #[test]
    fn a_price_change_applies_from_its_date_on() {
        let (sets, errs) = errors(&file(
            "[[price_changes]]\nfrom = \"2025-06-01\"\nprices = { valley = 0.40, peak = 1.20 }",
        ));
        assert!(errs.is_empty(), "{errs:?}");
        // Bands are sorted by name: peak, valley.
        assert_eq!(on(&sets, date(2025, 5, 31)), [1.13, 0.38]);
        assert_eq!(on(&sets, date(2025, 6, 1)), [1.20, 0.40]);
        assert_eq!(since(&sets, date(2025, 7, 9)), Some(date(2025, 6, 1)));
        assert_eq!(since(&sets, date(2025, 5, 31)), None, "the base prices");
    }

    #[test]
    fn a_missing_price_is_an_error_not_a_zero() {
        let (_, errs) = errors(&file(
            "[[price_changes]]\nfrom = \"2025-06-01\"\nprices = { valley = 0.40 }\n\
             [[price_changes]]\nfrom = \"2025-06-01\"\nprices = { valley = 0.40, peak = nan }",
        ));
        assert_eq!(
            errs,
            [
                "price_changes[0].prices: no price for band `peak`",
                "price_changes[1].prices.peak: NaN is not a price",
                "price_changes[1].from: 2025-06-01 is given twice",
            ]
        );
    }
}
