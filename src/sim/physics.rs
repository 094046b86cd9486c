//! The simulated storage site: a battery that follows a two-cycle daily
//! schedule within its SOC limits, a factory load, and the grid meter between
//! them. Conservation holds at every step: meter import - export = load +
//! charge - discharge; counters only grow (until their register wraps).
use std::sync::Arc;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::account::tariff::Tariff;

/// Windows in local minutes of the day, `[start, end)`.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub charge: Vec<(u32, u32)>,
    pub discharge: Vec<(u32, u32)>,
}

impl Schedule {
    /// Arbitrage on a tariff day: charge in the cheapest band, discharge in the
    /// dearest ones (peak and critical), and top up in a cheaper band that lies
    /// between two discharge windows (Chongqing's 17:00-20:00 flat, Zhejiang's
    /// midday valley). A day with one price has nothing to arbitrage.
    pub fn for_day(t: &Tariff, date: Date) -> Schedule {
        let (spans, _) = t.day(date);
        let lo = spans.iter().map(|s| s.3).fold(f64::INFINITY, f64::min);
        let hi = spans.iter().map(|s| s.3).fold(f64::NEG_INFINITY, f64::max);
        let mut s = Schedule {
            charge: vec![],
            discharge: vec![],
        };
        if hi - lo < 1e-9 {
            return s;
        }
        // "Dear": the top price, and the next level when it is close to it (peak
        // under a critical peak is within about 20 %; flat under peak is not).
        let mut levels: Vec<f64> = spans.iter().map(|s| s.3).collect();
        levels.sort_by(|a, b| b.total_cmp(a));
        levels.dedup();
        let dear = match levels[..] {
            [top, next, ..] if next >= 0.79 * top => next,
            [top, ..] => top,
            [] => return s,
        };
        let is_dear = |p: f64| p >= dear - 1e-9;
        for (i, &(start, end, _, price)) in spans.iter().enumerate() {
            let w = (start as u32, end as u32);
            if is_dear(price) {
                s.discharge.push(w);
            } else if price <= lo + 1e-9 {
                s.charge.push(w);
            } else {
                let before = spans[..i].iter().any(|x| is_dear(x.3));
                let after = spans[i + 1..].iter().any(|x| is_dear(x.3));
                if before && after {
                    s.charge.push(w);
                }
            }
        }
        s
    }
}

impl Default for Schedule {
    /// Charge in the night valley and the early-evening flat band, discharge at the
    /// midday and evening peaks.
    fn default() -> Self {
        Schedule {
            charge: vec![(0, 8 * 60), (17 * 60, 20 * 60)],
            discharge: vec![(11 * 60, 14 * 60), (20 * 60, 22 * 60)],
        }
    }
}

#[derive(Debug, Clone)]
pub struct SiteParams {
    pub capacity_kwh: f64,
    pub rated_kw: f64,
    /// AC to AC; split evenly (square root) between charge and discharge.
    pub round_trip_efficiency: f64,
    pub soc_min: f64,
    pub soc_max: f64,
    pub tz: TimeZone,
    pub schedule: Schedule,
    /// When set, the schedule follows this tariff's bands day by day.
    pub tariff: Option<Arc<Tariff>>,
    pub serial: String,
    /// Added to every counter at start, to exercise register wrap-around.
    pub counter_offset_wh: u64,
    /// How far the meter's clock is ahead of true time: it switches its
    /// per-rate registers by the tariff at (t + offset), as a drifted meter does.
    pub meter_clock_offset: SignedDuration,
    /// The band each of the meter's four rates counts, rate 1 first; a band
    /// not listed counts under the last rate.
    pub meter_rates: Vec<String>,
}

