//! Demand: the month's highest average grid import over the tariff's window
//! (15 minutes, aligned to the local clock), and what it would have been
//! without the battery.
//!
//! Only windows whose every instant is covered by grid import readings (and
//! battery readings, where the site measures the battery) count: a window
//! partly seen would understate the peak and overstate the savings. Energy
//! between readings further apart than the attribution gap is not spread over
//! the windows it spans; they stay unmeasured. Windows close a grace period
//! after their end, so a slower device's late reading still counts.
//!
//! Without the battery the site would have imported its load, which is the
//! actual import minus what the battery charged plus what it discharged.
//! (../shared/reference/tariffs.md writes "import + charge - discharge"; that
//! has the battery's effect backwards: discharging lowers real import, so the
//! baseline must add it back.)
use std::collections::{BTreeMap, BTreeSet};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::ledger::split;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Import,
    Charge,
    Discharge,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// The instant the window starts, in Unix seconds: the repeated hour of a
    /// 25-hour day has windows of its own.
    pub start: i64,
    pub import_mwh: i64,
    pub charge_mwh: i64,
    pub discharge_mwh: i64,
    /// Nanoseconds of the window covered by readings, per flow.
    pub import_ns: i64,
    pub charge_ns: i64,
    pub discharge_ns: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MonthPeak {
    pub max_kw: f64,
    pub max_at: Option<Timestamp>,
    pub baseline_max_kw: f64,
    pub baseline_at: Option<Timestamp>,
    /// Windows with grid import measured throughout; only they set the peaks.
    #[serde(default)]
    pub measured_windows: u32,
    /// Windows with some energy but readings missing for part of them.
    #[serde(default)]
    pub unmeasured_windows: u32,
}

/// Local (year, month).
pub type Month = (i16, i8);

#[derive(Debug, Clone)]
pub struct Demand {
    tz: TimeZone,
    window_s: i64,
    /// Intervals longer than this are not split over windows.
    max_gap: SignedDuration,
    /// Baselines need the battery's flows too, where the site measures them.
    battery_measured: bool,
    pub open: BTreeMap<i64, Window>,
    latest: Option<Timestamp>,
    pub months: BTreeMap<Month, MonthPeak>,
    dirty: BTreeSet<Month>,
}

impl Demand {
    pub fn new(
        tz: TimeZone,
        window: std::time::Duration,
        max_gap: SignedDuration,
        battery_measured: bool,
        open: Vec<Window>,
        months: BTreeMap<Month, MonthPeak>,
    ) -> Self {
        Demand {
            tz,
            window_s: window.as_secs().max(60) as i64,
            max_gap,
            battery_measured,
            open: open.into_iter().map(|w| (w.start, w)).collect(),
            latest: None,
            months,
            dirty: BTreeSet::new(),
        }
    }

    /// The start of the window holding `t`, aligned to the local clock.
    fn start_of(&self, t: Timestamp) -> i64 {
        let off = self.tz.to_offset(t).seconds() as i64;
        (t.as_second() + off).div_euclid(self.window_s) * self.window_s - off
    }

    fn grace(&self) -> i64 {
        2 * self.max_gap.as_secs().max(60)
    }

    /// Adds energy that flowed over `[from, to]`, split over the windows it
    /// spans. Zero energy counts too: it is what makes a window measured.
    pub fn add(&mut self, from: Timestamp, to: Timestamp, flow: Flow, mwh: i64) {
        if to <= from {
            return;
        }
        // Most intervals lie in one window: no cutting, no allocation (this runs
        // for every counter reading, idle ones included).
        let start = self.start_of(from);
        if to.as_second() < start + self.window_s
            || (to.as_second() == start + self.window_s && to.subsec_nanosecond() == 0)
        {
            let ns = from.duration_until(to).as_nanos() as i64;
            self.add_to(start, flow, mwh, ns);
            self.advance(to);
            return;
        }
        if from.duration_until(to) > self.max_gap
            && self.start_of(from) != self.start_of(to - SignedDuration::from_nanos(1))
        {
            // Nobody knows when it flowed: the windows it spans stay unmeasured.
            self.advance(to);
            return;
        }
        let mut pieces = Vec::new();
        let mut t = from;
        while t < to {
            let start = self.start_of(t);
            let end = Timestamp::from_second(start + self.window_s)
                .unwrap_or(to)
                .min(to)
                .max(t + SignedDuration::from_nanos(1));
            pieces.push((start, t.duration_until(end).as_nanos() as i64));
            t = end;
        }
        let weights: Vec<i64> = pieces.iter().map(|p| p.1).collect();
        for ((start, ns), part) in pieces.into_iter().zip(split(mwh, &weights)) {
            self.add_to(start, flow, part, ns);
        }
        self.advance(to);
    }

