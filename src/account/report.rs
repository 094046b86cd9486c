//! Savings over a period, from the ledger's days and the demand tracker's
//! months: per band and in total, with cycles, efficiencies, auxiliary
//! consumption and demand, and how sure the figures are: energy that could not
//! be attributed to a band (with the savings it could stand for), counter
//! gaps, quarantined jumps and readings held back.
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use serde::Serialize;

use super::demand::{Month, MonthPeak};
use super::ledger::Day;
use super::optimum::Terms;
use super::tariff::Tariff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day(Date),
    Month(i16, i8),
    Year(i16),
    Lifetime,
}

impl FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a period: use YYYY-MM-DD, YYYY-MM, YYYY or lifetime");
        if s == "lifetime" {
            return Ok(Period::Lifetime);
        }
        // Digits only: jiff's own date parser also takes signed years, basic
        // format and times, which would make one period answer to many names.
        let parts: Vec<&str> = s.split('-').collect();
        let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        match parts[..] {
            [y] if digits(y, 4) => Ok(Period::Year(y.parse().map_err(|_| bad())?)),
            [y, m] if digits(y, 4) && digits(m, 2) => {
                let (y, m): (i16, i8) =
                    (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
                jiff::civil::Date::new(y, m, 1).map_err(|_| bad())?;
                Ok(Period::Month(y, m))
            }
            [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2) => {
                Ok(Period::Day(s.parse().map_err(|_| bad())?))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Day(d) => write!(f, "{d}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Lifetime => f.write_str("lifetime"),
        }
    }
}

impl Period {
    pub fn contains(&self, d: Date) -> bool {
        match *self {
            Period::Day(x) => d == x,
            Period::Month(y, m) => d.year() == y && d.month() == m,
            Period::Year(y) => d.year() == y,
            Period::Lifetime => true,
        }
    }

    /// The first and last day of the period; `None` for the lifetime, or a
    /// year outside the calendar, where every day is looked at.
    pub fn dates(&self) -> Option<(Date, Date)> {
        match *self {
            Period::Day(d) => Some((d, d)),
            Period::Month(y, m) => {
                let first = Date::new(y, m, 1).ok()?;
                Some((first, first.last_of_month()))
            }
            Period::Year(y) => Some((Date::new(y, 1, 1).ok()?, Date::new(y, 12, 31).ok()?)),
            Period::Lifetime => None,
        }
    }

    /// The ledger's days in the period, found by range rather than by
    /// looking at every day (a day of a long-lived site is one of thousands).
    pub fn days_in<'a, V>(
        &self,
        days: &'a BTreeMap<Date, V>,
    ) -> Box<dyn Iterator<Item = (&'a Date, &'a V)> + 'a> {
        let this = *self;
        match self.dates() {
            Some((a, b)) => Box::new(days.range(a..=b)),
            None => Box::new(days.iter().filter(move |(d, _)| this.contains(**d))),
        }
    }

    pub fn contains_month(&self, (y, m): Month) -> bool {
        match *self {
            Period::Day(_) => false,
            Period::Month(py, pm) => (py, pm) == (y, m),
            Period::Year(py) => py == y,
            Period::Lifetime => true,
        }
    }
}

/// A period's days and months copied out of a site's books: reports are
/// built from it on another thread while the books go on.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub site: std::sync::Arc<str>,
    pub tariff: std::sync::Arc<Tariff>,
    pub terms: Terms,
    pub period: Period,
    pub days: BTreeMap<Date, Day>,
    pub months: BTreeMap<Month, MonthPeak>,
}

impl Snapshot {
    pub fn report(&self) -> Report {
        self.report_for(self.period)
    }

    fn report_for(&self, period: Period) -> Report {
        build(
            &self.site,
            period,
            &self.tariff,
            &self.terms,
            &self.days,
            &self.months,
        )
    }

    /// Per day of the period: the date, savings, charge and discharge.
    pub fn days(&self) -> Vec<serde_json::Value> {
        self.days
            .keys()
            .map(|d| {
                let r = self.report_for(Period::Day(*d));
                serde_json::json!({ "date": d.to_string(), "savings": r.total.savings, "net_savings": r.net_savings, "charge_kwh": r.total.charge_kwh, "discharge_kwh": r.total.discharge_kwh, "optimum_savings": r.optimum_savings, "schedule_efficiency": r.schedule_efficiency })
            })
            .collect()
    }
}

