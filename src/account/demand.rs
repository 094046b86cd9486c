//! Demand: the month's highest average grid import over the tariff's window
//! (15 minutes, aligned to the local clock), and what it would have been
//! without the battery.
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
    /// Window index: local seconds since the epoch divided by the window length.
    pub index: i64,
    pub import_mwh: i64,
    pub charge_mwh: i64,
    pub discharge_mwh: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MonthPeak {
    pub max_kw: f64,
    pub max_at: Option<Timestamp>,
    pub baseline_max_kw: f64,
    pub baseline_at: Option<Timestamp>,
}

/// Local (year, month).
pub type Month = (i16, i8);

#[derive(Debug, Clone)]
pub struct Demand {
    tz: TimeZone,
    window_s: i64,
    pub current: Option<Window>,
    pub months: BTreeMap<Month, MonthPeak>,
    dirty: BTreeSet<Month>,
}

impl Demand {
    pub fn new(
        tz: TimeZone,
        window: std::time::Duration,
        current: Option<Window>,
        months: BTreeMap<Month, MonthPeak>,
    ) -> Self {
        Demand {
            tz,
            window_s: window.as_secs().max(60) as i64,
            current,
            months,
            dirty: BTreeSet::new(),
        }
    }

    fn index(&self, t: Timestamp) -> i64 {
        let local = t.as_second() + self.tz.to_offset(t).seconds() as i64;
        local.div_euclid(self.window_s)
    }

    /// The instant window `index` ends (its local end, in the offset in force at its start).
    fn window_end(&self, index: i64) -> Timestamp {
        let start_local = index * self.window_s;
        let guess = Timestamp::from_second(start_local).unwrap_or(Timestamp::UNIX_EPOCH);
        let off = self.tz.to_offset(guess).seconds() as i64;
        Timestamp::from_second(start_local + self.window_s - off).unwrap_or(guess)
    }

    /// Adds energy that flowed over `[from, to]`, split over the windows it spans.
    pub fn add(&mut self, from: Timestamp, to: Timestamp, flow: Flow, mwh: i64) {
        if mwh == 0 {
            return;
        }
        let mut pieces = Vec::new();
        let mut t = from.min(to);
        loop {
            let i = self.index(t);
            let end = self.window_end(i).min(to);
            pieces.push((i, t.duration_until(end).as_nanos().max(0) as i64));
            if end >= to || end <= t {
                break;
            }
            t = end;
        }
        let weights: Vec<i64> = pieces.iter().map(|p| p.1).collect();
        for ((i, _), part) in pieces.into_iter().zip(split(mwh, &weights)) {
            self.add_to(i, flow, part);
        }
    }

    fn add_to(&mut self, index: i64, flow: Flow, mwh: i64) {
        match self.current {
            Some(w) if w.index == index => {}
            Some(w) if w.index > index => return, // late data for a closed window
            _ => {
                if let Some(done) = self.current.take() {
                    self.close(done);
                }
                self.current = Some(Window {
                    index,
                    ..Window::default()
                });
            }
        }
        let w = self.current.as_mut().expect("set above");
        match flow {
            Flow::Import => w.import_mwh += mwh,
            Flow::Charge => w.charge_mwh += mwh,
            Flow::Discharge => w.discharge_mwh += mwh,
        }
    }

    fn close(&mut self, w: Window) {
        let hours = self.window_s as f64 / 3600.0;
        let actual = w.import_mwh as f64 / 1e6 / hours;
        let baseline =
            ((w.import_mwh - w.charge_mwh + w.discharge_mwh) as f64 / 1e6 / hours).max(0.0);
        let start = self.window_end(w.index) - SignedDuration::from_secs(self.window_s);
        let z = start.to_zoned(self.tz.clone());
        let month = (z.year(), z.month());
        let m = self.months.entry(month).or_default();
        if actual > m.max_kw || m.max_at.is_none() {
            m.max_kw = actual;
            m.max_at = Some(start);
        }
        if baseline > m.baseline_max_kw || m.baseline_at.is_none() {
            m.baseline_max_kw = baseline;
            m.baseline_at = Some(start);
        }
        self.dirty.insert(month);
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

    fn local(s: &str) -> Timestamp {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(TimeZone::get("Asia/Shanghai").unwrap())
            .unwrap()
            .timestamp()
    }

    #[test]
    fn peak_shaving_shows_as_demand_savings() {
        let mut d = Demand::new(
            TimeZone::get("Asia/Shanghai").unwrap(),
            std::time::Duration::from_secs(900),
            None,
            BTreeMap::new(),
        );
        // 10:00-10:15: 1,000 kW import, battery idle.
        d.add(
            local("2025-07-01T10:00"),
            local("2025-07-01T10:15"),
            Flow::Import,
            250_000_000,
        );
        // 10:15-10:30: the load is 1,600 kW but the battery discharges 800 kW: import 800 kW.
        d.add(
            local("2025-07-01T10:15"),
            local("2025-07-01T10:30"),
            Flow::Import,
            200_000_000,
        );
        d.add(
            local("2025-07-01T10:15"),
            local("2025-07-01T10:30"),
            Flow::Discharge,
            200_000_000,
        );
        // 00:00-00:15 next day: charging 500 kW on top of a 300 kW load.
        d.add(
            local("2025-07-02T00:00"),
            local("2025-07-02T00:15"),
            Flow::Import,
            200_000_000,
        );
        d.add(
            local("2025-07-02T00:00"),
            local("2025-07-02T00:15"),
            Flow::Charge,
            125_000_000,
        );
        // A later window closes the last one.
        d.add(
            local("2025-07-02T01:00"),
            local("2025-07-02T01:01"),
            Flow::Import,
            1,
        );
        let m = d.months[&(2025, 7)];
        assert!((m.max_kw - 1000.0).abs() < 1e-9, "{m:?}");
        assert!((m.baseline_max_kw - 1600.0).abs() < 1e-9, "{m:?}");
        assert_eq!(m.baseline_at, Some(local("2025-07-01T10:15")));
    }

    #[test]
    fn energy_spanning_windows_is_split_by_time() {
        let mut d = Demand::new(
            TimeZone::get("Asia/Shanghai").unwrap(),
            std::time::Duration::from_secs(900),
            None,
            BTreeMap::new(),
        );
        // 10:10 to 10:20 at a constant 600 kW: 100 kWh, half in each window.
        d.add(
            local("2025-07-01T10:10"),
            local("2025-07-01T10:20"),
            Flow::Import,
            100_000_000,
        );
        d.add(
            local("2025-07-01T11:00"),
            local("2025-07-01T11:01"),
            Flow::Import,
            1,
        );
        let m = d.months[&(2025, 7)];
        // 50 kWh in the 10:15 window averages 200 kW; 50 kWh in the 10:00 window too.
        assert!((m.max_kw - 200.0).abs() < 1e-6, "{m:?}");
    }
}
