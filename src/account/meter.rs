//! The settlement meter's per-rate registers (尖峰平谷 forward and reverse
//! energy): a settlement sheet is built from their readings, not from any
//! monitor's ledger, so the ledger keeps each register's first reading
//! after every local midnight (a month's opening reading is its first
//! day's), and watches when the meter's rates switch. A meter switches on
//! its own clock and its own programmed table; a switch away from the
//! tariff's boundary means the clock has drifted or the table is stale, and
//! energy is being billed at the wrong rate.
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::ledger::Ledger;
use crate::role::{RateFlow, Role};

/// A register's reading, in mWh, and when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeterReading {
    pub at: Timestamp,
    pub mwh: i64,
}

/// The meter began counting a flow in another rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateSwitch {
    /// Midway between the last reading in the old rate and the first in the new.
    pub at: Timestamp,
    pub flow: String,
    /// Rates as the meter numbers them (1 first).
    pub from_rate: u8,
    pub to_rate: u8,
    /// Seconds after the tariff's nearest boundary into the new rate's band
    /// (negative: before it); None when the tariff has no such boundary near.
    pub offset_s: Option<i64>,
}

/// At most this many switches are kept per day: a healthy four-rate meter
/// switches under a dozen times a day per flow that moves.
pub const SWITCHES_PER_DAY: usize = 64;

/// How far a boundary is looked for on either side of a switch.
const NEAR: SignedDuration = SignedDuration::from_hours(2);

/// A switch is timed only when readings bracket it this closely: polls
/// hours apart say that the rate changed, not when.
const MAX_BRACKET: SignedDuration = SignedDuration::from_mins(2);

/// One reading of a flow's rate registers: which rates moved since the last.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Reading {
    at: Option<Timestamp>,
    moved: u8,
}

impl Reading {
    fn single(self) -> Option<usize> {
        (self.moved.count_ones() == 1).then(|| self.moved.trailing_zeros() as usize)
    }
}

#[derive(Debug, Clone, Default)]
pub struct MeterWatch {
    /// Per role: the last value and the local date whose opening reading is kept.
    last: std::collections::HashMap<Role, (i64, Option<jiff::civil::Date>)>,
    /// Per flow: the reading being gathered (registers of one sample share
    /// its time) and the one before it.
    current: [Reading; 4],
    previous: [Reading; 4],
}

impl MeterWatch {
    /// One reading of a per-rate register. `meter_rates` names the band of each rate.
    pub fn observe(
        &mut self,
        ledger: &mut Ledger,
        meter_rates: &[String],
        at: Timestamp,
        role: Role,
        mwh: i64,
    ) {
        let Some((flow, rate)) = role.meter_rate() else {
            return;
        };
        let date = ledger.tariff().tz.to_datetime(at).date();
        let entry = self.last.entry(role).or_insert((mwh, None));
        if entry.1 != Some(date) {
            ledger.note_meter_reading(date, role.name(), MeterReading { at, mwh });
            entry.1 = Some(date);
        }
        let moved = mwh > entry.0;
        entry.0 = mwh;
        let f = flow as usize;
        if self.current[f].at != Some(at) {
            self.finish_reading(ledger, meter_rates, flow);
            self.current[f] = Reading {
                at: Some(at),
                moved: 0,
            };
        }
        if moved {
            self.current[f].moved |= 1 << rate;
        }
    }

    /// A flow's reading is complete once a later one begins: a switch is
    /// one rate moving after another moved alone, or both moving in the
    /// reading after the old one moved alone.
    fn finish_reading(&mut self, ledger: &mut Ledger, meter_rates: &[String], flow: RateFlow) {
        let f = flow as usize;
        let (prev, cur) = (self.previous[f], self.current[f]);
        if let (Some(pt), Some(ct), Some(old)) = (prev.at, cur.at, prev.single()) {
            let new = match cur.single() {
                Some(n) if n != old => Some(n),
                None if cur.moved.count_ones() == 2 && cur.moved & (1 << old) != 0 => {
                    Some((cur.moved & !(1 << old)).trailing_zeros() as usize)
                }
                _ => None,
            };
            if let Some(new) = new.filter(|_| pt.duration_until(ct) <= MAX_BRACKET) {
                let mid = pt.checked_add(pt.duration_until(ct) / 2).unwrap_or(ct);
                let offset_s = meter_rates
                    .get(new)
                    .and_then(|band| offset(ledger, band, mid));
                let date = ledger.tariff().tz.to_datetime(mid).date();
                ledger.note_rate_switch(
                    date,
                    RateSwitch {
                        at: mid,
                        flow: flow.name().to_string(),
                        from_rate: old as u8 + 1,
                        to_rate: new as u8 + 1,
                        offset_s,
                    },
                );
            }
        }
        if cur.at.is_some() {
            self.previous[f] = cur;
        }
    }
}