    fn advance(&mut self, to: Timestamp) {
        self.latest = Some(self.latest.map_or(to, |l| l.max(to)));
        self.close_due();
    }

    fn add_to(&mut self, start: i64, flow: Flow, mwh: i64, ns: i64) {
        let due = self
            .latest
            .is_some_and(|l| start + self.window_s + self.grace() <= l.as_second());
        if due && !self.open.contains_key(&start) {
            return; // later than any slow device: the window was settled without it
        }
        let w = self.open.entry(start).or_insert(Window {
            start,
            ..Window::default()
        });
        match flow {
            Flow::Import => {
                w.import_mwh += mwh;
                w.import_ns += ns;
            }
            Flow::Charge => {
                w.charge_mwh += mwh;
                w.charge_ns += ns;
            }
            Flow::Discharge => {
                w.discharge_mwh += mwh;
                w.discharge_ns += ns;
            }
        }
    }

    fn close_due(&mut self) {
        let Some(latest) = self.latest else { return };
        let horizon = latest.as_second() - self.window_s - self.grace();
        while let Some((&start, _)) = self.open.first_key_value() {
            if start > horizon {
                break;
            }
            let w = self.open.remove(&start).expect("just seen");
            self.close(w);
        }
    }

    /// Settles every open window (the end of a replay).
    pub fn close_all(&mut self) {
        while let Some((_, w)) = self.open.pop_first() {
            self.close(w);
        }
    }

    fn close(&mut self, w: Window) {
        let full = self.window_s * 1_000_000_000 - 1_000_000;
        let measured = w.import_ns >= full
            && (!self.battery_measured || (w.charge_ns >= full && w.discharge_ns >= full));
        let start = Timestamp::from_second(w.start).unwrap_or(Timestamp::UNIX_EPOCH);
        let z = start.to_zoned(self.tz.clone());
        let month = (z.year(), z.month());
        let m = self.months.entry(month).or_default();
        self.dirty.insert(month);
        if !measured {
            m.unmeasured_windows += 1;
            return;
        }
        m.measured_windows += 1;
        let hours = self.window_s as f64 / 3600.0;
        let actual = w.import_mwh as f64 / 1e6 / hours;
        let baseline =
            ((w.import_mwh - w.charge_mwh + w.discharge_mwh) as f64 / 1e6 / hours).max(0.0);
        if actual > m.max_kw || m.max_at.is_none() {
            m.max_kw = actual;
            m.max_at = Some(start);
        }
        if baseline > m.baseline_max_kw || m.baseline_at.is_none() {
            m.baseline_max_kw = baseline;
            m.baseline_at = Some(start);
        }
    }

