//! The monthly settlement statement (结算单) both parties of an energy
//! management contract sign: per rate, the storage meter's opening and
//! closing readings, the energy charged and discharged, the prices in force
//! and the money; the savings split by the contract, with and without VAT;
//! and in its notes everything that makes a figure less than certain.
//!
//! Money is in fen (integers) from exact products: energy in mWh times the
//! price in millionths, rounded half away from zero once per line. Totals
//! are sums of rounded lines, so every column adds up on paper.
use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Serialize;

use super::contract::{round_fen, Contract, Shares, Split};
use super::demand::{Month, MonthPeak};
use super::ledger::Day;
use super::optimum::Terms;
use super::reconcile::Reconciliation;
use super::report::{self, Period};
use super::tariff::Tariff;
use crate::role::RateFlow;

pub const ROUNDING: &str = "Each line's amount is its energy times its price, rounded half up to the fen (0.01); totals are sums of the rounded lines. The host's share is rounded half up to the fen and the investor's is the total less the host's, so the two add up exactly; amounts without VAT are the amounts with VAT divided by (1 + VAT rate), rounded the same way.";

/// What a statement is built from, besides the books.
pub struct Site<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub tariff: &'a Tariff,
    pub terms: &'a Terms,
    pub contract: Option<&'a Contract>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub band: String,
    /// The meter's rate number for this band (meter source only).
    pub rate: Option<u8>,
    pub price: f64,
    /// The days this price applied in the month (prices may change inside it).
    pub price_from: Date,
    pub price_to: Date,
    pub opening_charge_kwh: Option<f64>,
    pub closing_charge_kwh: Option<f64>,
    pub opening_discharge_kwh: Option<f64>,
    pub closing_discharge_kwh: Option<f64>,
    pub charge_kwh: f64,
    pub discharge_kwh: f64,
    pub charge_cost: f64,
    pub discharge_value: f64,
    pub savings: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uncertainty {
    pub unattributed_charge_kwh: f64,
    pub unattributed_discharge_kwh: f64,
    pub hidden_charge_max_kwh: f64,
    pub hidden_discharge_max_kwh: f64,
    pub quarantined_kwh: f64,
    pub integration_gaps: u32,
    /// The ledger's savings with what its unattributed energy could add.
    pub ledger_savings_range: [f64; 2],
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub site: String,
    pub site_name: String,
    pub period: String,
    pub from: Date,
    pub to: Date,
    pub currency: String,
    pub tariff: String,
    /// "meter": the storage meter's per-rate registers; "ledger": bessmon's
    /// own booking by the tariff's clock.
    pub energy_source: &'static str,
    pub energy_source_reason: String,
    pub bands: Vec<Line>,
    pub charge_kwh: f64,
    pub discharge_kwh: f64,
    pub charge_cost: f64,
    pub discharge_value: f64,
    pub arbitrage_savings: f64,
    /// None when the tariff has no demand charge.
    pub demand_savings: Option<f64>,
    pub demand_included: bool,
    /// At the tariff's prices, as the lines are (with VAT when the prices
    /// include it).
    pub total_savings: f64,
    pub contract: Option<Split>,
    pub host_amount: Option<f64>,
    pub investor_amount: Option<f64>,
    pub total_savings_incl_vat: f64,
    pub host_amount_incl_vat: Option<f64>,
    pub investor_amount_incl_vat: Option<f64>,
    pub total_savings_excl_vat: f64,
    pub host_amount_excl_vat: Option<f64>,
    pub investor_amount_excl_vat: Option<f64>,
    pub vat_rate: f64,
    pub prices_include_vat: bool,
    pub host: String,
    pub investor: String,
    pub optimum_savings: f64,
    pub schedule_efficiency: Option<f64>,
    pub reconciliation: Option<Reconciliation>,
    pub uncertainty: Uncertainty,
    pub notes: Vec<String>,
    pub rounding: &'static str,
}

fn money(fen: i64) -> f64 {
    fen as f64 / 100.0
}

