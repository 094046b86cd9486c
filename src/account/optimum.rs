//! Schedule efficiency: what the tariff allowed this battery to earn on a
//! day, against what it earned. A schedule left unchanged after a tariff
//! change (Zhejiang moved its peak from the morning to the evening in 2026)
//! shows as a low ratio long before anyone reads a bill.
//!
//! The optimum is a linear programme over the day's band timeline, exact
//! for piecewise-constant prices: per segment, energy charged and
//! discharged, each segment's total within rated power times its length;
//! the stored energy (charge times the round-trip efficiency, less
//! discharge) between empty and the usable energy at every segment end;
//! at most `max_cycles_per_day` usable energies discharged. The battery
//! starts the day empty, so a day that begins with energy left over from
//! the day before can earn more than its optimum (a ratio above 1).
use jiff::civil::{Date, Time};
use jiff::Timestamp;
use serde::Serialize;

use super::lp;
use super::tariff::Tariff;

/// What the optimum needs to know of a battery.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Battery {
    pub capacity_kwh: f64,
    pub rated_kw: f64,
    pub usable_kwh: f64,
    /// Configured; a day with its own measured efficiency uses that.
    pub round_trip_efficiency: Option<f64>,
    pub max_cycles_per_day: f64,
}

impl Battery {
    pub fn new(capacity_kwh: f64, rated_kw: f64) -> Battery {
        Battery {
            capacity_kwh,
            rated_kw,
            usable_kwh: capacity_kwh,
            round_trip_efficiency: None,
            max_cycles_per_day: 2.0,
        }
    }

    /// The efficiency a day is judged with and where it came from: the
    /// day's own (discharge over charge) when it is a plausible fraction,
    /// else the configured one, else 1 (the optimum is then an upper bound).
    pub fn efficiency_for(&self, charge_kwh: f64, discharge_kwh: f64) -> (f64, &'static str) {
        let measured = (charge_kwh > 0.0).then(|| discharge_kwh / charge_kwh);
        match (measured, self.round_trip_efficiency) {
            (Some(m), _) if m > 0.0 && m <= 1.0 => (m, "measured"),
            (_, Some(c)) => (c, "configured"),
            _ => (1.0, "assumed"),
        }
    }
}

/// What a site's reports judge it by beyond its tariff: its battery, and
/// how its settlement meter numbers rates.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub battery: Battery,
    pub meter_rates: Vec<String>,
    pub reconcile_tolerance: f64,
    pub memo: Memo,
}

/// Each day's optimum, remembered with the efficiency it assumed. The daemon
/// builds this month's and the lifetime report every few seconds for the
/// live payloads: without it every past day's programme would be solved
/// again each time. Shared by clones (snapshots report on other threads);
/// one per site setup, whose tariff and battery it assumes.
#[derive(Debug, Clone, Default)]
pub struct Memo(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Date, (u64, f64)>>>);

impl PartialEq for Memo {
    /// A cache says nothing about what the terms are.
    fn eq(&self, _: &Memo) -> bool {
        true
    }
}

impl Terms {
    /// `day_optimum` for this battery, solved once per day and efficiency.
    pub fn day_optimum(&self, tariff: &Tariff, date: Date, eta: f64) -> f64 {
        let key = eta.to_bits();
        let mut memo = self.memo.0.lock().unwrap_or_else(|e| e.into_inner());
        match memo.get(&date) {
            Some((k, v)) if *k == key => *v,
            _ => {
                let v = day_optimum(tariff, date, &self.battery, eta);
                memo.insert(date, (key, v));
                v
            }
        }
    }
}

impl Terms {
    /// A battery with the usual four-rate meter (尖峰平谷) and 1 % tolerance.
    pub fn new(capacity_kwh: f64, rated_kw: f64) -> Terms {
        Terms {
            battery: Battery::new(capacity_kwh, rated_kw),
            meter_rates: crate::role::default_meter_rates(),
            reconcile_tolerance: 0.01,
            memo: Memo::default(),
        }
    }
}

/// The day's segments as (hours, price), from local midnight to the next
/// (23 or 25 hours on a DST change day).
fn timeline(tariff: &Tariff, date: Date) -> Vec<(f64, f64)> {
    let start = date
        .to_datetime(Time::midnight())
        .to_zoned(tariff.tz.clone())
        .map(|z| z.timestamp());
    let end = date
        .tomorrow()
        .and_then(|d| d.to_datetime(Time::midnight()).to_zoned(tariff.tz.clone()))
        .map(|z| z.timestamp());
    let (Ok(start), Ok(end)) = (start, end) else {
        return Vec::new();
    };
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut t: Timestamp = start;
    while t < end && out.len() < 1000 {
        let seg = tariff.segment_at(t);
        let to = seg.end.min(end);
        if to <= t {
            break;
        }
        let hours = t.duration_until(to).as_secs_f64() / 3600.0;
        match out.last_mut() {
            Some(last) if last.1 == seg.price => last.0 += hours,
            _ => out.push((hours, seg.price)),
        }
        t = to;
    }
    out
}