    pub fn take_dirty(&mut self) -> Vec<(Month, MonthPeak)> {
        let d = std::mem::take(&mut self.dirty);
        d.into_iter()
            .filter_map(|m| self.months.get(&m).map(|p| (m, *p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    fn local(s: &str) -> Timestamp {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(shanghai())
            .unwrap()
            .timestamp()
    }

    fn demand(tz: TimeZone, battery: bool) -> Demand {
        Demand::new(
            tz,
            std::time::Duration::from_secs(900),
            SignedDuration::from_mins(20),
            battery,
            Vec::new(),
            BTreeMap::new(),
        )
    }

    fn add(d: &mut Demand, from: &str, to: &str, flow: Flow, kwh: f64) {
        d.add(local(from), local(to), flow, (kwh * 1e6) as i64);
    }

    #[test]
    fn peak_shaving_shows_as_demand_savings() {
        let mut d = demand(shanghai(), true);
        // 10:00-10:15: 1,000 kW import, battery idle.
        add(
            &mut d,
            "2025-07-01T10:00",
            "2025-07-01T10:15",
            Flow::Import,
            250.0,
        );
        add(
            &mut d,
            "2025-07-01T10:00",
            "2025-07-01T10:15",
            Flow::Charge,
            0.0,
        );
        add(
            &mut d,
            "2025-07-01T10:00",
            "2025-07-01T10:15",
            Flow::Discharge,
            0.0,
        );
        // 10:15-10:30: the load is 1,600 kW but the battery discharges 800 kW: import 800 kW.
        add(
            &mut d,
            "2025-07-01T10:15",
            "2025-07-01T10:30",
            Flow::Import,
            200.0,
        );
        add(
            &mut d,
            "2025-07-01T10:15",
            "2025-07-01T10:30",
            Flow::Charge,
            0.0,
        );
        add(
            &mut d,
            "2025-07-01T10:15",
            "2025-07-01T10:30",
            Flow::Discharge,
            200.0,
        );
        // The battery's readings stopped: import alone cannot give a baseline.
        add(
            &mut d,
            "2025-07-01T10:30",
            "2025-07-01T10:45",
            Flow::Import,
            500.0,
        );
        d.close_all();
        let m = d.months[&(2025, 7)];
        assert!((m.max_kw - 1000.0).abs() < 1e-9, "{m:?}");
        assert!((m.baseline_max_kw - 1600.0).abs() < 1e-9, "{m:?}");
        assert_eq!(m.baseline_at, Some(local("2025-07-01T10:15")));
        assert_eq!((m.measured_windows, m.unmeasured_windows), (2, 1));
    }

    #[test]
    fn energy_spanning_windows_is_split_by_time() {
        let mut d = demand(shanghai(), false);
        // 10:00 to 10:30 at 600 kW read at 10:00, 10:10, 10:20 and 10:30.
        for (a, b) in [("10:00", "10:10"), ("10:10", "10:20"), ("10:20", "10:30")] {
            let day = "2025-07-01T";
            add(
                &mut d,
                &format!("{day}{a}"),
                &format!("{day}{b}"),
                Flow::Import,
                100.0,
            );
        }
        d.close_all();
        let m = d.months[&(2025, 7)];
        // 150 kWh in each quarter hour: 600 kW.
        assert!((m.max_kw - 600.0).abs() < 1e-6, "{m:?}");
        assert_eq!(m.measured_windows, 2);
    }

    #[test]
    fn a_long_interval_is_not_spread_over_windows() {
        let mut d = demand(shanghai(), false);
        add(
            &mut d,
            "2025-07-01T10:00",
            "2025-07-01T10:15",
            Flow::Import,
            100.0,
        );
        // An hour without readings: its energy belongs to no window in particular.
        add(
            &mut d,
            "2025-07-01T10:15",
            "2025-07-01T11:15",
            Flow::Import,
            4000.0,
        );
        d.close_all();
        let m = d.months[&(2025, 7)];
        assert!((m.max_kw - 400.0).abs() < 1e-6, "{m:?}");
        assert_eq!((m.measured_windows, m.unmeasured_windows), (1, 0));
    }

    #[test]
    fn a_window_waits_for_a_late_reading() {
        let mut d = demand(shanghai(), false);
        // Meter A reads at :00 and :15, then on to 10:20; meter B's reading for
        // the first window arrives after the next window has begun.
        add(
            &mut d,
            "2025-07-01T10:00",
            "2025-07-01T10:15",
            Flow::Import,
            100.0,
        );
        add(
            &mut d,
            "2025-07-01T10:15",
            "2025-07-01T10:20",
            Flow::Import,
            10.0,
        );
        add(
            &mut d,
            "2025-07-01T10:00",
            "2025-07-01T10:15",
            Flow::Import,
            50.0,
        );
        d.close_all();
        let m = d.months[&(2025, 7)];
        assert!((m.max_kw - 600.0).abs() < 1e-6, "both meters count: {m:?}");
    }

    #[test]
    fn the_repeated_hour_of_a_long_day_keeps_its_windows_apart() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let mut d = demand(tz.clone(), false);
        // 2026-10-25: 02:00-03:00 happens twice. 400 kW in the first 02:00-02:15,
        // 800 kW in the second: merged they would read 1,200 kW.
        let first = jiff::civil::datetime(2026, 10, 25, 2, 0, 0, 0)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp();
        let q = SignedDuration::from_mins(15);
        let h = SignedDuration::from_hours(1);
        d.add(first, first + q, Flow::Import, 100_000_000);
        d.add(first + h, first + h + q, Flow::Import, 200_000_000);
        d.close_all();
        let m = d.months[&(2026, 10)];
        assert!((m.max_kw - 800.0).abs() < 1e-6, "{m:?}");
        assert_eq!(m.measured_windows, 2);
    }
}