/// Exact fen of `mwh` at `price` per kWh: the price is taken to the
/// millionth (published tariffs have at most six decimals).
pub fn fen_of(mwh: i64, price: f64) -> i64 {
    let price_u = (price * 1e6).round() as i128;
    // Saturating: a fuzzed ledger or an absurd price must not overflow.
    let units = (mwh as i128).saturating_mul(price_u); // 1e-12 of the currency
    let unit = 10_000_000_000i128; // one fen
    let q = units / unit;
    let r = units % unit;
    let up = if units >= 0 {
        r * 2 >= unit
    } else {
        -r * 2 >= unit
    };
    (q + if up { units.signum() } else { 0 }).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// The month's price periods: runs of days with the same prices.
fn price_periods(tariff: &Tariff, first: Date, last: Date) -> Vec<(Date, Date)> {
    let mut out: Vec<(Date, Date)> = Vec::new();
    let mut d = first;
    while d <= last {
        let same = out.last().is_some_and(|(start, _)| {
            tariff.prices(*start) == tariff.prices(d) && tariff.file_id(*start) == tariff.file_id(d)
        });
        match out.last_mut() {
            Some(p) if same => p.1 = d,
            _ => out.push((d, d)),
        }
        match d.tomorrow() {
            Ok(n) => d = n,
            Err(_) => break,
        }
    }
    out
}

fn price_of(tariff: &Tariff, date: Date, band: &str) -> Option<f64> {
    let i = tariff.bands.iter().position(|b| b == band)?;
    Some(tariff.prices(date)[i]).filter(|p| p.is_finite())
}

struct Energy {
    charge_mwh: i64,
    discharge_mwh: i64,
    readings: Option<[(i64, i64); 2]>,
}

/// Per (band, price period), from the meter's midnight readings; Err names
/// the first reading missing.
fn from_meter(
    days: &BTreeMap<Date, Day>,
    rates: &[String],
    periods: &[(Date, Date)],
) -> Result<Vec<(usize, usize, Energy)>, String> {
    let reading = |flow: RateFlow, rate: usize, d: Date| {
        let role = flow.role(rate);
        days.get(&d)
            .and_then(|day| day.meter_open.get(role.name()))
            .map(|r| r.mwh)
            .ok_or_else(|| format!("no {} reading on {d}", role.name()))
    };
    let mut out = Vec::new();
    for (pi, (start, end)) in periods.iter().enumerate() {
        let close_day = end.tomorrow().map_err(|e| e.to_string())?;
        for rate in 0..rates.len().min(4) {
            let mut pair = [(0, 0); 2];
            for (k, flow) in [RateFlow::Charge, RateFlow::Discharge]
                .into_iter()
                .enumerate()
            {
                pair[k] = (
                    reading(flow, rate, *start)?,
                    reading(flow, rate, close_day)?,
                );
            }
            out.push((
                pi,
                rate,
                Energy {
                    charge_mwh: pair[0].1.saturating_sub(pair[0].0),
                    discharge_mwh: pair[1].1.saturating_sub(pair[1].0),
                    readings: Some(pair),
                },
            ));
        }
    }
    Ok(out)
}

pub fn build(
    site: &Site,
    (year, month): Month,
    days: &BTreeMap<Date, Day>,
    months: &BTreeMap<Month, MonthPeak>,
) -> Result<Statement, String> {
    let period = Period::Month(year, month);
    let (first, last) = period
        .dates()
        .ok_or_else(|| format!("{year}-{month:02} is not a month"))?;
    let tariff = site.tariff;
    let r = report::build(site.id, period, tariff, site.terms, days, months);
    let periods = price_periods(tariff, first, last);
    let mut notes = Vec::new();
    let rates = &site.terms.meter_rates;
    let meter = if super::reconcile::has_meter(days) {
        from_meter(days, rates, &periods)
    } else {
        Err("the site has no per-rate meter registers (charge_energy_rate1.. in a profile)".into())
    };
    let mut lines = Vec::new();
    let mut line = |band: &str, rate: Option<u8>, (start, end): (Date, Date), e: &Energy| {
        let price = price_of(tariff, start, band);
        if price.is_none() && (e.charge_mwh != 0 || e.discharge_mwh != 0) {
            notes.push(format!(
                "{band}: no price in tariff `{}` on {start}; its energy is left out of the money",
                tariff.file_id(start)
            ));
        }
        let price = price.unwrap_or(0.0);
        let (cost, value) = (fen_of(e.charge_mwh, price), fen_of(e.discharge_mwh, price));
        let kwh = |m: i64| m as f64 / 1e6;
        lines.push((
            cost,
            value,
            Line {
                band: band.to_string(),
                rate,
                price,
                price_from: start,
                price_to: end,
                opening_charge_kwh: e.readings.map(|p| kwh(p[0].0)),
                closing_charge_kwh: e.readings.map(|p| kwh(p[0].1)),
                opening_discharge_kwh: e.readings.map(|p| kwh(p[1].0)),
                closing_discharge_kwh: e.readings.map(|p| kwh(p[1].1)),
                charge_kwh: kwh(e.charge_mwh),
                discharge_kwh: kwh(e.discharge_mwh),
                charge_cost: money(cost),
                discharge_value: money(value),
                savings: money(value.saturating_sub(cost)),
            },
        ));
    };
    let (energy_source, energy_source_reason) = match meter {
        Ok(per) => {
            for (pi, rate, e) in &per {
                line(&rates[*rate], Some(*rate as u8 + 1), periods[*pi], e);
            }
            (
                "meter",
                "the storage meter's per-rate registers, read at local midnight on the first of the month and of the next".to_string(),
            )
        }
        Err(why) => {
            for p in &periods {
                let mut per_band: BTreeMap<&str, Energy> = BTreeMap::new();
                for (_, day) in days.range(p.0..=p.1) {
                    for (band, b) in &day.bands {
                        let e = per_band.entry(band).or_insert(Energy {
                            charge_mwh: 0,
                            discharge_mwh: 0,
                            readings: None,
                        });
                        e.charge_mwh = e.charge_mwh.saturating_add(b.charge_mwh);
                        e.discharge_mwh = e.discharge_mwh.saturating_add(b.discharge_mwh);
                    }
                }
                for (band, e) in &per_band {
                    line(band, None, *p, e);
                }
            }
            (
                "ledger",
                format!("bessmon's ledger, booked by the tariff's clock: {why}"),
            )
        }
    };
    let sum =
        |f: &dyn Fn(&(i64, i64, Line)) -> i64| lines.iter().map(f).fold(0i64, i64::saturating_add);
    let cost = sum(&|l| l.0);
    let value = sum(&|l| l.1);
    let charge_mwh: i64 = lines
        .iter()
        .map(|l| (l.2.charge_kwh * 1e6).round() as i64)
        .fold(0, i64::saturating_add);
    let discharge_mwh: i64 = lines
        .iter()
        .map(|l| (l.2.discharge_kwh * 1e6).round() as i64)
        .fold(0, i64::saturating_add);
    let arbitrage = value.saturating_sub(cost);
    let demand = tariff
        .demand
        .as_ref()
        .map(|_| round_fen(r.demand_savings * 100.0));
    let demand_included = demand.is_some() && site.contract.is_none_or(|c| c.include_demand);
    let total = arbitrage
        + if demand_included {
            demand.unwrap_or(0)
        } else {
            0
        };
    let (vat_rate, incl) = site
        .contract
        .map_or((0.13, true), |c| (c.vat_rate, c.prices_include_vat));
    let plain = Contract {
        split: Split::Share { host_share: 0.0 },
        vat_rate,
        prices_include_vat: incl,
        include_demand: true,
        host: String::new(),
        investor: String::new(),
    };
    let basis = match site.contract {
        Some(c) => c.split(arbitrage, value, demand.unwrap_or(0)),
        None => Shares {
            total,
            host: 0,
            investor: total,
        },
    };
    let (gross, net) = site.contract.unwrap_or(&plain).with_and_without_vat(basis);
    if let Some(rec) = &r.reconciliation {
        for l in rec.lines.iter().filter(|l| l.flagged) {
            notes.push(format!(
                "{} rate {} ({}): ledger {:.2} kWh, meter {:.2} kWh, {:+.2} kWh{} beyond the {} % tolerance",
                l.flow,
                l.rate,
                l.band,
                l.ledger_kwh,
                l.meter_kwh,
                l.difference_kwh,
                l.difference_pct
                    .map_or(String::new(), |p| format!(" ({p:+.2} %)")),
                rec.tolerance * 100.0
            ));
        }
        notes.extend(rec.notes.iter().cloned());
    }
    for (d, day) in days.range(first..=last.tomorrow().unwrap_or(last)) {
        for (role, reading) in &day.meter_open {
            let midnight = d
                .to_zoned(tariff.tz.clone())
                .map(|z| z.timestamp())
                .unwrap_or(reading.at);
            let late = midnight.duration_until(reading.at);
            if energy_source == "meter" && late > jiff::SignedDuration::from_mins(5) {
                notes.push(format!(
                    "{role} on {d} was first read at {} ({} after midnight): energy before it falls in the previous day",
                    crate::timefmt::local(reading.at, &tariff.tz),
                    crate::timefmt::span(late.as_secs_f64())
                ));
            }
        }
    }
    let u = &r.unattributed;
    if u.charge_kwh != 0.0 || u.discharge_kwh != 0.0 {
        notes.push(format!(
            "the ledger could not attribute {:.3} kWh charged and {:.3} kWh discharged to a band (readings too far apart across a boundary); its savings lie between {:.2} and {:.2}",
            u.charge_kwh, u.discharge_kwh, r.savings_range[0], r.savings_range[1]
        ));
    }
    if r.quarantined_kwh != 0.0 {
        notes.push(format!(
            "{:.3} kWh of implausible counter jumps were held back, not booked",
            r.quarantined_kwh
        ));
    }
    if r.integration_gaps > 0 {
        notes.push(format!("{} gaps in power readings", r.integration_gaps));
    }
    // One line per counter for the month: a sheet is no place for a log.
    let mut gaps: BTreeMap<(&str, &str), (u32, f64, usize)> = BTreeMap::new();
    for g in &r.counter_gaps {
        let e = gaps.entry((&g.device, &g.counter)).or_default();
        e.0 += g.count;
        e.1 = e.1.max(g.longest_s);
        e.2 += 1;
    }
    for ((device, counter), (count, longest, days)) in gaps {
        notes.push(format!(
            "{device} {counter}: {count} gap(s) in counter readings on {days} day(s), longest {}",
            crate::timefmt::span(longest)
        ));
    }
    notes.extend(r.warnings.iter().cloned());
    let mut revised: BTreeMap<&str, (usize, Date, Date)> = BTreeMap::new();
    for (d, day) in days.range(first..=last) {
        for rev in &day.revisions {
            let e = revised.entry(&rev.what).or_insert((0, *d, *d));
            e.0 += 1;
            e.2 = *d;
        }
    }
    for (what, (n, a, b)) in revised {
        notes.push(format!("ledger revised on {n} day(s) ({a} to {b}): {what}"));
    }
    if r.days < first.days_in_month() as usize {
        notes.push(format!(
            "the ledger has {} of the month's {} days",
            r.days,
            first.days_in_month()
        ));
    }
    if site.contract.is_none() {
        notes.push("no [sites.contract] is configured: the savings are not split".into());
    }
    let with_split = site.contract.is_some();
    Ok(Statement {
        site: site.id.to_string(),
        site_name: site.name.to_string(),
        period: format!("{year:04}-{month:02}"),
        from: first,
        to: last,
        currency: tariff.currency.clone(),
        tariff: tariff.id.clone(),
        energy_source,
        energy_source_reason,
        charge_kwh: charge_mwh as f64 / 1e6,
        discharge_kwh: discharge_mwh as f64 / 1e6,
        charge_cost: money(cost),
        discharge_value: money(value),
        arbitrage_savings: money(arbitrage),
        demand_savings: demand.map(money),
        demand_included,
        total_savings: money(basis.total),
        contract: site.contract.map(|c| c.split),
        host_amount: with_split.then(|| money(basis.host)),
        investor_amount: with_split.then(|| money(basis.investor)),
        total_savings_incl_vat: money(gross.total),
        host_amount_incl_vat: with_split.then(|| money(gross.host)),
        investor_amount_incl_vat: with_split.then(|| money(gross.investor)),
        total_savings_excl_vat: money(net.total),
        host_amount_excl_vat: with_split.then(|| money(net.host)),
        investor_amount_excl_vat: with_split.then(|| money(net.investor)),
        vat_rate,
        prices_include_vat: incl,
        host: site
            .contract
            .map_or("Host (业主)".into(), |c| c.host.clone()),
        investor: site
            .contract
            .map_or("Investor (投资方)".into(), |c| c.investor.clone()),
        optimum_savings: r.optimum_savings,
        schedule_efficiency: r.schedule_efficiency,
        reconciliation: r.reconciliation.clone(),
        uncertainty: Uncertainty {
            unattributed_charge_kwh: u.charge_kwh,
            unattributed_discharge_kwh: u.discharge_kwh,
            hidden_charge_max_kwh: u.hidden_charge_max_kwh,
            hidden_discharge_max_kwh: u.hidden_discharge_max_kwh,
            quarantined_kwh: r.quarantined_kwh,
            integration_gaps: r.integration_gaps,
            ledger_savings_range: r.savings_range,
        },
        bands: lines.into_iter().map(|l| l.2).collect(),
        notes,
        rounding: ROUNDING,
    })
}

#[cfg(test)]
mod tests;
