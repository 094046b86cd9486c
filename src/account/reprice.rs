//! Re-pricing booked energy after a price correction: the grid company
//! republishes a month's agency prices, or a price was mistyped. Energy and
//! its bands stay as booked (the periods did not change); each band-day
//! takes the price the tariff now gives its date, unattributed energy's
//! bounds are priced again, and every changed day records the revision.
use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::ledger::{Day, Ledger, Revision};
use super::report::Period;
use super::tariff::Tariff;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceChange {
    pub date: Date,
    pub band: String,
    pub before: f64,
    pub after: f64,
    pub charge_kwh: f64,
    pub discharge_kwh: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub days_looked_at: usize,
    pub days_changed: usize,
    pub changes: Vec<PriceChange>,
    /// Band names the tariff no longer has: their days keep the old price.
    pub unknown_bands: Vec<String>,
}

/// Re-prices the days of `period` in `days` with `tariff`; the days that
/// changed are returned (to be written back) with a revision each.
pub fn reprice(
    tariff: &Arc<Tariff>,
    days: &mut BTreeMap<Date, Day>,
    period: Period,
    at: Timestamp,
) -> (Summary, BTreeMap<Date, Day>) {
    let mut summary = Summary::default();
    let mut changed = BTreeMap::new();
    // Only its cursor is used: the cheapest and dearest price over an interval.
    let mut pricer = Ledger::new(tariff.clone(), BTreeMap::new(), SignedDuration::ZERO);
    let dates: Vec<Date> = period.days_in(days).map(|(d, _)| *d).collect();
    for date in dates {
        summary.days_looked_at += 1;
        let Some(day) = days.get_mut(&date) else {
            continue;
        };
        let prices = tariff.prices(date);
        let mut what = Vec::new();
        for (band, b) in day.bands.iter_mut() {
            let Some(i) = tariff.bands.iter().position(|x| x == band) else {
                if !summary.unknown_bands.contains(band) {
                    summary.unknown_bands.push(band.clone());
                }
                continue;
            };
            let after = prices[i];
            if !after.is_finite() || after == b.price {
                continue;
            }
            summary.changes.push(PriceChange {
                date,
                band: band.clone(),
                before: b.price,
                after,
                charge_kwh: b.charge_mwh as f64 / 1e6,
                discharge_kwh: b.discharge_mwh as f64 / 1e6,
            });
            what.push(format!("{band} {} -> {after}", b.price));
            b.price = after;
        }
        if let Some(u) = day.unattributed.as_mut() {
            let before = (u.charge_cost_max, u.discharge_value_max);
            u.reprice(|from, to| pricer.price_range(from, to));
            if before != (u.charge_cost_max, u.discharge_value_max) {
                what.push("unattributed energy's bounds".into());
            }
        }
        if !what.is_empty() {
            day.revisions.push(Revision {
                at,
                what: format!("re-priced with tariff `{}`: {}", tariff.id, what.join(", ")),
            });
            summary.days_changed += 1;
            changed.insert(date, day.clone());
        }
    }
    (summary, changed)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use jiff::civil::date;

    use super::*;
    use crate::account::ledger::{BandDay, Interval, Unattributed};

    fn tariff(valley: f64) -> Arc<Tariff> {
        Arc::new(
            Tariff::parse(
                Path::new("t.toml"),
                &format!(
                    "id = \"t\"\nname = \"t\"\ntimezone = \"Asia/Shanghai\"\ncurrency = \"CNY\"\nsource = \"s\"\n\
                     prices = {{ valley = 0.38, peak = 1.13 }}\n\
                     [[price_changes]]\nfrom = \"2026-11-01\"\nprices = {{ valley = {valley}, peak = 1.13 }}\n\
                     [[seasons]]\nmonths = [1,2,3,4,5,6,7,8,9,10,11,12]\n\
                     bands = [{{ start = \"00:00\", end = \"08:00\", band = \"valley\" }}, {{ start = \"08:00\", end = \"24:00\", band = \"peak\" }}]"
                ),
            )
            .unwrap(),
        )
    }

    fn day(valley_price: f64) -> Day {
        let mut d = Day::default();
        d.bands.insert(
            "valley".into(),
            BandDay {
                charge_mwh: 2_000_000_000,
                price: valley_price,
                ..Default::default()
            },
        );
        d.bands.insert(
            "peak".into(),
            BandDay {
                discharge_mwh: 1_800_000_000,
                price: 1.13,
                ..Default::default()
            },
        );
        d
    }

    #[test]
    fn a_corrected_month_is_repriced_and_says_so() {
        // November was booked at 0.40; the corrected table says 0.39.
        let mut days = BTreeMap::new();
        days.insert(date(2026, 10, 31), day(0.38));
        days.insert(date(2026, 11, 1), day(0.40));
        let mut d = day(0.40);
        let (from, to) = (
            "2026-11-01T23:00:00Z".parse().unwrap(),
            "2026-11-02T01:00:00Z".parse().unwrap(),
        );
        d.unattributed = Some(Box::new(Unattributed {
            charge_mwh: 1_000_000,
            charge_cost_min: 0.40,
            charge_cost_max: 1.13,
            intervals: vec![Interval {
                from,
                to,
                charge_mwh: 1_000_000,
                discharge_mwh: 0,
                aux_mwh: 0,
                price_min: 0.40,
                price_max: 1.13,
            }],
            ..Default::default()
        }));
        days.insert(date(2026, 11, 2), d);
        let at: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let (s, changed) = reprice(&tariff(0.39), &mut days, Period::Month(2026, 11), at);
        assert_eq!((s.days_looked_at, s.days_changed), (2, 2));
        assert_eq!(s.changes.len(), 2);
        assert_eq!((s.changes[0].before, s.changes[0].after), (0.40, 0.39));
        assert_eq!(days[&date(2026, 11, 1)].bands["valley"].price, 0.39);
        assert_eq!(
            days[&date(2026, 10, 31)].bands["valley"].price,
            0.38,
            "October untouched"
        );
        let u = days[&date(2026, 11, 2)].unattributed.as_ref().unwrap();
        assert_eq!(u.intervals[0].price_min, 0.39);
        assert!((u.charge_cost_min - 0.39).abs() < 1e-12);
        let r = &changed[&date(2026, 11, 1)].revisions[0];
        assert_eq!(r.at, at);
        assert!(r.what.contains("valley 0.4 -> 0.39"), "{}", r.what);
        // A second run finds nothing to do.
        let (again, changed) = reprice(&tariff(0.39), &mut days, Period::Month(2026, 11), at);
        assert_eq!((again.days_changed, changed.len()), (0, 0));
    }
}
