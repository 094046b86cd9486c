//! Ledger against settlement meter: per band, the energy the ledger booked
//! by the tariff's clock against what the meter's per-rate registers
//! counted by its own, over the whole days both cover. A difference beyond
//! the tolerance is flagged; rate switches away from the tariff's boundaries
//! name the meter's clock or time-of-use table as the cause, with the offset.
use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Serialize;

use super::ledger::Day;
use crate::role::{RateFlow, Role};

/// Differences below this many kWh are never flagged: a register's last
/// digit and the ledger's attribution of one poll interval.
const FLOOR_KWH: f64 = 0.1;
/// A median offset beyond this many seconds names the meter's clock.
const CLOCK_TOLERANCE_S: i64 = 60;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub flow: &'static str,
    pub rate: u8,
    pub band: String,
    pub opening_kwh: f64,
    pub closing_kwh: f64,
    pub meter_kwh: f64,
    pub ledger_kwh: f64,
    pub difference_kwh: f64,
    /// Of the meter's figure; None when the meter counted nothing.
    pub difference_pct: Option<f64>,
    pub flagged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clock {
    /// Switches whose offset from a tariff boundary was found.
    pub switches: usize,
    pub median_offset_s: i64,
    /// Switches into a rate whose band begins nowhere near.
    pub unexplained: usize,
    pub flagged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciliation {
    /// The whole days compared: from `from` to the end of `to`.
    pub from: Date,
    pub to: Date,
    pub tolerance: f64,
    pub lines: Vec<Line>,
    pub clock: Option<Clock>,
    pub notes: Vec<String>,
}

impl Reconciliation {
    pub fn flagged(&self) -> bool {
        self.lines.iter().any(|l| l.flagged) || self.clock.as_ref().is_some_and(|c| c.flagged)
    }
}

/// The opening and closing reading of a register for the days `first..=last`:
/// the first reading on or after `first`, and the last on or before the day
/// after `last` (whose first reading closes `last`).
pub fn readings(
    days: &BTreeMap<Date, Day>,
    role: &str,
    first: Date,
    last: Date,
) -> Option<((Date, i64), (Date, i64))> {
    let after = last.tomorrow().unwrap_or(last);
    let open = days
        .range(first..=after)
        .find_map(|(d, day)| day.meter_open.get(role).map(|r| (*d, r.mwh)))?;
    let close = days
        .range(first..=after)
        .rev()
        .find_map(|(d, day)| day.meter_open.get(role).map(|r| (*d, r.mwh)))?;
    (close.0 > open.0).then_some((open, close))
}

/// Compares the days `first..=last`; None when the meter has no per-rate
/// readings spanning a whole day there.
pub fn reconcile(
    days: &BTreeMap<Date, Day>,
    meter_rates: &[String],
    tolerance: f64,
    first: Date,
    last: Date,
) -> Option<Reconciliation> {
    let mut lines = Vec::new();
    let mut span: Option<(Date, Date)> = None;
    let mut notes = Vec::new();
    for flow in [RateFlow::Charge, RateFlow::Discharge] {
        for (rate, band) in meter_rates.iter().enumerate().take(4) {
            let role = flow.role(rate);
            let Some(((a, open), (b, close))) = readings(days, role.name(), first, last) else {
                continue;
            };
            span = Some(span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            let ledger_mwh: i64 = days
                .range(a..b)
                .filter_map(|(_, d)| d.bands.get(band))
                .map(|x| match flow {
                    RateFlow::Charge => x.charge_mwh,
                    _ => x.discharge_mwh,
                })
                .fold(0, i64::saturating_add);
            let meter_kwh = close.saturating_sub(open) as f64 / 1e6;
            if close < open {
                notes.push(format!(
                    "{} went down from {:.2} to {:.2} kWh between {a} and {b}: the meter was replaced or reset",
                    role.name(),
                    open as f64 / 1e6,
                    close as f64 / 1e6
                ));
            }
            let ledger_kwh = ledger_mwh as f64 / 1e6;
            let difference_kwh = ledger_kwh - meter_kwh;
            let flagged = difference_kwh.abs() > FLOOR_KWH
                && difference_kwh.abs() > tolerance * meter_kwh.abs().max(ledger_kwh.abs());
            lines.push(Line {
                flow: flow.name(),
                rate: rate as u8 + 1,
                band: band.clone(),
                opening_kwh: open as f64 / 1e6,
                closing_kwh: close as f64 / 1e6,
                meter_kwh,
                ledger_kwh,
                difference_kwh,
                difference_pct: (meter_kwh != 0.0).then(|| difference_kwh / meter_kwh * 100.0),
                flagged,
            });
        }
    }
    let whole = span.is_some();
    let (from, end) = span.unwrap_or((first, last.tomorrow().unwrap_or(last)));
    let to = end.yesterday().unwrap_or(end);
    if whole && (from > first || to < last) {
        notes.push(format!(
            "the meter's readings cover {from} to {to} only: days outside have no opening or closing reading"
        ));
    }
    // Bands the meter has no rate for are billed under some other rate.
    let mut unrated: Vec<&str> = days
        .range(from..end)
        .flat_map(|(_, d)| d.bands.keys())
        .filter(|b| !meter_rates.contains(b))
        .map(String::as_str)
        .collect();
    unrated.sort();
    unrated.dedup();
    if !unrated.is_empty() {
        notes.push(format!(
            "bands with no meter rate in meter_rates: {} (the meter counts them under another rate, so that rate's line differs)",
            unrated.join(", ")
        ));
    }
    let mut offsets: Vec<i64> = Vec::new();
    let mut unexplained = 0;
    for (_, d) in days.range(from..end) {
        for s in &d.rate_switches {
            match s.offset_s {
                Some(o) => offsets.push(o),
                None => unexplained += 1,
            }
        }
    }
    let clock = (!offsets.is_empty() || unexplained > 0).then(|| {
        offsets.sort();
        let median = offsets.get(offsets.len() / 2).copied().unwrap_or(0);
        Clock {
            switches: offsets.len(),
            median_offset_s: median,
            unexplained,
            flagged: median.abs() > CLOCK_TOLERANCE_S || unexplained > offsets.len(),
        }
    });
    if let Some(c) = clock.as_ref().filter(|c| c.flagged) {
        notes.push(if c.median_offset_s.abs() > CLOCK_TOLERANCE_S {
            format!(
                "the meter switches rates {} s {} the tariff's boundaries (median of {} switches): its clock or its time-of-use table is wrong, and energy near each boundary is billed at the wrong rate",
                c.median_offset_s.abs(),
                if c.median_offset_s > 0 { "after" } else { "before" },
                c.switches
            )
        } else {
            format!(
                "{} of the meter's rate switches fall where the tariff has no boundary into that rate's band: its time-of-use table differs from the tariff",
                c.unexplained
            )
        });
    }
    if lines.is_empty() && clock.is_none() {
        return None;
    }
    Some(Reconciliation {
        from,
        to,
        tolerance,
        lines,
        clock,
        notes,
    })
}

/// Whether any role of a per-rate meter was read into these days.
pub fn has_meter(days: &BTreeMap<Date, Day>) -> bool {
    days.values().any(|d| {
        d.meter_open
            .keys()
            .any(|k| Role::from_name(k).is_some_and(|r| r.meter_rate().is_some()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::ledger::BandDay;
    use crate::account::meter::MeterReading;
    use jiff::civil::date;

    fn day(valley_charge_kwh: i64, meter_valley_mwh: Option<i64>) -> Day {
        let mut d = Day::default();
        d.bands.insert(
            "valley".into(),
            BandDay {
                charge_mwh: valley_charge_kwh * 1_000_000,
                ..Default::default()
            },
        );
        if let Some(m) = meter_valley_mwh {
            d.meter_open.insert(
                "charge_energy_rate4".into(),
                MeterReading {
                    at: jiff::Timestamp::UNIX_EPOCH,
                    mwh: m,
                },
            );
        }
        d
    }

    fn rates() -> Vec<String> {
        crate::role::default_meter_rates()
    }

    #[test]
    fn a_band_within_tolerance_passes_and_one_beyond_is_flagged() {
        let mut days = BTreeMap::new();
        days.insert(date(2026, 3, 1), day(2000, Some(0)));
        days.insert(date(2026, 3, 2), day(2000, Some(2_010_000_000)));
        days.insert(date(2026, 3, 3), day(0, Some(4_020_000_000)));
        let r = reconcile(&days, &rates(), 0.01, date(2026, 3, 1), date(2026, 3, 2)).unwrap();
        assert_eq!((r.from, r.to), (date(2026, 3, 1), date(2026, 3, 2)));
        let l = &r.lines[0];
        assert_eq!((l.meter_kwh, l.ledger_kwh), (4020.0, 4000.0));
        assert!(!l.flagged, "0.5 % is within 1 %: {l:?}");
        let strict = reconcile(&days, &rates(), 0.001, date(2026, 3, 1), date(2026, 3, 2)).unwrap();
        assert!(strict.lines[0].flagged && strict.flagged());
        // Without the closing reading only the first day is compared, and said so.
        days.remove(&date(2026, 3, 3));
        let r = reconcile(&days, &rates(), 0.01, date(2026, 3, 1), date(2026, 3, 2)).unwrap();
        assert_eq!(r.to, date(2026, 3, 1));
        assert!(
            r.notes[0].contains("cover 2026-03-01 to 2026-03-01 only"),
            "{:?}",
            r.notes
        );
    }
}
