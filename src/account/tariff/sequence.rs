//! A site's tariffs in force one after another: when a province replaces its
//! periods (Zhejiang on 2026-07-01), the old file stays right for the old
//! dates and the new one prices the new, so history is never re-priced by
//! today's bands. The parts are merged into one [`Tariff`] whose bands are
//! the union of theirs, so the ledger, the cursor and reports need not know.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use jiff::civil::Date;

use super::{prices, DayPlan, Demand, Era, Tariff};

impl Tariff {
    /// `parts`: each tariff with the first local date it is in force from,
    /// dates strictly rising; the first part also covers earlier dates.
    /// Errors say which parts disagree on what.
    pub fn sequence(id: &str, parts: &[(Date, Arc<Tariff>)]) -> Result<Tariff, String> {
        let Some((_, first)) = parts.first() else {
            return Err("an empty list of tariffs".into());
        };
        if parts.len() == 1 {
            // Nothing to merge; the site's list reads like the bare id.
            return Ok(Tariff::clone(first));
        }
        for w in parts.windows(2) {
            let ((d0, t0), (d1, t1)) = (&w[0], &w[1]);
            if d1 <= d0 {
                return Err(format!(
                    "`{}` from {d1} must come after `{}` from {d0}: list tariffs in date order",
                    t1.id, t0.id
                ));
            }
            if t1.timezone != t0.timezone {
                return Err(format!(
                    "`{}` is in {} but `{}` in {}: a site has one time zone",
                    t0.id, t0.timezone, t1.id, t1.timezone
                ));
            }
            if t1.currency != t0.currency {
                return Err(format!(
                    "`{}` is priced in {} but `{}` in {}",
                    t0.id, t0.currency, t1.id, t1.currency
                ));
            }
            match (&t0.demand, &t1.demand) {
                (None, None) => {}
                (Some(a), Some(b)) if a.window == b.window => {}
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "`{}` and `{}` measure demand over different windows",
                        t0.id, t1.id
                    ))
                }
                _ => {
                    return Err(format!(
                        "only one of `{}` and `{}` has a demand charge: give both one (a price of 0 if it does not apply)",
                        t0.id, t1.id
                    ))
                }
            }
        }
        let bands: Vec<String> = parts
            .iter()
            .flat_map(|(_, t)| t.bands.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let index: HashMap<&str, u8> = bands
            .iter()
            .enumerate()
            .map(|(i, b)| (b.as_str(), i as u8))
            .collect();
        let mut eras = Vec::new();
        let mut price_sets = Vec::new();
        let mut demand_changes = Vec::new();
        for (k, (from, t)) in parts.iter().enumerate() {
            let start = if k == 0 { Date::MIN } else { *from };
            let end = parts.get(k + 1).map(|(d, _)| *d).unwrap_or(Date::MAX);
            let remap: Vec<u8> = t.bands.iter().map(|b| index[b.as_str()]).collect();
            let remap_prices = |p: &[f64]| {
                let mut out = vec![f64::NAN; bands.len()];
                for (i, v) in p.iter().enumerate() {
                    out[remap[i] as usize] = *v;
                }
                out
            };
            price_sets.push((start, remap_prices(prices::on(&t.price_sets, start))));
            for (d, p) in &t.price_sets {
                if start < *d && *d < end {
                    price_sets.push((*d, remap_prices(p)));
                }
            }
            if let Some(dm) = &t.demand {
                if k > 0 {
                    demand_changes.push((start, dm.price_on(start)));
                }
                demand_changes.extend(
                    dm.changes
                        .iter()
                        .filter(|(d, _)| start < *d && *d < end)
                        .copied(),
                );
            }
            let era = &t.eras[0];
            let mut cache: HashMap<*const DayPlan, Arc<DayPlan>> = HashMap::new();
            let plans = era
                .plans
                .iter()
                .map(|row| {
                    row.clone().map(|p| {
                        cache
                            .entry(Arc::as_ptr(&p))
                            .or_insert_with(|| {
                                Arc::new(DayPlan {
                                    starts: p.starts.clone(),
                                    bands: p.bands.iter().map(|b| remap[*b as usize]).collect(),
                                })
                            })
                            .clone()
                    })
                })
                .collect();
            eras.push(Era {
                from: start,
                id: t.id.clone(),
                holidays: era.holidays.clone(),
                workdays: era.workdays.clone(),
                plans,
                prices_monthly: era.prices_monthly,
                holiday_bands: era.holiday_bands,
                price_dates: era
                    .price_dates
                    .iter()
                    .filter(|d| start < **d && **d < end)
                    .copied()
                    .collect(),
            });
        }
        let name = parts
            .iter()
            .enumerate()
            .map(|(k, (d, t))| match k {
                0 => t.name.clone(),
                _ => format!("from {d}: {}", t.name),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let source = parts
            .iter()
            .map(|(_, t)| format!("{}: {}", t.id, t.source))
            .collect::<Vec<_>>()
            .join(" | ");
        let notes: Vec<String> = parts
            .iter()
            .filter_map(|(_, t)| t.notes.as_ref().map(|n| format!("{}: {n}", t.id)))
            .collect();
        Ok(Tariff {
            id: id.to_string(),
            name,
            tz: first.tz.clone(),
            timezone: first.timezone.clone(),
            currency: first.currency.clone(),
            source,
            notes: (!notes.is_empty()).then(|| notes.join(" | ")),
            bands,
            price_sets,
            eras,
            demand: first.demand.as_ref().map(|d| Demand {
                price_per_kw_month: d.price_on(Date::MIN),
                window: d.window,
                changes: demand_changes,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use jiff::Timestamp;

    use super::*;
    use crate::account::tariff::TariffCatalog;

    fn bundled(id: &str) -> Arc<Tariff> {
        TariffCatalog::new(&[]).load(id).unwrap().unwrap()
    }

    fn at(t: &Tariff, s: &str) -> Timestamp {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(t.tz.clone())
            .unwrap()
            .timestamp()
    }

    fn band_at(t: &Tariff, s: &str) -> (String, f64) {
        let seg = t.segment_at(at(t, s));
        (t.bands[seg.band as usize].clone(), seg.price)
    }

    #[test]
    fn zhejiang_changes_its_periods_on_the_first_of_july_2026() {
        let (old, new) = (
            bundled("cn-zhejiang-ci-2024"),
            bundled("cn-zhejiang-ci-2026"),
        );
        let t = Tariff::sequence(
            "site",
            &[
                (date(2024, 1, 1), old.clone()),
                (date(2026, 7, 1), new.clone()),
            ],
        )
        .unwrap();
        // 2024 periods: 09:00-11:00 critical in July; 2026: 18:00-22:00.
        assert_eq!(band_at(&t, "2026-06-30T09:30").0, "peak", "June, 2024 file");
        assert_eq!(band_at(&old, "2026-07-01T09:30").0, "critical");
        assert_eq!(band_at(&t, "2026-07-01T09:30").0, "flat", "the 2026 file");
        assert_eq!(band_at(&t, "2026-07-01T19:00").0, "critical");
        assert_eq!(t.file_id(date(2026, 6, 30)), "cn-zhejiang-ci-2024");
        assert_eq!(t.file_id(date(2026, 7, 1)), "cn-zhejiang-ci-2026");
        assert_eq!(t.file_id(date(2020, 1, 1)), "cn-zhejiang-ci-2024");
        // Prices follow the file in force, each band by its own name.
        let p =
            |tt: &Tariff, d, b: &str| tt.prices(d)[tt.bands.iter().position(|x| x == b).unwrap()];
        assert_eq!(
            p(&t, date(2026, 8, 3), "valley"),
            p(&new, date(2026, 8, 3), "valley")
        );
        assert_eq!(
            p(&t, date(2026, 3, 3), "valley"),
            p(&old, date(2026, 3, 3), "valley")
        );
        // The boundary at midnight is a band change, found without a walk.
        let (_, when, _) = t.next_change(at(&t, "2026-06-30T23:30"));
        assert!(when <= at(&t, "2026-07-01T00:00"));
    }

    #[test]
    fn parts_out_of_order_or_in_other_zones_are_refused() {
        let cq = bundled("cn-chongqing-ci-2025-02");
        let de = bundled("eu-berlin-two-rate-example");
        let e = Tariff::sequence(
            "s",
            &[
                (date(2026, 1, 1), cq.clone()),
                (date(2025, 1, 1), cq.clone()),
            ],
        )
        .unwrap_err();
        assert!(e.contains("must come after"), "{e}");
        let e =
            Tariff::sequence("s", &[(date(2025, 1, 1), cq), (date(2026, 1, 1), de)]).unwrap_err();
        assert!(e.contains("one time zone"), "{e}");
    }
}