/// Seconds from the nearest tariff boundary into `band` to `t`.
fn offset(ledger: &Ledger, band: &str, t: Timestamp) -> Option<i64> {
    let tariff = ledger.tariff();
    let is_band = |ts: Timestamp| {
        let s = tariff.segment_at(ts);
        (tariff.bands[s.band as usize] == band, s)
    };
    let mut best: Option<i64> = None;
    let mut consider = |boundary: Timestamp| {
        let o = boundary.duration_until(t).as_secs();
        if o.abs() <= NEAR.as_secs() && best.is_none_or(|b| o.abs() < b.abs()) {
            best = Some(o);
        }
    };
    // Boundaries into `band` before t: walk back over segments.
    let (mut inside, mut seg) = is_band(t);
    for _ in 0..16 {
        let before = seg.start.checked_sub(SignedDuration::from_nanos(1)).ok();
        let Some(before) = before else { break };
        let (prev_inside, prev) = is_band(before);
        if inside && !prev_inside {
            consider(seg.start);
        }
        if t.duration_since(prev.start) > NEAR {
            break;
        }
        (inside, seg) = (prev_inside, prev);
    }
    // And after it.
    let (mut inside, mut seg) = is_band(t);
    for _ in 0..16 {
        let (next_inside, next) = is_band(seg.end);
        if next_inside && !inside {
            consider(seg.end);
        }
        if next.start.duration_since(t) > NEAR {
            break;
        }
        (inside, seg) = (next_inside, next);
    }
    best
}

/// Which flows a meter has per-rate registers for, and how many rates.
pub fn flows_of(roles: impl Iterator<Item = Role>) -> Vec<(RateFlow, usize)> {
    let mut out: Vec<(RateFlow, usize)> = Vec::new();
    for (flow, rate) in roles.filter_map(Role::meter_rate) {
        match out.iter_mut().find(|(f, _)| *f == flow) {
            Some((_, n)) => *n = (*n).max(rate + 1),
            None => out.push((flow, rate + 1)),
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::account::tariff::TariffCatalog;

    fn at(s: &str) -> Timestamp {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
            .unwrap()
            .timestamp()
    }

    fn chongqing_ledger() -> Ledger {
        let t = TariffCatalog::new(&[])
            .load("cn-chongqing-ci-2025-02")
            .unwrap()
            .unwrap();
        Ledger::new(t, BTreeMap::new(), SignedDuration::from_mins(1))
    }

    fn rates() -> Vec<String> {
        crate::role::default_meter_rates()
    }

    #[test]
    fn the_first_reading_after_midnight_opens_the_day_and_switches_are_timed() {
        let mut l = chongqing_ledger();
        let mut w = MeterWatch::default();
        let (valley, flat) = (Role::ChargeEnergyRate4, Role::ChargeEnergyRate3);
        // Charging through 08:00 (valley to flat in Chongqing) on a meter
        // whose clock is 90 s slow: it switches at 08:01:30.
        w.observe(&mut l, &rates(), at("2025-03-10T00:00:07"), valley, 1_000);
        w.observe(&mut l, &rates(), at("2025-03-10T00:00:08"), valley, 1_010);
        w.observe(&mut l, &rates(), at("2025-03-10T08:01:29"), valley, 9_000);
        w.observe(&mut l, &rates(), at("2025-03-10T08:01:29"), flat, 50);
        w.observe(&mut l, &rates(), at("2025-03-10T08:01:31"), valley, 9_000);
        w.observe(&mut l, &rates(), at("2025-03-10T08:01:31"), flat, 80);
        // The reading is complete when the next begins.
        w.observe(&mut l, &rates(), at("2025-03-10T08:01:32"), flat, 90);
        l.flush();
        let day = &l.days[&jiff::civil::date(2025, 3, 10)];
        assert_eq!(
            day.meter_open["charge_energy_rate4"],
            MeterReading {
                at: at("2025-03-10T00:00:07"),
                mwh: 1_000
            }
        );
        assert_eq!(day.meter_open["charge_energy_rate3"].mwh, 50);
        assert_eq!(day.rate_switches.len(), 1, "{:?}", day.rate_switches);
        let s = &day.rate_switches[0];
        assert_eq!((s.from_rate, s.to_rate, s.flow.as_str()), (4, 3, "charge"));
        // Midway between 08:01:29 and 08:01:31.
        assert_eq!(s.offset_s, Some(90));
    }

    #[test]
    fn an_early_switch_has_a_negative_offset() {
        let mut l = chongqing_ledger();
        let mut w = MeterWatch::default();
        // Discharging into the 11:00 peak, the meter moves to peak at 10:55.
        let (flat, peak) = (Role::DischargeEnergyRate3, Role::DischargeEnergyRate2);
        w.observe(&mut l, &rates(), at("2025-03-10T10:54:57"), flat, 10);
        w.observe(&mut l, &rates(), at("2025-03-10T10:54:59"), flat, 20);
        w.observe(&mut l, &rates(), at("2025-03-10T10:54:59"), peak, 0);
        w.observe(&mut l, &rates(), at("2025-03-10T10:55:01"), flat, 20);
        w.observe(&mut l, &rates(), at("2025-03-10T10:55:01"), peak, 5);
        w.observe(&mut l, &rates(), at("2025-03-10T10:55:02"), peak, 6);
        l.flush();
        let s = &l.days[&jiff::civil::date(2025, 3, 10)].rate_switches[0];
        assert_eq!(s.offset_s, Some(-300));
    }

    #[test]
    fn readings_hours_apart_time_no_switch() {
        let mut l = chongqing_ledger();
        let mut w = MeterWatch::default();
        let (valley, flat) = (Role::ChargeEnergyRate4, Role::ChargeEnergyRate3);
        for (when, v, f) in [
            ("2025-03-10T07:00:00", 0, 0),
            ("2025-03-10T07:30:00", 10, 0),
            ("2025-03-10T11:00:00", 20, 10),
            ("2025-03-10T11:00:01", 20, 10),
        ] {
            w.observe(&mut l, &rates(), at(when), valley, v);
            w.observe(&mut l, &rates(), at(when), flat, f);
        }
        l.flush();
        assert!(l.days[&jiff::civil::date(2025, 3, 10)]
            .rate_switches
            .is_empty());
    }
}