/// The most a battery could have saved on `date` at efficiency `eta`.
pub fn day_optimum(tariff: &Tariff, date: Date, b: &Battery, eta: f64) -> f64 {
    let segs = timeline(tariff, date);
    let n = segs.len();
    if n == 0 || !(b.rated_kw > 0.0 && b.usable_kwh > 0.0 && eta > 0.0) {
        return 0.0;
    }
    // Variables: c_0..c_n (charged), then d_0..d_n (discharged).
    let mut obj = vec![0.0; 2 * n];
    let (mut a, mut rhs) = (Vec::new(), Vec::new());
    for (i, (hours, price)) in segs.iter().enumerate() {
        obj[i] = -price;
        obj[n + i] = *price;
        let mut row = vec![0.0; 2 * n];
        row[i] = 1.0;
        row[n + i] = 1.0;
        a.push(row);
        rhs.push(b.rated_kw * hours);
    }
    for k in 0..n {
        let mut full = vec![0.0; 2 * n];
        let mut empty = vec![0.0; 2 * n];
        for i in 0..=k {
            full[i] = eta;
            full[n + i] = -1.0;
            empty[i] = -eta;
            empty[n + i] = 1.0;
        }
        a.push(full);
        rhs.push(b.usable_kwh);
        a.push(empty);
        rhs.push(0.0);
    }
    let mut cycles = vec![0.0; 2 * n];
    for v in &mut cycles[n..] {
        *v = 1.0;
    }
    a.push(cycles);
    rhs.push(b.max_cycles_per_day * b.usable_kwh);
    lp::maximise(&obj, &a, &rhs)
        .map(|(v, _)| v.max(0.0))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::account::tariff::TariffCatalog;

    fn chongqing() -> std::sync::Arc<Tariff> {
        TariffCatalog::new(&[])
            .load("cn-chongqing-ci-2025-02")
            .unwrap()
            .unwrap()
    }

    /// The worked day: a February weekday in Chongqing, 1 MW / 2 MWh,
    /// efficiency 1, two cycles: valley to the 11:00 peak, then the 17:00
    /// flat to the 20:00 peak.
    #[test]
    fn a_chongqing_february_weekday_has_the_two_cycle_optimum() {
        let t = chongqing();
        let b = Battery::new(2000.0, 1000.0);
        let best = day_optimum(&t, date(2025, 2, 12), &b, 1.0);
        let (v, f, p) = (0.379188, 0.762307, 1.133067);
        let expected = 2000.0 * (p - v) + 2000.0 * (p - f);
        assert!((best - expected).abs() < 1e-6, "{best} vs {expected}");
        assert!((best - 2249.278).abs() < 0.0005, "{best}");
        // Only the first cycle, as a schedule never updated would run it.
        let one = 2000.0 * (p - v);
        assert!((one - 1507.758).abs() < 0.0005);
        assert!((one / best - 0.670).abs() < 0.0005, "{}", one / best);
        let single = day_optimum(
            &t,
            date(2025, 2, 12),
            &Battery {
                max_cycles_per_day: 1.0,
                ..b
            },
            1.0,
        );
        assert!((single - one).abs() < 1e-6, "one cycle allowed: {single}");
    }

    #[test]
    fn losses_and_power_limits_lower_the_optimum() {
        let t = chongqing();
        let b = Battery::new(2000.0, 1000.0);
        let d = date(2025, 2, 12);
        let lossy = day_optimum(&t, d, &b, 0.9);
        assert!(lossy < day_optimum(&t, d, &b, 1.0));
        // At 0.9 charging 2,222 kWh fills 2,000 kWh: the first cycle earns
        // 2,000 x peak - 2,222.2 x valley, and the flat-to-peak cycle still pays.
        let first = 2000.0 * 1.133067 - 2000.0 / 0.9 * 0.379188;
        let second = 2000.0 * 1.133067 - 2000.0 / 0.9 * 0.762307;
        assert!((lossy - (first + second)).abs() < 1e-6, "{lossy}");
        // 250 kW cannot fill 2 MWh in the 3-hour flat: 750 kWh in, out at peak.
        let slow = day_optimum(
            &t,
            d,
            &Battery {
                rated_kw: 250.0,
                ..b
            },
            1.0,
        );
        // At 250 kW the two peaks take 6 h + 2 h = 2,000 kWh in all, and the
        // 8-hour valley supplies all of it: flat energy has no peak left.
        assert!(
            (slow - 2000.0 * (1.133067 - 0.379188)).abs() < 1e-6,
            "{slow}"
        );
    }

    #[test]
    fn a_remembered_day_is_solved_again_only_for_another_efficiency() {
        let t = chongqing();
        let terms = Terms::new(2000.0, 1000.0);
        let d = date(2025, 2, 12);
        let first = terms.day_optimum(&t, d, 1.0);
        assert_eq!(first, day_optimum(&t, d, &terms.battery, 1.0));
        // A clone shares the memory: what one solved, the other reads.
        let clone = terms.clone();
        assert_eq!(clone.memo.0.lock().unwrap().len(), 1);
        assert_eq!(clone.day_optimum(&t, d, 1.0), first);
        let lossy = clone.day_optimum(&t, d, 0.9);
        assert!(lossy < first, "a new efficiency is solved, not read");
        assert_eq!(terms.memo.0.lock().unwrap()[&d].1, lossy);
    }

    #[test]
    fn the_efficiency_used_says_where_it_came_from() {
        let b = Battery::new(2000.0, 1000.0);
        assert_eq!(b.efficiency_for(100.0, 90.0), (0.9, "measured"));
        assert_eq!(b.efficiency_for(0.0, 90.0), (1.0, "assumed"));
        let c = Battery {
            round_trip_efficiency: Some(0.88),
            ..b
        };
        assert_eq!(c.efficiency_for(10.0, 20.0), (0.88, "configured"));
    }
}