impl SiteParams {
    pub fn standard(index: usize) -> Self {
        SiteParams {
            capacity_kwh: 2000.0,
            rated_kw: 1000.0,
            round_trip_efficiency: 0.9,
            soc_min: 0.05,
            soc_max: 0.95,
            tz: TimeZone::get("Asia/Shanghai").unwrap_or(TimeZone::UTC),
            schedule: Schedule::default(),
            tariff: None,
            serial: format!("SIM{index:05}"),
            counter_offset_wh: 0,
            meter_clock_offset: SignedDuration::ZERO,
            meter_rates: crate::role::default_meter_rates(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SiteState {
    pub t: Timestamp,
    pub stored_kwh: f64,
    /// Battery power at the PCS AC terminals, + = discharge.
    pub power_kw: f64,
    pub load_kw: f64,
    pub charge_wh: f64,
    pub discharge_wh: f64,
    pub import_wh: f64,
    pub export_wh: f64,
    pub throughput_kwh: f64,
    /// The meter's forward (charge) and reverse (discharge) energy per rate.
    pub rate_charge_wh: [f64; 4],
    pub rate_discharge_wh: [f64; 4],
}

impl SiteState {
    pub fn grid_kw(&self) -> f64 {
        self.load_kw - self.power_kw
    }
}

#[derive(Debug, Clone)]
pub struct Site {
    pub params: SiteParams,
    pub state: SiteState,
    /// The local date `params.schedule` was derived for, when it follows a tariff.
    schedule_date: Option<Date>,
}

/// Integration step: short enough that a window boundary is never overshot by much.
const STEP: SignedDuration = SignedDuration::from_secs(30);

impl Site {
    pub fn new(params: SiteParams, start: Timestamp) -> Self {
        let off = params.counter_offset_wh as f64;
        let mut s = Site {
            state: SiteState {
                t: start,
                stored_kwh: params.capacity_kwh * 0.5,
                power_kw: 0.0,
                load_kw: 0.0,
                charge_wh: off,
                discharge_wh: off,
                import_wh: off,
                export_wh: off,
                throughput_kwh: 0.0,
                rate_charge_wh: [0.0; 4],
                rate_discharge_wh: [0.0; 4],
            },
            params,
            schedule_date: None,
        };
        s.decide();
        s
    }

    pub fn soc(&self) -> f64 {
        self.state.stored_kwh / self.params.capacity_kwh
    }

    fn minute_of_day(&self, t: Timestamp) -> f64 {
        let z = t.to_zoned(self.params.tz.clone());
        z.hour() as f64 * 60.0 + z.minute() as f64 + z.second() as f64 / 60.0
    }

    /// A factory on two shifts: about half of rated power at night, up to 1.3 x at mid-afternoon.
    pub fn load_at(&self, minute: f64) -> f64 {
        let h = minute / 60.0;
        let day = (-((h - 14.0) / 4.5).powi(2)).exp();
        self.params.rated_kw * (0.5 + 0.8 * day)
    }

    fn decide(&mut self) {
        if let Some(t) = &self.params.tariff {
            let date = self.state.t.to_zoned(self.params.tz.clone()).date();
            if self.schedule_date != Some(date) {
                self.params.schedule = Schedule::for_day(t, date);
                self.schedule_date = Some(date);
            }
        }
        let m = self.minute_of_day(self.state.t);
        self.state.load_kw = self.load_at(m);
        let p = &self.params;
        let eff = p.round_trip_efficiency.sqrt();
        let left_h = |w: &(u32, u32)| ((w.1 as f64 - m) / 60.0).max(1.0 / 60.0);
        let in_window = |w: &&(u32, u32)| (w.0 as f64) <= m && m < w.1 as f64;
        self.state.power_kw = if let Some(w) = p.schedule.charge.iter().find(in_window) {
            let room_ac = (p.soc_max * p.capacity_kwh - self.state.stored_kwh).max(0.0) / eff;
            -(room_ac / left_h(w)).min(p.rated_kw)
        } else if let Some(w) = p.schedule.discharge.iter().find(in_window) {
            let avail_ac = (self.state.stored_kwh - p.soc_min * p.capacity_kwh).max(0.0) * eff;
            // Export limiting (防逆流): never push more than the site consumes.
            (avail_ac / left_h(w))
                .min(p.rated_kw)
                .min(self.state.load_kw)
        } else {
            0.0
        };
        if self.state.power_kw.abs() < 0.05 {
            self.state.power_kw = 0.0;
        }
    }

    /// The meter's rate at true time `t` and when, in true time, it next
    /// changes. Without a tariff everything counts as rate 3 (flat).
    fn meter_rate_at(&self, t: Timestamp) -> (usize, Timestamp) {
        let Some(tariff) = &self.params.tariff else {
            return (2, Timestamp::MAX);
        };
        let off = self.params.meter_clock_offset;
        let seg = tariff.segment_at(t.checked_add(off).unwrap_or(t));
        let band = &tariff.bands[seg.band as usize];
        let last = self.params.meter_rates.len().clamp(1, 4) - 1;
        let rate = self
            .params
            .meter_rates
            .iter()
            .position(|b| b == band)
            .unwrap_or(last)
            .min(3);
        (rate, seg.end.checked_sub(off).unwrap_or(seg.end))
    }

    /// Splits a step's energy across the meter's rates by its own clock.
    fn meter_step(&mut self, from: Timestamp, to: Timestamp, power_kw: f64) {
        if power_kw == 0.0 {
            return;
        }
        let mut t = from;
        while t < to {
            let (rate, end) = self.meter_rate_at(t);
            let e = if end > t { end.min(to) } else { to };
            let wh = power_kw.abs() * t.duration_until(e).as_secs_f64() / 3.6;
            if power_kw < 0.0 {
                self.state.rate_charge_wh[rate] += wh;
            } else {
                self.state.rate_discharge_wh[rate] += wh;
            }
            t = e;
        }
    }

    /// Runs the physics up to `to` (never backwards).
    pub fn advance(&mut self, to: Timestamp) {
        let eff = self.params.round_trip_efficiency.sqrt();
        while self.state.t < to {
            let step = self
                .state
                .t
                .duration_until(to)
                .min(STEP)
                .max(SignedDuration::ZERO);
            let h = step.as_secs_f64() / 3600.0;
            let from = self.state.t;
            self.meter_step(
                from,
                from.checked_add(step).unwrap_or(to),
                self.state.power_kw,
            );
            let s = &mut self.state;
            let p = s.power_kw;
            if p < 0.0 {
                s.stored_kwh += -p * h * eff;
                s.charge_wh += -p * h * 1000.0;
            } else {
                s.stored_kwh -= p * h / eff;
                s.discharge_wh += p * h * 1000.0;
            }
            s.throughput_kwh += p.abs() * h;
            let grid = s.load_kw - p;
            if grid >= 0.0 {
                s.import_wh += grid * h * 1000.0;
            } else {
                s.export_wh += -grid * h * 1000.0;
            }
            s.t = s.t.checked_add(step).unwrap_or(to);
            self.decide();
        }
    }

    /// Another master zeroing the counters (some PCS drivers do at start-up).
    pub fn reset_counters(&mut self) {
        self.state.charge_wh = 0.0;
        self.state.discharge_wh = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_the_tariff() {
        let load = |id: &str| {
            crate::account::tariff::TariffCatalog::new(&[])
                .load(id)
                .unwrap()
                .unwrap()
        };
        let cq = load("cn-chongqing-ci-2025-02");
        let s = Schedule::for_day(&cq, jiff::civil::date(2025, 3, 10));
        assert_eq!(
            s.charge,
            vec![(0, 480), (1020, 1200)],
            "valley, and the flat band between the two peaks"
        );
        assert_eq!(s.discharge, vec![(660, 1020), (1200, 1320)]);
        let s = Schedule::for_day(&cq, jiff::civil::date(2025, 7, 10));
        assert!(
            s.discharge.contains(&(720, 840)),
            "critical peak: {:?}",
            s.discharge
        );
        let berlin = load("eu-berlin-two-rate-example");
        let s = Schedule::for_day(&berlin, jiff::civil::date(2026, 3, 28));
        assert!(
            s.charge.is_empty() && s.discharge.is_empty(),
            "one price all weekend: nothing to arbitrage"
        );
    }

    #[test]
    fn a_day_holds_the_physics() {
        let start: Timestamp = "2025-06-01T16:00:00Z".parse().unwrap(); // 00:00 in Shanghai
        let mut site = Site::new(SiteParams::standard(0), start);
        let mut min_soc: f64 = 1.0;
        let mut max_soc: f64 = 0.0;
        let mut last_charge = site.state.charge_wh;
        for minute in 1..=24 * 60 {
            site.advance(start + SignedDuration::from_mins(minute));
            min_soc = min_soc.min(site.soc());
            max_soc = max_soc.max(site.soc());
            assert!(site.state.charge_wh >= last_charge, "counters only grow");
            last_charge = site.state.charge_wh;
        }
        let s = &site.state;
        assert!(
            max_soc <= 0.95 + 1e-6 && min_soc >= 0.05 - 1e-6,
            "soc {min_soc}..{max_soc}"
        );
        assert!(
            max_soc > 0.9,
            "the valley charge fills the battery: {max_soc}"
        );
        // Midday: the usable 1,800 kWh x sqrt(0.9); evening: capped by the ~570 kW
        // factory load for two hours (export limiting).
        let out_kwh = s.discharge_wh / 1000.0;
        assert!(out_kwh > 2700.0 && out_kwh < 3000.0, "discharged {out_kwh}");
        // Stored energy changes by charge x sqrt(rte) - discharge / sqrt(rte).
        let eff = 0.9f64.sqrt();
        let expect = 1000.0 + s.charge_wh / 1000.0 * eff - out_kwh / eff;
        assert!(
            (s.stored_kwh - expect).abs() < 1e-6,
            "stored {} vs {expect}",
            s.stored_kwh
        );
        // Meter balance: import - export = load + charge - discharge.
        let load_kwh: f64 = (0..24 * 60)
            .map(|m| site.load_at(m as f64 + 0.5) / 60.0)
            .sum();
        let net = (s.import_wh - s.export_wh - s.charge_wh + s.discharge_wh) / 1000.0;
        assert!(
            (net - load_kwh).abs() / load_kwh < 0.01,
            "net {net} vs load {load_kwh}"
        );
    }
}
