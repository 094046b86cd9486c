//! The savings ledger: per local day and band, the energy charged, discharged
//! and used by auxiliaries, with the price in force.
//!
//! Energy is kept in integer milliwatt-hours, so a year of 1 s samples sums
//! without drift; money is derived per day and band (one multiplication by a
//! price constant for that day) and summed with compensation in reports.
//! Energy crossing a band boundary between two readings close together is
//! split in proportion to time, with the rounding remainder kept in the last
//! piece so the pieces add up exactly. Between readings further apart than the
//! attribution gap nobody knows when the energy flowed: if such an interval
//! lies in one band of one day it is booked there (the band is certain),
//! otherwise it is kept apart as unattributed, with the cheapest and dearest
//! price in force over it, so the money it could stand for has bounds and is
//! never spread by guesswork.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::tariff::{Cursor, Tariff};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BandDay {
    pub charge_mwh: i64,
    pub discharge_mwh: i64,
    pub aux_mwh: i64,
    /// Price per kWh of this band on this day.
    pub price: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Day {
    /// By band name, so a ledger stays readable after the tariff file changes.
    pub bands: BTreeMap<String, BandDay>,
    /// Counter jumps held back as implausible (reported, never booked).
    pub quarantined_mwh: i64,
    /// Gaps in power integration (nothing booked across them).
    pub gaps: u32,
    /// Energy over long intervals that crossed a band boundary or midnight,
    /// booked on the day the interval ended. Boxed: most days have none, and
    /// every site keeps its days in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unattributed: Option<Box<Unattributed>>,
    /// Counter readings further apart than the attribution gap, by
    /// `device/role`, on the day the gap ended.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counter_gaps: BTreeMap<String, GapStats>,
    /// Counter readings held back as implausible for more than five minutes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub held_back: u32,
    /// A settlement meter's per-rate registers: each one's first reading
    /// of the day, by role name (a month's opening reading is its first day's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meter_open: BTreeMap<String, super::meter::MeterReading>,
    /// When the meter's rates switched, against the tariff's boundaries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_switches: Vec<super::meter::RateSwitch>,
    /// What was done to this day after it was booked (re-priced, backfilled):
    /// a settled figure must say when and how it changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<Revision>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub at: Timestamp,
    pub what: String,
}