/// Neumaier-compensated sum, so a lifetime of daily amounts adds without drift.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    s: f64,
    c: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.s + x;
        if self.s.abs() >= x.abs() {
            self.c += (self.s - t) + x;
        } else {
            self.c += (x - t) + self.s;
        }
        self.s = t;
    }
    fn get(&self) -> f64 {
        self.s + self.c
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Totals {
    pub charge_kwh: f64,
    pub discharge_kwh: f64,
    pub charge_cost: f64,
    pub discharge_value: f64,
    pub savings: f64,
    pub aux_kwh: f64,
    pub aux_cost: f64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Acc {
    charge_mwh: i64,
    discharge_mwh: i64,
    aux_mwh: i64,
    charge_cost: Sum,
    discharge_value: Sum,
    aux_cost: Sum,
}

impl Acc {
    fn totals(&self) -> Totals {
        let (c, d) = (self.charge_cost.get(), self.discharge_value.get());
        Totals {
            charge_kwh: self.charge_mwh as f64 / 1e6,
            discharge_kwh: self.discharge_mwh as f64 / 1e6,
            charge_cost: c,
            discharge_value: d,
            savings: d - c,
            aux_kwh: self.aux_mwh as f64 / 1e6,
            aux_cost: self.aux_cost.get(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DemandLine {
    pub month: String,
    /// False when no window of the month had grid import measured throughout.
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub max_kw: Option<f64>,
    pub baseline_max_kw: Option<f64>,
    pub measured_windows: u32,
    pub unmeasured_windows: u32,
    pub price_per_kw_month: f64,
    pub savings: f64,
}

/// Energy whose band is not known, and the least and greatest savings it could
/// have earned (discharge at the cheapest / dearest price in force over its
/// interval, charge at the dearest / cheapest).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct UnattributedTotals {
    pub charge_kwh: f64,
    pub discharge_kwh: f64,
    pub aux_kwh: f64,
    pub intervals: usize,
    pub savings_min: f64,
    pub savings_max: f64,
    pub aux_cost_min: f64,
    pub aux_cost_max: f64,
    /// Spans a counter reset hid, and the most energy that could have flowed
    /// in them (nothing booked; the savings bounds include it).
    pub hidden_intervals: usize,
    pub hidden_charge_max_kwh: f64,
    pub hidden_discharge_max_kwh: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntervalLine {
    pub from: String,
    pub to: String,
    pub charge_kwh: f64,
    pub discharge_kwh: f64,
    pub aux_kwh: f64,
    pub price_min: f64,
    pub price_max: f64,
}

/// Readings of one counter further apart than the attribution gap, on one day.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CounterGapLine {
    pub date: String,
    pub device: String,
    pub counter: String,
    pub count: u32,
    pub longest_s: f64,
    pub total_s: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub site: String,
    pub period: String,
    pub currency: String,
    pub days: usize,
    pub bands: BTreeMap<String, Totals>,
    pub total: Totals,
    /// Discharged energy over the usable capacity.
    pub equivalent_cycles: f64,
    /// Discharge over charge in the period (unattributed energy included: its
    /// band is unknown, its amount is not); absent when nothing was charged.
    pub round_trip_efficiency: Option<f64>,
    /// Discharge over charge plus auxiliary consumption (GB/T 36549).
    pub overall_efficiency: Option<f64>,
    /// Arbitrage savings less what the auxiliaries' energy cost.
    pub net_savings: f64,
    pub unattributed: UnattributedTotals,
    pub unattributed_intervals: Vec<IntervalLine>,
    /// Spans hidden by counter resets; energies are upper bounds.
    pub hidden_intervals: Vec<IntervalLine>,
    /// `total.savings` plus the least and the most the unattributed energy could add.
    pub savings_range: [f64; 2],
    pub net_savings_range: [f64; 2],
    pub demand: Vec<DemandLine>,
    pub demand_savings: f64,
    pub quarantined_kwh: f64,
    pub integration_gaps: u32,
    pub counter_gaps: Vec<CounterGapLine>,
    /// Counter readings held back as implausible for more than five minutes.
    pub held_back: u32,
    /// What makes the figures provisional: a month priced with an earlier
    /// month's prices, a year whose holidays the tariff does not list.
    pub warnings: Vec<String>,
    /// The most the battery could have saved on the period's days with
    /// data, by the tariff (`account::optimum`).
    pub optimum_savings: f64,
    /// Attributed savings over `optimum_savings`; None when nothing could be earned.
    pub schedule_efficiency: Option<f64>,
    /// For a day: the round-trip efficiency the optimum assumed, and
    /// whether it was measured, configured or assumed.
    pub optimum_efficiency: Option<f64>,
    pub optimum_efficiency_source: Option<String>,
    /// Ledger against the settlement meter's per-rate registers, when it has them.
    pub reconciliation: Option<super::reconcile::Reconciliation>,
}

pub fn build(
    site: &str,
    period: Period,
    tariff: &Tariff,
    terms: &Terms,
    days: &BTreeMap<Date, Day>,
    months: &BTreeMap<Month, MonthPeak>,
) -> Report {
    let battery = &terms.battery;
    let currency = &tariff.currency;
    let mut bands: BTreeMap<String, Acc> = BTreeMap::new();
    let mut total = Acc::default();
    let (mut n, mut quarantined, mut gaps, mut held_back) = (0, 0i64, 0u32, 0u32);
    let mut un = Unattributed::default();
    let mut intervals = Vec::new();
    let mut hidden = Vec::new();
    let mut counter_gaps = Vec::new();
    let line = |i: &super::ledger::Interval| IntervalLine {
        from: crate::timefmt::local(i.from, &tariff.tz),
        to: crate::timefmt::local(i.to, &tariff.tz),
        charge_kwh: i.charge_mwh as f64 / 1e6,
        discharge_kwh: i.discharge_mwh as f64 / 1e6,
        aux_kwh: i.aux_mwh as f64 / 1e6,
        price_min: i.price_min,
        price_max: i.price_max,
    };
    let mut span: Option<(Date, Date)> = None;
    let (mut optimum, mut achieved) = (Sum::default(), Sum::default());
    let mut day_judged = None;
    for (date, day) in period.days_in(days) {
        span = Some(span.map_or((*date, *date), |(a, _)| (a, *date)));
        n += 1;
        let judged = judge_day(tariff, terms, *date, day);
        optimum.add(judged.optimum_savings);
        achieved.add(judged.savings);
        day_judged = Some(judged);
        quarantined += day.quarantined_mwh;
        gaps += day.gaps;
        held_back += day.held_back;
        if let Some(u) = &day.unattributed {
            un.add(u);
            intervals.extend(u.intervals.iter().map(line));
            hidden.extend(u.hidden.iter().map(line));
        }
        for (key, g) in &day.counter_gaps {
            let (device, counter) = key.split_once('/').unwrap_or(("", key));
            counter_gaps.push(CounterGapLine {
                date: date.to_string(),
                device: device.to_string(),
                counter: counter.to_string(),
                count: g.count,
                longest_s: g.longest_s,
                total_s: g.total_s,
            });
        }
        for (name, b) in &day.bands {
            let cost = b.charge_mwh as f64 / 1e6 * b.price;
            let value = b.discharge_mwh as f64 / 1e6 * b.price;
            let aux = b.aux_mwh as f64 / 1e6 * b.price;
            for acc in [bands.entry(name.clone()).or_default(), &mut total] {
                acc.charge_mwh += b.charge_mwh;
                acc.discharge_mwh += b.discharge_mwh;
                acc.aux_mwh += b.aux_mwh;
                acc.charge_cost.add(cost);
                acc.discharge_value.add(value);
                acc.aux_cost.add(aux);
            }
        }
    }
    let t = total.totals();
    let mut demand = Vec::new();
    let mut demand_savings = Sum::default();
    if tariff.demand.is_some() {
        for (&(y, m), p) in months.iter().filter(|(m, _)| period.contains_month(**m)) {
            let price = Date::new(y, m, 1)
                .ok()
                .and_then(|d| tariff.demand_price(d))
                .unwrap_or(0.0);
            let available = p.measured_windows > 0;
            let savings = if available {
                (p.baseline_max_kw - p.max_kw) * price
            } else {
                0.0
            };
            demand_savings.add(savings);
            demand.push(DemandLine {
                month: format!("{y:04}-{m:02}"),
                available,
                reason: (!available).then(|| {
                    format!(
                        "no demand window of the month had grid import (and battery flow) measured throughout ({} windows with readings missing)",
                        p.unmeasured_windows
                    )
                }),
                max_kw: available.then_some(p.max_kw),
                baseline_max_kw: available.then_some(p.baseline_max_kw),
                measured_windows: p.measured_windows,
                unmeasured_windows: p.unmeasured_windows,
                price_per_kw_month: price,
                savings,
            });
        }
    }
    let u = un.totals();
    // Efficiency and cycles count unattributed energy: its band is unknown, its amount is not.
    let charge = t.charge_kwh + u.charge_kwh;
    let discharge = t.discharge_kwh + u.discharge_kwh;
    let aux = t.aux_kwh + u.aux_kwh;
    let net = t.savings - t.aux_cost;
    Report {
        site: site.to_string(),
        period: period.to_string(),
        currency: currency.to_string(),
        days: n,
        bands: bands.into_iter().map(|(k, v)| (k, v.totals())).collect(),
        equivalent_cycles: if battery.capacity_kwh > 0.0 {
            discharge / battery.capacity_kwh
        } else {
            0.0
        },
        round_trip_efficiency: (charge > 0.0).then(|| discharge / charge),
        overall_efficiency: (charge + aux > 0.0).then(|| discharge / (charge + aux)),
        net_savings: net,
        savings_range: [t.savings + u.savings_min, t.savings + u.savings_max],
        net_savings_range: [
            net + u.savings_min - u.aux_cost_max,
            net + u.savings_max - u.aux_cost_min,
        ],
        unattributed: u,
        unattributed_intervals: intervals,
        hidden_intervals: hidden,
        total: t,
        demand,
        demand_savings: demand_savings.get(),
        quarantined_kwh: quarantined as f64 / 1e6,
        integration_gaps: gaps,
        counter_gaps,
        held_back,
        warnings: span.map(|(a, b)| tariff.warnings(a, b)).unwrap_or_default(),
        reconciliation: span.and_then(|(a, b)| {
            let (first, last) = period.dates().unwrap_or((a, b));
            super::reconcile::reconcile(
                days,
                &terms.meter_rates,
                terms.reconcile_tolerance,
                first.max(a),
                last.min(b),
            )
        }),
        optimum_savings: optimum.get(),
        schedule_efficiency: (optimum.get() > 0.0).then(|| achieved.get() / optimum.get()),
        optimum_efficiency: match (period, day_judged) {
            (Period::Day(_), Some(j)) => Some(j.efficiency),
            _ => None,
        },
        optimum_efficiency_source: match (period, day_judged) {
            (Period::Day(_), Some(j)) => Some(j.source.to_string()),
            _ => None,
        },
    }
}

/// One day's savings against the tariff's optimum for the battery.
#[derive(Debug, Clone, Copy)]
struct Judged {
    savings: f64,
    optimum_savings: f64,
    efficiency: f64,
    source: &'static str,
}

fn judge_day(tariff: &Tariff, terms: &Terms, date: Date, day: &Day) -> Judged {
    let (mut charge, mut discharge, mut savings) = (0i64, 0i64, 0.0);
    for b in day.bands.values() {
        charge += b.charge_mwh;
        discharge += b.discharge_mwh;
        savings += (b.discharge_mwh - b.charge_mwh) as f64 / 1e6 * b.price;
    }
    if let Some(u) = &day.unattributed {
        charge += u.charge_mwh;
        discharge += u.discharge_mwh;
    }
    let (efficiency, source) = terms
        .battery
        .efficiency_for(charge as f64 / 1e6, discharge as f64 / 1e6);
    Judged {
        savings,
        optimum_savings: terms.day_optimum(tariff, date, efficiency),
        efficiency,
        source,
    }
}

/// The period's unattributed energy, summed over days.
#[derive(Debug, Default)]
struct Unattributed {
    charge_mwh: i64,
    discharge_mwh: i64,
    aux_mwh: i64,
    intervals: usize,
    hidden: usize,
    hidden_charge_mwh: i64,
    hidden_discharge_mwh: i64,
    charge_cost_min: Sum,
    charge_cost_max: Sum,
    discharge_value_min: Sum,
    discharge_value_max: Sum,
    aux_cost_min: Sum,
    aux_cost_max: Sum,
}

impl Unattributed {
    fn add(&mut self, u: &super::ledger::Unattributed) {
        self.charge_mwh += u.charge_mwh;
        self.discharge_mwh += u.discharge_mwh;
        self.aux_mwh += u.aux_mwh;
        self.intervals += u.intervals.len();
        self.hidden += u.hidden.len();
        for h in &u.hidden {
            self.hidden_charge_mwh += h.charge_mwh;
            self.hidden_discharge_mwh += h.discharge_mwh;
        }
        self.charge_cost_min.add(u.charge_cost_min);
        self.charge_cost_max.add(u.charge_cost_max);
        self.discharge_value_min.add(u.discharge_value_min);
        self.discharge_value_max.add(u.discharge_value_max);
        self.aux_cost_min.add(u.aux_cost_min);
        self.aux_cost_max.add(u.aux_cost_max);
    }

    fn totals(&self) -> UnattributedTotals {
        UnattributedTotals {
            charge_kwh: self.charge_mwh as f64 / 1e6,
            discharge_kwh: self.discharge_mwh as f64 / 1e6,
            aux_kwh: self.aux_mwh as f64 / 1e6,
            intervals: self.intervals,
            savings_min: self.discharge_value_min.get() - self.charge_cost_max.get(),
            savings_max: self.discharge_value_max.get() - self.charge_cost_min.get(),
            aux_cost_min: self.aux_cost_min.get(),
            aux_cost_max: self.aux_cost_max.get(),
            hidden_intervals: self.hidden,
            hidden_charge_max_kwh: self.hidden_charge_mwh as f64 / 1e6,
            hidden_discharge_max_kwh: self.hidden_discharge_mwh as f64 / 1e6,
        }
    }
}

impl Report {
    pub fn to_table(&self) -> String {
        let mut s = format!(
            "site {}  period {}  ({} day{} with data, {})\n\n{:<12} {:>14} {:>14} {:>14} {:>16} {:>14}\n",
            self.site,
            self.period,
            self.days,
            if self.days == 1 { "" } else { "s" },
            self.currency,
            "band",
            "charge kWh",
            "discharge kWh",
            "charge cost",
            "discharge value",
            "savings"
        );
        let row = |name: &str, t: &Totals| {
            format!(
                "{:<12} {:>14.3} {:>14.3} {:>14.2} {:>16.2} {:>14.2}\n",
                name, t.charge_kwh, t.discharge_kwh, t.charge_cost, t.discharge_value, t.savings
            )
        };
        for (name, t) in &self.bands {
            s += &row(name, t);
        }
        s += &row("total", &self.total);
        s += &format!("\nequivalent cycles    {:.3}\n", self.equivalent_cycles);
        let pct = |e: Option<f64>| e.map_or("-".to_string(), |r| format!("{:.2} %", r * 100.0));
        s += &format!("round-trip eff.      {}\n", pct(self.round_trip_efficiency));
        s += &format!(
            "overall eff.         {} (discharge / (charge + auxiliary))\n",
            pct(self.overall_efficiency)
        );
        if self.total.aux_kwh > 0.0 {
            s += &format!(
                "auxiliary            {:.3} kWh, {:.2} {}\nnet savings          {:.2} {}\n",
                self.total.aux_kwh,
                self.total.aux_cost,
                self.currency,
                self.net_savings,
                self.currency
            );
        }
        let u = &self.unattributed;
        if u.hidden_intervals > 0 {
            s += &format!(
                "\nhidden by resets     up to {:.3} kWh charge, {:.3} kWh discharge over {} span{}: a counter was reset\n\
                 {:21}between two readings, so what flowed there is unknown; the savings range includes it.\n",
                u.hidden_charge_max_kwh,
                u.hidden_discharge_max_kwh,
                u.hidden_intervals,
                if u.hidden_intervals == 1 { "" } else { "s" },
                ""
            );
        }
        if u.intervals > 0 {
            s += &format!(
                "\nunattributed         charge {:.3} kWh, discharge {:.3} kWh, auxiliary {:.3} kWh over {} interval{}:\n\
                 {:21}readings further apart than the attribution gap across a band boundary or midnight,\n\
                 {:21}so the band is unknown; not in the savings above.\n",
                u.charge_kwh,
                u.discharge_kwh,
                u.aux_kwh,
                u.intervals,
                if u.intervals == 1 { "" } else { "s" },
                "",
                "",
            );
            for i in &self.unattributed_intervals {
                s += &format!(
                    "  {} to {}: charge {:.3} kWh, discharge {:.3} kWh, prices {} to {}\n",
                    i.from, i.to, i.charge_kwh, i.discharge_kwh, i.price_min, i.price_max
                );
            }
        }
        if u.intervals > 0 || u.hidden_intervals > 0 {
            s += &format!(
                "{:21}Together they could add {:.2} to {:.2} {}.\nsavings range        {:.2} to {:.2} {}\n",
                "",
                u.savings_min,
                u.savings_max,
                self.currency,
                self.savings_range[0],
                self.savings_range[1],
                self.currency
            );
        }
        for d in &self.demand {
            match (d.max_kw, d.baseline_max_kw) {
                (Some(max), Some(base)) => {
                    s += &format!(
                        "demand {}       max {:.1} kW, without battery {:.1} kW: {:.2} {} ({} windows measured, {} not)\n",
                        d.month, max, base, d.savings, self.currency, d.measured_windows, d.unmeasured_windows
                    )
                }
                _ => {
                    s += &format!(
                        "demand {}       unavailable: {}\n",
                        d.month,
                        d.reason.as_deref().unwrap_or("not measured")
                    )
                }
            }
        }
        if self.quarantined_kwh != 0.0 {
            s += &format!(
                "quarantined          {:.3} kWh (implausible counter jumps, not booked)\n",
                self.quarantined_kwh
            );
        }
        if self.held_back > 0 {
            s += &format!(
                "held back            {} time{} a counter reading stayed implausible for five minutes (see the log)\n",
                self.held_back,
                if self.held_back == 1 { "" } else { "s" }
            );
        }
        if self.integration_gaps > 0 {
            s += &format!("integration gaps     {} (power samples too far apart; nothing booked across them)\n", self.integration_gaps);
        }
        for g in &self.counter_gaps {
            s += &format!(
                "counter gaps         {} {} {}: {} gap{}, longest {}, {} in all\n",
                g.date,
                g.device,
                g.counter,
                g.count,
                if g.count == 1 { "" } else { "s" },
                crate::timefmt::span(g.longest_s),
                crate::timefmt::span(g.total_s)
            );
        }
        if let Some(e) = self.schedule_efficiency {
            s += &format!(
                "schedule efficiency  {:.1} % of the tariff's optimum {:.2}{}\n",
                e * 100.0,
                self.optimum_savings,
                match (self.optimum_efficiency, &self.optimum_efficiency_source) {
                    (Some(x), Some(src)) => format!(" (round trip {:.1} %, {src})", x * 100.0),
                    _ => String::new(),
                }
            );
        }
        if let Some(r) = &self.reconciliation {
            s += &format!(
                "\nmeter reconciliation {} to {} (tolerance {} %)\n{:<10} {:>4} {:<12} {:>14} {:>14} {:>12} {:>8}\n",
                r.from,
                r.to,
                r.tolerance * 100.0,
                "flow",
                "rate",
                "band",
                "meter kWh",
                "ledger kWh",
                "diff kWh",
                "diff %"
            );
            for l in &r.lines {
                s += &format!(
                    "{:<10} {:>4} {:<12} {:>14.2} {:>14.2} {:>12.2} {:>8}{}\n",
                    l.flow,
                    l.rate,
                    l.band,
                    l.meter_kwh,
                    l.ledger_kwh,
                    l.difference_kwh,
                    l.difference_pct.map_or("-".into(), |p| format!("{p:.2}")),
                    if l.flagged { "  FLAGGED" } else { "" }
                );
            }
            if let Some(c) = &r.clock {
                s += &format!(
                    "meter rate switches  {} timed, median {} s from the tariff's boundaries{}\n",
                    c.switches,
                    c.median_offset_s,
                    if c.flagged { "  FLAGGED" } else { "" }
                );
            }
            for n in &r.notes {
                s += &format!("note                 {n}\n");
            }
        }
        for w in &self.warnings {
            s += &format!("warning              {w}\n");
        }
        s
    }

    pub fn to_csv(&self) -> String {
        let mut s = String::from("site,period,band,charge_kwh,discharge_kwh,charge_cost,discharge_value,savings,aux_kwh,aux_cost,currency\n");
        let mut row = |band: &str, t: &Totals| {
            s += &format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                self.site,
                self.period,
                band,
                t.charge_kwh,
                t.discharge_kwh,
                t.charge_cost,
                t.discharge_value,
                t.savings,
                t.aux_kwh,
                t.aux_cost,
                self.currency
            );
        };
        for (name, t) in &self.bands {
            row(name, t);
        }
        row("total", &self.total);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The range lookup finds exactly the days `contains` accepts, at month,
    /// year and leap-day edges and for years the calendar does not hold.
    #[test]
    fn the_days_of_a_period_are_those_it_contains() {
        let mut days = BTreeMap::new();
        let mut d = jiff::civil::date(2023, 12, 25);
        while d < jiff::civil::date(2025, 1, 5) {
            days.insert(d, ());
            d = d.tomorrow().unwrap();
        }
        let periods = [
            Period::Day(jiff::civil::date(2024, 2, 29)),
            Period::Day(jiff::civil::date(2030, 1, 1)),
            Period::Month(2024, 2),
            Period::Month(2023, 12),
            Period::Month(2025, 1),
            Period::Year(2024),
            Period::Year(2023),
            Period::Year(32_000),
            Period::Lifetime,
        ];
        for p in periods {
            let by_range: Vec<Date> = p.days_in(&days).map(|(d, _)| *d).collect();
            let by_filter: Vec<Date> = days.keys().filter(|d| p.contains(**d)).copied().collect();
            assert_eq!(by_range, by_filter, "{p:?}");
        }
        assert_eq!(Period::Month(2024, 2).days_in(&days).count(), 29);
    }

    /// Found by the `period` fuzz target: jiff read this as 208 BC, which
    /// printed as a period that did not parse back.
    #[test]
    fn only_the_documented_forms_are_periods() {
        for bad in [
            "-0002081004T002200.3081-01",
            "+202-01",
            "+2026",
            "2026-1-01",
            "20260101",
            "2026-01-01T00:00",
            "2026-02-30",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
        for good in ["0000", "2026", "2026-02", "2024-02-29", "lifetime"] {
            let p: Period = good.parse().unwrap();
            assert_eq!(p.to_string(), good);
        }
    }

    #[test]
    fn periods_parse_and_match() {
        assert_eq!(
            "2026-11-28".parse(),
            Ok(Period::Day(jiff::civil::date(2026, 11, 28)))
        );
        assert_eq!("2026-11".parse(), Ok(Period::Month(2026, 11)));
        assert_eq!("2026".parse(), Ok(Period::Year(2026)));
        assert_eq!("lifetime".parse(), Ok(Period::Lifetime));
        assert!("2026-13".parse::<Period>().is_err());
        assert!("last week".parse::<Period>().is_err());
        assert!(Period::Month(2026, 11).contains(jiff::civil::date(2026, 11, 1)));
        assert!(!Period::Year(2025).contains(jiff::civil::date(2026, 1, 1)));
    }

    #[test]
    fn compensated_sums_do_not_drift() {
        let mut s = Sum::default();
        let mut naive = 0.0;
        for _ in 0..1_000_000 {
            s.add(0.1);
            naive += 0.1;
        }
        assert!((s.get() - 100_000.0).abs() < 1e-9);
        assert!(
            (naive - 100_000.0f64).abs() > 1e-9,
            "the naive sum drifts, which is why Sum exists"
        );
    }
}
