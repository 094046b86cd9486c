//! Savings over a period, from the ledger's days and the demand tracker's
//! months: per band and in total, with cycles, round-trip efficiency,
//! auxiliary consumption and demand.
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use serde::Serialize;

use super::demand::{Month, MonthPeak};
use super::ledger::Day;

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
        let parts: Vec<&str> = s.split('-').collect();
        match parts[..] {
            [y] if y.len() == 4 => Ok(Period::Year(y.parse().map_err(|_| bad())?)),
            [y, m] if y.len() == 4 && m.len() == 2 => {
                let (y, m): (i16, i8) =
                    (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
                jiff::civil::Date::new(y, m, 1).map_err(|_| bad())?;
                Ok(Period::Month(y, m))
            }
            [_, _, _] => Ok(Period::Day(s.parse().map_err(|_| bad())?)),
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

    pub fn contains_month(&self, (y, m): Month) -> bool {
        match *self {
            Period::Day(_) => false,
            Period::Month(py, pm) => (py, pm) == (y, m),
            Period::Year(py) => py == y,
            Period::Lifetime => true,
        }
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
    pub max_kw: f64,
    pub baseline_max_kw: f64,
    pub price_per_kw_month: f64,
    pub savings: f64,
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
    /// Discharge over charge in the period; absent when nothing was charged.
    pub round_trip_efficiency: Option<f64>,
    /// Arbitrage savings less what the auxiliaries' energy cost.
    pub net_savings: f64,
    pub demand: Vec<DemandLine>,
    pub demand_savings: f64,
    pub quarantined_kwh: f64,
    pub integration_gaps: u32,
}

pub fn build(
    site: &str,
    period: Period,
    currency: &str,
    capacity_kwh: f64,
    demand_price: Option<f64>,
    days: &BTreeMap<Date, Day>,
    months: &BTreeMap<Month, MonthPeak>,
) -> Report {
    let mut bands: BTreeMap<String, Acc> = BTreeMap::new();
    let mut total = Acc::default();
    let (mut n, mut quarantined, mut gaps) = (0, 0i64, 0u32);
    for (_, day) in days.iter().filter(|(d, _)| period.contains(**d)) {
        n += 1;
        quarantined += day.quarantined_mwh;
        gaps += day.gaps;
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
    if let Some(price) = demand_price {
        for (&(y, m), p) in months.iter().filter(|(m, _)| period.contains_month(**m)) {
            let savings = (p.baseline_max_kw - p.max_kw) * price;
            demand_savings.add(savings);
            demand.push(DemandLine {
                month: format!("{y:04}-{m:02}"),
                max_kw: p.max_kw,
                baseline_max_kw: p.baseline_max_kw,
                price_per_kw_month: price,
                savings,
            });
        }
    }
    Report {
        site: site.to_string(),
        period: period.to_string(),
        currency: currency.to_string(),
        days: n,
        bands: bands.into_iter().map(|(k, v)| (k, v.totals())).collect(),
        equivalent_cycles: if capacity_kwh > 0.0 {
            t.discharge_kwh / capacity_kwh
        } else {
            0.0
        },
        round_trip_efficiency: (t.charge_kwh > 0.0).then(|| t.discharge_kwh / t.charge_kwh),
        net_savings: t.savings - t.aux_cost,
        total: t,
        demand,
        demand_savings: demand_savings.get(),
        quarantined_kwh: quarantined as f64 / 1e6,
        integration_gaps: gaps,
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
        match self.round_trip_efficiency {
            Some(r) => s += &format!("round-trip eff.      {:.2} %\n", r * 100.0),
            None => s += "round-trip eff.      -\n",
        }
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
        for d in &self.demand {
            s += &format!(
                "demand {}       max {:.1} kW, without battery {:.1} kW: {:.2} {}\n",
                d.month, d.max_kw, d.baseline_max_kw, d.savings, self.currency
            );
        }
        if self.quarantined_kwh != 0.0 {
            s += &format!(
                "quarantined          {:.3} kWh (implausible counter jumps, not booked)\n",
                self.quarantined_kwh
            );
        }
        if self.integration_gaps > 0 {
            s += &format!("integration gaps     {} (power samples too far apart; nothing booked across them)\n", self.integration_gaps);
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