impl Unattributed {
    /// Prices every interval again with `range` (cheapest, dearest price
    /// over it) and sums the money bounds afresh, as `record` would have.
    pub fn reprice(&mut self, mut range: impl FnMut(Timestamp, Timestamp) -> (f64, f64)) {
        let (mut cc, mut dv, mut ac) = ([0.0; 2], [0.0; 2], [0.0; 2]);
        for (list, hidden) in [(&mut self.intervals, false), (&mut self.hidden, true)] {
            for i in list.iter_mut() {
                (i.price_min, i.price_max) = range(i.from, i.to);
                let lo = if hidden { 0.0 } else { i.price_min };
                for (mwh, acc) in [
                    (i.charge_mwh, &mut cc),
                    (i.discharge_mwh, &mut dv),
                    (i.aux_mwh, &mut ac),
                ] {
                    let kwh = mwh as f64 / 1e6;
                    acc[0] += kwh * lo;
                    acc[1] += kwh * i.price_max;
                }
            }
        }
        [self.charge_cost_min, self.charge_cost_max] = cc;
        [self.discharge_value_min, self.discharge_value_max] = dv;
        [self.aux_cost_min, self.aux_cost_max] = ac;
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Energy whose band is not known, with what it could have been worth.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unattributed {
    pub charge_mwh: i64,
    pub discharge_mwh: i64,
    pub aux_mwh: i64,
    /// Each kind priced at the cheapest and at the dearest price in force over its interval.
    pub charge_cost_min: f64,
    pub charge_cost_max: f64,
    pub discharge_value_min: f64,
    pub discharge_value_max: f64,
    pub aux_cost_min: f64,
    pub aux_cost_max: f64,
    pub intervals: Vec<Interval>,
    /// Spans a counter reset hid: how much flowed there is unknown, only its
    /// upper bound (what rated power allows). Counted in the money bounds above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<Interval>,
}

/// One interval between two readings whose energy could not be attributed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub from: Timestamp,
    pub to: Timestamp,
    pub charge_mwh: i64,
    pub discharge_mwh: i64,
    pub aux_mwh: i64,
    pub price_min: f64,
    pub price_max: f64,
}

impl Interval {
    fn new(from: Timestamp, to: Timestamp, price_min: f64, price_max: f64) -> Interval {
        Interval {
            from,
            to,
            charge_mwh: 0,
            discharge_mwh: 0,
            aux_mwh: 0,
            price_min,
            price_max,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GapStats {
    pub count: u32,
    pub longest_s: f64,
    pub total_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Charge,
    Discharge,
    Aux,
}

#[derive(Debug)]
pub struct Ledger {
    cursor: Cursor,
    pub days: BTreeMap<Date, Day>,
    dirty: BTreeSet<Date>,
    /// The day being booked into, by band index: the hot path touches no map.
    cur: Option<(Date, Vec<BandDay>)>,
    /// Readings further apart than this are not split by time across bands.
    max_gap: SignedDuration,
}

/// Splits `total` over pieces weighted by `weights` so the parts sum to `total` exactly.
pub fn split(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|&w| w as i128).sum();
    if sum == 0 {
        let mut v = vec![0; weights.len()];
        if let Some(last) = v.last_mut() {
            *last = total;
        }
        return v;
    }
    let mut acc = 0i128;
    let mut given = 0i64;
    weights
        .iter()
        .map(|&w| {
            acc += w as i128;
            let upto = (2 * total as i128 * acc + sum).div_euclid(2 * sum) as i64;
            let part = upto - given;
            given = upto;
            part
        })
        .collect()
}

impl Ledger {
    pub fn new(tariff: Arc<Tariff>, days: BTreeMap<Date, Day>, max_gap: SignedDuration) -> Self {
        Ledger {
            cursor: Cursor::new(tariff),
            days,
            dirty: BTreeSet::new(),
            cur: None,
            max_gap,
        }
    }

    pub fn tariff(&self) -> &Arc<Tariff> {
        &self.cursor.tariff
    }

    /// Books `mwh` of `kind` that flowed over `[from, to]`.
    pub fn book(&mut self, from: Timestamp, to: Timestamp, kind: Kind, mwh: i64) {
        if mwh == 0 {
            return;
        }
        let seg = self.cursor.at(if to <= from { to } else { from });
        if to <= seg.end {
            // All in one segment: the common case.
            self.add(seg.date, seg.band, seg.price, kind, mwh);
            return;
        }
        if from.duration_until(to) > self.max_gap {
            // Too long to split by time. One band of one day still takes it
            // all; otherwise it is unattributed. Walked only as far as the
            // first change of band or day: a gap may span years (a clock
            // that jumped), which must not cost a segment per band and day.
            let mut t = seg.end;
            let same = loop {
                if t >= to {
                    break true;
                }
                let next = self.cursor.at(t);
                if (next.date, next.band) != (seg.date, seg.band) || next.end <= t {
                    break false;
                }
                t = next.end;
            };
            if same {
                self.add(seg.date, seg.band, seg.price, kind, mwh);
            } else {
                let (lo, hi) = self.price_range(from, to);
                self.unattributed(from, to, kind, mwh, lo, hi);
            }
            return;
        }
        let mut pieces = Vec::new();
        let mut t = from;
        while t < to {
            let seg = self.cursor.at(t);
            let end = seg.end.min(to);
            pieces.push((seg, t.duration_until(end).as_nanos() as i64));
            t = end;
        }
        let weights: Vec<i64> = pieces.iter().map(|p| p.1).collect();
        for ((seg, _), part) in pieces.iter().zip(split(mwh, &weights)) {
            self.add(seg.date, seg.band, seg.price, kind, part);
        }
    }

    fn unattributed(
        &mut self,
        from: Timestamp,
        to: Timestamp,
        kind: Kind,
        mwh: i64,
        lo: f64,
        hi: f64,
    ) {
        self.record(Interval::new(from, to, lo, hi), kind, mwh, false);
    }

    /// A counter reset hid up to `max_mwh` of `kind` over `[from, to]`: nothing
    /// is booked, the money bounds widen by what it could have been worth.
    pub fn note_hidden(&mut self, from: Timestamp, to: Timestamp, kind: Kind, max_mwh: i64) {
        let (lo, hi) = self.price_range(from, to);
        self.record(Interval::new(from, to, lo, hi), kind, max_mwh, true);
    }

    /// Records energy whose band is unknown on the day the interval ends:
    /// `mwh` of it (`hidden`: at most `mwh`, amount unknown), priced at the
    /// interval's cheapest and dearest price.
    fn record(&mut self, interval: Interval, kind: Kind, mwh: i64, hidden: bool) {
        let u = self
            .day_mut(interval.to)
            .unattributed
            .get_or_insert_default();
        let kwh = mwh as f64 / 1e6;
        // What hid may have been nothing at all: its least worth is zero.
        let least = if hidden {
            0.0
        } else {
            kwh * interval.price_min
        };
        let most = kwh * interval.price_max;
        let (energy, min, max) = match kind {
            Kind::Charge => (
                &mut u.charge_mwh,
                &mut u.charge_cost_min,
                &mut u.charge_cost_max,
            ),
            Kind::Discharge => (
                &mut u.discharge_mwh,
                &mut u.discharge_value_min,
                &mut u.discharge_value_max,
            ),
            Kind::Aux => (&mut u.aux_mwh, &mut u.aux_cost_min, &mut u.aux_cost_max),
        };
        if !hidden {
            *energy += mwh;
        }
        *min += least;
        *max += most;
        let list = if hidden {
            &mut u.hidden
        } else {
            &mut u.intervals
        };
        // Counters of one device read together share their interval: one record.
        let i = match list
            .iter()
            .position(|i| i.from == interval.from && i.to == interval.to)
        {
            Some(i) => i,
            None => {
                list.push(interval);
                list.len() - 1
            }
        };
        let i = &mut list[i];
        *match kind {
            Kind::Charge => &mut i.charge_mwh,
            Kind::Discharge => &mut i.discharge_mwh,
            Kind::Aux => &mut i.aux_mwh,
        } += mwh;
    }

    /// The cheapest and dearest price in force over `[from, to]`. Past a few
    /// years of segments the bounds become those of every price the tariff
    /// has ever had: wider, still true, and not a walk through centuries
    /// when a timestamp is off by a thousand years.
    pub fn price_range(&mut self, from: Timestamp, to: Timestamp) -> (f64, f64) {
        const WALK_LIMIT: usize = 10_000;
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        let mut t = from;
        for _ in 0..WALK_LIMIT {
            let seg = self.cursor.at(t);
            (lo, hi) = (lo.min(seg.price), hi.max(seg.price));
            if seg.end >= to || seg.end <= t {
                return (lo, hi);
            }
            t = seg.end;
        }
        for (_, prices) in &self.cursor.tariff.price_sets {
            for p in prices {
                (lo, hi) = (lo.min(*p), hi.max(*p));
            }
        }
        (lo, hi)
    }

    /// The day record of instant `at`, for the rarer bookkeeping beside energy.
    fn day_mut(&mut self, at: Timestamp) -> &mut Day {
        let date = self.cursor.at(at).date;
        self.flush();
        self.dirty.insert(date);
        self.days.entry(date).or_default()
    }

    /// Two readings of a counter were `from`..`to` apart, beyond the attribution gap.
    pub fn note_counter_gap(&mut self, key: &str, from: Timestamp, to: Timestamp) {
        let secs = from.duration_until(to).as_secs_f64();
        let day = self.day_mut(to);
        let g = match day.counter_gaps.get_mut(key) {
            Some(g) => g,
            None => day.counter_gaps.entry(key.to_string()).or_default(),
        };
        g.count += 1;
        g.total_s += secs;
        g.longest_s = g.longest_s.max(secs);
    }

    /// The first reading of a meter register on a local date; later ones are ignored.
    pub fn note_meter_reading(&mut self, date: Date, role: &str, r: super::meter::MeterReading) {
        if self
            .days
            .get(&date)
            .is_some_and(|d| d.meter_open.contains_key(role))
        {
            return;
        }
        self.flush();
        self.dirty.insert(date);
        let day = self.days.entry(date).or_default();
        day.meter_open.insert(role.to_string(), r);
    }

    pub fn note_rate_switch(&mut self, date: Date, s: super::meter::RateSwitch) {
        self.flush();
        self.dirty.insert(date);
        let day = self.days.entry(date).or_default();
        if day.rate_switches.len() < super::meter::SWITCHES_PER_DAY {
            day.rate_switches.push(s);
        }
    }

    pub fn note_held_back(&mut self, at: Timestamp) {
        self.day_mut(at).held_back += 1;
    }

    fn add(&mut self, date: Date, band: u8, price: f64, kind: Kind, mwh: i64) {
        if self.cur.as_ref().is_none_or(|(d, _)| *d != date) {
            self.flush();
            let tariff = self.cursor.tariff.clone();
            let mut row = vec![BandDay::default(); tariff.bands.len()];
            if let Some(day) = self.days.get(&date) {
                for (i, name) in tariff.bands.iter().enumerate() {
                    if let Some(b) = day.bands.get(name) {
                        row[i] = *b;
                    }
                }
            }
            self.cur = Some((date, row));
        }
        let (_, row) = self.cur.as_mut().expect("set above");
        let b = &mut row[band as usize];
        b.price = price;
        match kind {
            Kind::Charge => b.charge_mwh += mwh,
            Kind::Discharge => b.discharge_mwh += mwh,
            Kind::Aux => b.aux_mwh += mwh,
        }
    }

    pub fn note_quarantine(&mut self, at: Timestamp, mwh: i64) {
        self.day_mut(at).quarantined_mwh += mwh;
    }

    pub fn note_gap(&mut self, at: Timestamp) {
        self.day_mut(at).gaps += 1;
    }

    /// Moves the hot-path row into `days`.
    pub fn flush(&mut self) {
        if let Some((date, row)) = self.cur.take() {
            let tariff = self.cursor.tariff.clone();
            let day = self.days.entry(date).or_default();
            for (i, b) in row.into_iter().enumerate() {
                if b != BandDay::default() || day.bands.contains_key(&tariff.bands[i]) {
                    day.bands.insert(tariff.bands[i].clone(), b);
                }
            }
            self.dirty.insert(date);
        }
    }

    /// Days changed since the last call, with their contents.
    pub fn take_dirty(&mut self) -> Vec<(Date, Day)> {
        self.flush();
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter_map(|d| self.days.get(&d).map(|day| (d, day.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled(id: &str) -> Arc<Tariff> {
        crate::account::tariff::TariffCatalog::new(&[])
            .load(id)
            .unwrap()
            .unwrap()
    }

    fn chongqing() -> Arc<Tariff> {
        bundled("cn-chongqing-ci-2025-02")
    }

    fn local(t: &Tariff, s: &str) -> Timestamp {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(t.tz.clone())
            .unwrap()
            .timestamp()
    }

    #[test]
    fn split_is_exact() {
        assert_eq!(split(10, &[1, 1, 1]), vec![3, 4, 3]);
        assert_eq!(split(10, &[1, 1, 1]).iter().sum::<i64>(), 10);
        assert_eq!(split(-7, &[2, 5]), vec![-2, -5]);
        assert_eq!(split(5, &[0, 0]), vec![0, 5]);
    }

    #[test]
    fn energy_across_a_band_boundary_is_split_by_time() {
        let t = chongqing();
        let mut l = Ledger::new(t.clone(), BTreeMap::new(), SignedDuration::from_hours(48));
        // 07:45 to 08:15 crosses valley -> flat at 08:00: half each.
        l.book(
            local(&t, "2025-03-10T07:45"),
            local(&t, "2025-03-10T08:15"),
            Kind::Charge,
            1_000_001,
        );
        l.flush();
        let day = &l.days[&jiff::civil::date(2025, 3, 10)];
        assert_eq!(
            day.bands["valley"].charge_mwh + day.bands["flat"].charge_mwh,
            1_000_001
        );
        assert!((day.bands["valley"].charge_mwh - 500_000).abs() <= 1);
        assert_eq!(day.bands["valley"].price, 0.379188);
        assert_eq!(day.bands["flat"].price, 0.762307);
    }

    #[test]
    fn energy_across_midnight_goes_to_both_days() {
        let t = chongqing();
        let mut l = Ledger::new(t.clone(), BTreeMap::new(), SignedDuration::from_hours(48));
        l.book(
            local(&t, "2025-03-10T23:50"),
            local(&t, "2025-03-11T00:10"),
            Kind::Discharge,
            2_000,
        );
        l.flush();
        assert_eq!(
            l.days[&jiff::civil::date(2025, 3, 10)].bands["flat"].discharge_mwh,
            1_000
        );
        assert_eq!(
            l.days[&jiff::civil::date(2025, 3, 11)].bands["valley"].discharge_mwh,
            1_000
        );
    }

    #[test]
    fn splitting_is_by_real_time_on_dst_days() {
        // Berlin, 2026-03-29 (Sunday, all "low") to Monday 2026-03-30: from 23:00
        // Saturday to 07:00 Monday... use the weekday change instead: 05:00 to 07:00
        // on Monday 30 March is two real hours, one low and one high.
        let t = bundled("eu-berlin-two-rate-example");
        let mut l = Ledger::new(t.clone(), BTreeMap::new(), SignedDuration::from_hours(48));
        l.book(
            local(&t, "2026-03-30T05:00"),
            local(&t, "2026-03-30T07:00"),
            Kind::Charge,
            2_000,
        );
        // Over the spring-forward night: Sunday 00:00 to 04:00 wall clock is three real hours.
        l.book(
            local(&t, "2026-03-28T23:00"),
            local(&t, "2026-03-29T04:00"),
            Kind::Discharge,
            4_000,
        );
        l.flush();
        let mon = &l.days[&jiff::civil::date(2026, 3, 30)];
        assert_eq!(
            (mon.bands["low"].charge_mwh, mon.bands["high"].charge_mwh),
            (1_000, 1_000)
        );
        // 23:00-24:00 Saturday is 1 of 4 real hours.
        assert_eq!(
            l.days[&jiff::civil::date(2026, 3, 28)].bands["low"].discharge_mwh,
            1_000
        );
        assert_eq!(
            l.days[&jiff::civil::date(2026, 3, 29)].bands["low"].discharge_mwh,
            3_000
        );
    }

    /// Found by the `replay_csv` fuzz target: a year typed as 5020 made one
    /// interval three thousand years long, walked segment by segment.
    #[test]
    fn an_interval_of_millennia_is_bounded_by_every_price_without_a_walk() {
        let t = chongqing();
        let mut l = Ledger::new(t.clone(), BTreeMap::new(), SignedDuration::from_mins(1));
        let (from, to) = (local(&t, "2025-03-10T07:00"), local(&t, "5020-03-10T07:00"));
        l.book(from, to, Kind::Charge, 1_000);
        l.flush();
        let (lo, hi) = t
            .price_sets
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p), b.max(p)));
        let u = l
            .days
            .values()
            .find_map(|d| d.unattributed.as_deref())
            .expect("the energy is unattributed");
        assert_eq!(u.charge_mwh, 1_000);
        assert_eq!(
            (u.intervals[0].price_min, u.intervals[0].price_max),
            (lo, hi)
        );
    }

    #[test]
    fn a_long_interval_across_bands_is_unattributed_with_price_bounds() {
        let t = chongqing();
        let mut l = Ledger::new(t.clone(), BTreeMap::new(), SignedDuration::from_mins(1));
        // 07:00 to 12:00 crosses valley, flat and peak: nobody knows when.
        let (from, to) = (local(&t, "2025-03-10T07:00"), local(&t, "2025-03-10T12:00"));
        l.book(from, to, Kind::Charge, 250_000_000);
        l.book(from, to, Kind::Discharge, 500_000_000);
        // 02:00 to 05:00 lies inside the valley: certain, booked there.
        l.book(
            local(&t, "2025-03-10T02:00"),
            local(&t, "2025-03-10T05:00"),
            Kind::Charge,
            750_000_000,
        );
        l.flush();
        let day = &l.days[&jiff::civil::date(2025, 3, 10)];
        assert_eq!(day.bands["valley"].charge_mwh, 750_000_000);
        assert!(!day.bands.contains_key("flat"));
        let u = day.unattributed.as_deref().unwrap();
        assert_eq!((u.charge_mwh, u.discharge_mwh), (250_000_000, 500_000_000));
        assert_eq!(u.intervals.len(), 1, "one interval for both counters");
        assert_eq!(
            (u.intervals[0].price_min, u.intervals[0].price_max),
            (0.379188, 1.133067)
        );
        assert!((u.charge_cost_max - 250.0 * 1.133067).abs() < 1e-9);
        assert!((u.discharge_value_min - 500.0 * 0.379188).abs() < 1e-9);
    }
}
