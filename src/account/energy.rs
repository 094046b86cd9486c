//! One site's accounting: observations in (from live samples or a CSV
//! history), bookings out to the ledger and the demand tracker.
//!
//! Energy comes from the battery's cumulative counters when the site has
//! them, else from integrating battery power. Grid import for demand comes
//! from the import counter, else from integrating grid power. Where power is
//! measured beside a counter, it is integrated too as the counter's witness
//! (see `counter::Trace`), so that each observation row is taken powers first.
use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::counter::{self, Counter, Note, TraceRule, Verdict};
use super::demand::{self, Demand, Month, MonthPeak, Window};
use super::integrate::{self, Integrator};
use super::ledger::{Day, Kind, Ledger};
use super::tariff::Tariff;
use crate::role::Role;

/// Grid power beyond this (1 GW) is garbage on any C&I connection.
const GRID_SANITY_KW: f64 = 1e6;

/// What accounting needs to know about a site.
#[derive(Debug, Clone)]
pub struct SiteSetup {
    pub site: Arc<str>,
    pub tariff: Arc<Tariff>,
    pub capacity_kwh: f64,
    pub rated_kw: f64,
    /// What the day's optimum assumes beyond capacity and rating.
    pub usable_kwh: f64,
    pub round_trip_efficiency: Option<f64>,
    pub max_cycles_per_day: f64,
    /// The band each rate of the settlement meter counts, rate 1 first.
    pub meter_rates: Vec<String>,
    pub reconcile_tolerance: f64,
    /// Days' optima already solved for this site's reports.
    pub optimum_memo: super::optimum::Memo,
    /// Plausibility limit for the grid meter's counters when neither a
    /// contracted capacity nor measured grid power says better.
    pub max_grid_kw: f64,
    /// The grid connection's contracted or transformer capacity.
    pub grid_capacity_kw: Option<f64>,
    /// Power is never integrated across a longer gap (3 poll intervals).
    pub max_gap: SignedDuration,
    /// Counter readings further apart are not split by time across bands.
    pub max_attribution_gap: SignedDuration,
    pub battery_counters: bool,
    pub import_counter: bool,
    /// Battery power is measured: demand baselines need the battery's flows.
    pub battery_power: bool,
    /// Which device provides each role: to name it in gap reports, and to
    /// pace the site's state by the device that measures its battery.
    pub sources: Vec<(Role, Arc<str>)>,
}

impl SiteSetup {
    /// A site with nothing measured yet; the caller says what it has.
    pub fn new(site: &str, tariff: Arc<Tariff>, capacity_kwh: f64, rated_kw: f64) -> SiteSetup {
        SiteSetup {
            site: site.into(),
            tariff,
            capacity_kwh,
            rated_kw,
            usable_kwh: capacity_kwh,
            round_trip_efficiency: None,
            max_cycles_per_day: 2.0,
            meter_rates: crate::role::default_meter_rates(),
            reconcile_tolerance: 0.01,
            optimum_memo: Default::default(),
            max_grid_kw: 4.0 * rated_kw,
            grid_capacity_kw: None,
            max_gap: SignedDuration::from_secs(3),
            max_attribution_gap: SignedDuration::from_mins(1),
            battery_counters: false,
            import_counter: false,
            battery_power: false,
            sources: Vec::new(),
        }
    }

    pub fn terms(&self) -> super::optimum::Terms {
        super::optimum::Terms {
            battery: super::optimum::Battery {
                capacity_kwh: self.capacity_kwh,
                rated_kw: self.rated_kw,
                usable_kwh: self.usable_kwh,
                round_trip_efficiency: self.round_trip_efficiency,
                max_cycles_per_day: self.max_cycles_per_day,
            },
            meter_rates: self.meter_rates.clone(),
            reconcile_tolerance: self.reconcile_tolerance,
            memo: self.optimum_memo.clone(),
        }
    }

    fn source(&self, role: Role) -> &str {
        self.sources
            .iter()
            .find(|(r, _)| *r == role)
            .map_or("site", |(_, d)| d)
    }

    fn battery_measured(&self) -> bool {
        self.battery_counters || self.battery_power
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measured {
    /// A cumulative energy counter as read: raw register value, width, and mWh per count.
    Counter {
        raw: u64,
        bits: u8,
        mwh_per_raw: f64,
        /// The least the register can move at this reading, in counts: 1 for an
        /// integer register; a float's spacing at its magnitude, which grows with it.
        step: u64,
    },
    /// A plain value (kW, %); `None` when invalid or missing.
    Value(Option<f64>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub at: Timestamp,
    pub role: Role,
    pub reading: Measured,
}

/// The latest value per role, with its time. A fixed array: it is written for
/// every observation, and a hash map was a sixth of the replay benchmark's time.
#[derive(Debug, Clone, Default)]
pub struct Latest([Option<(Timestamp, f64)>; Role::ALL.len()]);

impl Latest {
    pub fn insert(&mut self, role: Role, value: (Timestamp, f64)) {
        self.0[role as usize] = Some(value);
    }

    pub fn get(&self, role: &Role) -> Option<&(Timestamp, f64)> {
        self.0[*role as usize].as_ref()
    }
}

/// Measured power integrated in both directions, as the counters' witness.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PowerTrace {
    pub integrator: Integrator,
    /// Bumped whenever the chain of samples breaks.
    pub chain: u64,
    pub positive_mwh: f64,
    pub negative_mwh: f64,
}

impl PowerTrace {
    fn observe(&mut self, at: Timestamp, kw: Option<f64>, max_gap: SignedDuration) {
        match self.integrator.observe(at, kw, max_gap) {
            integrate::Step::Flow(f) => {
                self.positive_mwh += f.positive_mwh;
                self.negative_mwh += f.negative_mwh;
            }
            integrate::Step::Gap { .. } | integrate::Step::Started => self.chain += 1,
            integrate::Step::Ignored => {}
        }
    }

    /// The testimony for a counter reading at `at`, in one direction.
    fn at(&self, at: Timestamp, positive: bool, max_gap: SignedDuration) -> Option<counter::Trace> {
        let (t, kw) = self.integrator.last?;
        let lag = t.duration_until(at);
        if lag.is_negative() || lag > max_gap {
            return None;
        }
        Some(counter::Trace {
            chain: self.chain,
            mwh: if positive {
                self.positive_mwh
            } else {
                self.negative_mwh
            },
            lag_s: lag.as_secs_f64(),
            kw: if positive {
                kw.max(0.0)
            } else {
                (-kw).max(0.0)
            },
        })
    }
}

/// What survives a restart, committed together with the ledger so that counters
/// resume from exactly the reading the ledger last booked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteState {
    pub charge: Counter,
    pub discharge: Counter,
    pub aux: Counter,
    pub import: Counter,
    pub export: Counter,
    pub battery: Integrator,
    pub grid: Integrator,
    /// Sub-milliwatt-hour remainders of integrated power, carried so they never drift.
    pub residual_mwh: [f64; 3],
    /// Demand windows not yet settled (state saved by earlier versions kept
    /// one window under `window`; it is dropped, its window left unmeasured).
    #[serde(default)]
    pub windows: Vec<Window>,
    #[serde(default)]
    pub battery_trace: PowerTrace,
    #[serde(default)]
    pub grid_trace: PowerTrace,
}

/// Counts of what the counter and integration policies caught.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Anomalies {
    pub quarantined: u64,
    pub resets: u64,
    pub rollovers: u64,
    pub transients: u64,
    pub gaps: u64,
    /// Power readings beyond 1.5 x the rated (battery) or grid limit: garbage, not flow.
    pub implausible: u64,
    /// Counter readings held back for five minutes with nothing resolving them.
    pub held_back: u64,
    /// Counter readings further apart than the attribution gap.
    pub counter_gaps: u64,
}

#[derive(Debug)]
pub struct SiteAccount {
    pub setup: SiteSetup,
    pub state: SiteState,
    pub ledger: Ledger,
    pub demand: Demand,
    /// Latest value per role, with its time.
    pub live: Latest,
    /// The settlement meter's per-rate registers.
    pub meter: super::meter::MeterWatch,
    pub anomalies: Anomalies,
    /// Messages for the operator, drained by the caller (logged, published).
    pub messages: Vec<String>,
    /// A counter took its first reading: commit soon, or a crash before the next
    /// commit would lose the energy counted from it.
    pub baseline_pending: bool,
    /// Something changed since the last commit.
    pub dirty: bool,
}

impl SiteAccount {
    pub fn new(
        setup: SiteSetup,
        state: SiteState,
        days: BTreeMap<Date, Day>,
        months: BTreeMap<Month, MonthPeak>,
    ) -> Self {
        let window = setup
            .tariff
            .demand
            .as_ref()
            .map(|d| d.window)
            .unwrap_or(std::time::Duration::from_secs(900));
        let demand = Demand::new(
            setup.tariff.tz.clone(),
            window,
            setup.max_attribution_gap,
            setup.battery_measured(),
            state.windows.clone(),
            months,
        );
        SiteAccount {
            ledger: Ledger::new(setup.tariff.clone(), days, setup.max_attribution_gap),
            demand,
            setup,
            state,
            live: Latest::default(),
            meter: Default::default(),
            anomalies: Anomalies::default(),
            messages: Vec::new(),
            baseline_pending: false,
            dirty: false,
        }
    }

    /// Takes one poll's (or one CSV row's) observations: powers first, so that a
    /// counter read in the same poll has the power read with it as its witness.
    pub fn observe_all(&mut self, row: &[Observation]) {
        for o in row
            .iter()
            .filter(|o| matches!(o.reading, Measured::Value(_)))
        {
            self.observe(o);
        }
        for o in row
            .iter()
            .filter(|o| matches!(o.reading, Measured::Counter { .. }))
        {
            self.observe(o);
        }
    }

    pub fn observe(&mut self, o: &Observation) {
        self.dirty = true;
        match o.reading {
            Measured::Counter {
                raw,
                bits,
                mwh_per_raw,
                step,
            } => {
                let kwh = raw as f64 * mwh_per_raw / 1e6;
                self.live.insert(o.role, (o.at, kwh));
                let spec = counter::Spec {
                    bits,
                    mwh_per_raw,
                    step,
                    max_kw: 0.0,
                    rule: TraceRule::Ignore,
                };
                self.counter(o.at, o.role, raw, spec);
            }
            Measured::Value(v) => {
                if let Some(v) = v {
                    self.live.insert(o.role, (o.at, v));
                }
                match o.role {
                    Role::BatteryPower => self.power(o.at, v, true),
                    Role::GridPower => self.power(o.at, v, false),
                    _ => {}
                }
            }
        }
    }

    /// A power reading: the counters' witness where the flow has counters,
    /// else integrated into energy.
    fn power(&mut self, at: Timestamp, kw: Option<f64>, battery: bool) {
        let kw = self.plausible_power(kw, battery);
        let (has_counters, trace) = if battery {
            (self.setup.battery_counters, &mut self.state.battery_trace)
        } else {
            (self.setup.import_counter, &mut self.state.grid_trace)
        };
        if has_counters {
            trace.observe(at, kw, self.setup.max_gap);
        } else {
            self.integrate(at, kw, battery)
        }
    }

    /// A corrupted register must not book megawatt-hours: a power reading beyond
    /// 1.5 x the limit is treated as invalid (an integration chain breaks there).
    /// The battery's limit is its rating; the grid's is the contracted capacity,
    /// and without one only what no C&I connection carries (a site may import
    /// far more than its battery's rating).
    fn plausible_power(&mut self, kw: Option<f64>, battery: bool) -> Option<f64> {
        let s = &self.setup;
        let limit = 1.5
            * if battery {
                s.rated_kw
            } else {
                s.grid_capacity_kw.unwrap_or(GRID_SANITY_KW)
            };
        match kw {
            Some(v) if v.abs() > limit => {
                self.anomalies.implausible += 1;
                let site = &self.setup.site;
                self.messages.push(format!(
                    "site {site}: {} read {v} kW, beyond 1.5 x its limit of {:.0} kW: not integrated",
                    if battery { "battery power" } else { "grid power" },
                    limit / 1.5
                ));
                None
            }
            other => other,
        }
    }

    /// `read` is the register's width, unit and step; what the counter may do
    /// (its power limit and witness rule) is the site's and is filled in here.
    fn counter(&mut self, at: Timestamp, role: Role, raw: u64, read: counter::Spec) {
        if role.meter_rate().is_some() {
            // Read for settlement, never booked: the battery's own counters
            // (or power) book the energy, and the two are reconciled.
            let mwh = read.to_mwh(raw);
            self.meter
                .observe(&mut self.ledger, &self.setup.meter_rates, at, role, mwh);
            return;
        }
        let s = &self.setup;
        let battery = TraceRule::Idle {
            near_zero_kw: 0.01 * s.rated_kw,
        };
        let (grid_kw, grid_rule) = match s.grid_capacity_kw {
            Some(c) => (c, TraceRule::Ignore),
            None => (s.max_grid_kw, TraceRule::Consistent),
        };
        let gap = s.max_gap;
        let (counter, max_kw, rule, trace) = match role {
            Role::ChargeEnergyTotal if s.battery_counters => (
                &mut self.state.charge,
                s.rated_kw,
                battery,
                self.state.battery_trace.at(at, false, gap),
            ),
            Role::DischargeEnergyTotal if s.battery_counters => (
                &mut self.state.discharge,
                s.rated_kw,
                battery,
                self.state.battery_trace.at(at, true, gap),
            ),
            Role::AuxEnergyTotal => (&mut self.state.aux, s.rated_kw, TraceRule::Ignore, None),
            Role::GridImportEnergyTotal if s.import_counter => (
                &mut self.state.import,
                grid_kw,
                grid_rule,
                self.state.grid_trace.at(at, true, gap),
            ),
            Role::GridExportEnergyTotal => (
                &mut self.state.export,
                grid_kw,
                grid_rule,
                self.state.grid_trace.at(at, false, gap),
            ),
            _ => return,
        };
        let spec = counter::Spec {
            max_kw,
            rule,
            ..read
        };
        let outcome = counter.observe(counter::CounterReading { raw, at, trace }, &spec);
        let note = match outcome {
            Verdict::Booked {
                from,
                to,
                mwh,
                note,
            } => {
                if from.duration_until(to) > self.setup.max_attribution_gap {
                    self.counter_gap(role, from, to);
                }
                match role {
                    Role::ChargeEnergyTotal => {
                        self.ledger.book(from, to, Kind::Charge, mwh);
                        self.demand.add(from, to, demand::Flow::Charge, mwh);
                    }
                    Role::DischargeEnergyTotal => {
                        self.ledger.book(from, to, Kind::Discharge, mwh);
                        self.demand.add(from, to, demand::Flow::Discharge, mwh);
                    }
                    Role::AuxEnergyTotal => self.ledger.book(from, to, Kind::Aux, mwh),
                    Role::GridImportEnergyTotal => {
                        self.demand.add(from, to, demand::Flow::Import, mwh)
                    }
                    _ => {}
                }
                note
            }
            Verdict::Suspect(n) => {
                // Only the next reading tells a glitch from a reset or a real jump, and
                // that verdict is what gets reported and counted; a glitch must not
                // leave a quarantined figure in the ledger.
                tracing::debug!(site = %self.setup.site, role = role.name(), "held back: {n:?}");
                None
            }
            Verdict::Overdue { since, note } => {
                self.anomalies.held_back += 1;
                self.ledger.note_held_back(at);
                let site = &self.setup.site;
                let what = match note {
                    Note::Quarantined { mwh, limit_mwh } => format!(
                        "moved {:.3} kWh, more than physics allows ({:.3} kWh)",
                        mwh as f64 / 1e6,
                        limit_mwh as f64 / 1e6
                    ),
                    Note::Decrease { from_raw, to_raw } => {
                        format!("went down from {from_raw} to {to_raw}")
                    }
                    ref other => format!("{other:?}"),
                };
                let hint = match role {
                    Role::GridImportEnergyTotal | Role::GridExportEnergyTotal => " (set sites.grid_capacity_kw or measure grid power if the site is larger than expected)",
                    _ => "",
                };
                self.messages.push(format!(
                    "site {site}: {} {what} since its last good reading at {since}: held back for five minutes, nothing booked from it yet{hint}",
                    role.name()
                ));
                None
            }
            Verdict::Baseline => {
                self.baseline_pending = true;
                None
            }
            Verdict::Ignored => None,
        };
        if let Some(n) = note {
            self.note(at, role, &n);
        }
    }

    fn counter_gap(&mut self, role: Role, from: Timestamp, to: Timestamp) {
        self.anomalies.counter_gaps += 1;
        let key = format!("{}/{}", self.setup.source(role), role.name());
        self.ledger.note_counter_gap(&key, from, to);
    }

    fn note(&mut self, at: Timestamp, counter: Role, n: &Note) {
        let site = self.setup.site.clone();
        let role = counter.name();
        let msg = match *n {
            Note::Rollover => {
                self.anomalies.rollovers += 1;
                format!("site {site}: {role} counter rolled over at its register width; counted on")
            }
            Note::Reset {
                from_raw,
                to_raw,
                quarantined_mwh,
                hidden: (from, to),
                hidden_max_mwh,
            } => {
                self.anomalies.resets += 1;
                let kind = match counter {
                    Role::ChargeEnergyTotal => Some(Kind::Charge),
                    Role::DischargeEnergyTotal => Some(Kind::Discharge),
                    Role::AuxEnergyTotal => Some(Kind::Aux),
                    _ => None,
                };
                if let (Some(kind), true) = (kind, hidden_max_mwh > 0) {
                    self.ledger.note_hidden(from, to, kind, hidden_max_mwh);
                }
                let mut m = format!(
                    "site {site}: {role} counter was reset ({from_raw} -> {to_raw}); energy between the last reading and the reset is not known (at most {:.3} kWh, reported as hidden)",
                    hidden_max_mwh as f64 / 1e6
                );
                if quarantined_mwh > 0 {
                    self.anomalies.quarantined += 1;
                    self.ledger.note_quarantine(at, quarantined_mwh);
                    m += &format!(
                        "; the {:.3} kWh it showed since is more than could have flowed: quarantined",
                        quarantined_mwh as f64 / 1e6
                    );
                }
                m
            }
            Note::Quarantined { mwh, limit_mwh } => {
                self.anomalies.quarantined += 1;
                self.ledger.note_quarantine(at, mwh);
                format!(
                    "site {site}: {role} jumped {:.3} kWh, more than physics allows ({:.3} kWh): quarantined, not booked; counting on from the new value",
                    mwh as f64 / 1e6,
                    limit_mwh as f64 / 1e6
                )
            }
            Note::TransientIgnored { raw } => {
                self.anomalies.transients += 1;
                format!("site {site}: {role} read {raw} once and then continued from before: a glitch, ignored")
            }
            Note::Decrease { from_raw, to_raw } => {
                format!("site {site}: {role} went down from {from_raw} to {to_raw}")
            }
            Note::Rescaled {
                from_mwh_per_raw,
                to_mwh_per_raw,
            } => format!(
                "site {site}: {role} changed its unit from {} to {} Wh per count; compared in energy",
                from_mwh_per_raw / 1e3,
                to_mwh_per_raw / 1e3
            ),
        };
        self.messages.push(msg);
    }

    fn integrate(&mut self, at: Timestamp, kw: Option<f64>, battery: bool) {
        let gap = self.setup.max_gap;
        let integrator: &mut Integrator = if battery {
            &mut self.state.battery
        } else {
            &mut self.state.grid
        };
        match integrator.observe(at, kw, gap) {
            integrate::Step::Flow(f) => {
                if battery {
                    let d = self.carry(0, f.positive_mwh);
                    let c = self.carry(1, f.negative_mwh);
                    self.ledger.book(f.from, f.to, Kind::Discharge, d);
                    self.ledger.book(f.from, f.to, Kind::Charge, c);
                    self.demand.add(f.from, f.to, demand::Flow::Discharge, d);
                    self.demand.add(f.from, f.to, demand::Flow::Charge, c);
                } else {
                    let i = self.carry(2, f.positive_mwh);
                    self.demand.add(f.from, f.to, demand::Flow::Import, i);
                }
            }
            integrate::Step::Gap { from, to } => {
                self.anomalies.gaps += 1;
                if battery {
                    self.ledger.note_gap(to);
                }
                let site = self.setup.site.clone();
                self.messages.push(format!(
                    "site {site}: no {} reading from {from} to {to}: energy over the gap is not booked",
                    if battery { "battery power" } else { "grid power" }
                ));
            }
            integrate::Step::Started | integrate::Step::Ignored => {}
        }
    }

    fn carry(&mut self, slot: usize, mwh: f64) -> i64 {
        let total = self.state.residual_mwh[slot] + mwh;
        let whole = total.floor();
        self.state.residual_mwh[slot] = total - whole;
        whole as i64
    }

    /// Everything changed since the last call, for the store.
    pub fn take_changes(&mut self) -> Changes {
        self.baseline_pending = false;
        self.dirty = false;
        self.state.windows = self.demand.open.values().copied().collect();
        Changes {
            site: self.setup.site.clone(),
            days: self.ledger.take_dirty(),
            months: self.demand.take_dirty(),
            state: self.state.clone(),
        }
    }

    /// The site's report for `period`, from the books as they stand.
    pub fn report(&mut self, period: super::report::Period) -> super::report::Report {
        self.ledger.flush();
        super::report::build(
            &self.setup.site,
            period,
            &self.setup.tariff,
            &self.setup.terms(),
            &self.ledger.days,
            &self.demand.months,
        )
    }

    /// The books for `period` as they stand, copied out so that reports can
    /// be built away from the loop that keeps them.
    pub fn snapshot(&mut self, period: super::report::Period) -> super::report::Snapshot {
        self.ledger.flush();
        super::report::Snapshot {
            site: self.setup.site.clone(),
            tariff: self.setup.tariff.clone(),
            terms: self.setup.terms(),
            period,
            days: period
                .days_in(&self.ledger.days)
                .map(|(d, day)| (*d, day.clone()))
                .collect(),
            months: self
                .demand
                .months
                .iter()
                .filter(|(m, _)| period.contains_month(**m))
                .map(|(m, p)| (*m, *p))
                .collect(),
        }
    }

    /// The end of a history: settle the demand windows still open.
    pub fn finish(&mut self) {
        self.demand.close_all();
    }
}

/// One site's changes, committed in one transaction with the others.
#[derive(Debug, Clone)]
pub struct Changes {
    pub site: Arc<str>,
    pub days: Vec<(Date, Day)>,
    pub months: Vec<(Month, MonthPeak)>,
    pub state: SiteState,
}

impl Changes {
    /// Takes in newer changes of the same site: their days, months and state
    /// replace these.
    pub fn absorb(&mut self, newer: Changes) {
        for (d, day) in newer.days {
            match self.days.iter_mut().find(|(x, _)| *x == d) {
                Some(slot) => slot.1 = day,
                None => self.days.push((d, day)),
            }
        }
        for (m, peak) in newer.months {
            match self.months.iter_mut().find(|(x, _)| *x == m) {
                Some(slot) => slot.1 = peak,
                None => self.months.push((m, peak)),
            }
        }
        self.state = newer.state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::report::{self, Period};

    /// A failed commit's changes and the next ones merge into one write:
    /// newer days and months replace older ones, others are kept.
    #[test]
    fn changes_absorb_newer_ones() {
        let d = |n| jiff::civil::date(2026, 3, n);
        let day = |gaps| Day {
            gaps,
            ..Day::default()
        };
        let mut old = Changes {
            site: "s".into(),
            days: vec![(d(1), day(1)), (d(2), day(2))],
            months: vec![((2026, 3), MonthPeak::default())],
            state: SiteState::default(),
        };
        let newer = Changes {
            site: "s".into(),
            days: vec![(d(2), day(20)), (d(3), day(3))],
            months: vec![],
            state: SiteState::default(),
        };
        old.absorb(newer);
        let gaps: Vec<(Date, u32)> = old.days.iter().map(|(x, y)| (*x, y.gaps)).collect();
        assert_eq!(gaps, vec![(d(1), 1), (d(2), 20), (d(3), 3)]);
        assert_eq!(old.months.len(), 1);
    }

    fn setup(battery_counters: bool, import_counter: bool) -> SiteSetup {
        // Chongqing with a demand charge, so demand savings show.
        let text = crate::bundled::tariff("cn-chongqing-ci-2025-02")
            .unwrap()
            .replacen(
                "\n[[seasons]]",
                "\ndemand_charge = { price_per_kw_month = 30.0 }\n\n[[seasons]]",
                1,
            );
        let tariff = Arc::new(
            Tariff::parse(std::path::Path::new("cn-chongqing-ci-2025-02.toml"), &text).unwrap(),
        );
        let mut s = SiteSetup::new("t", tariff, 2000.0, 1000.0);
        s.battery_counters = battery_counters;
        s.import_counter = import_counter;
        s
    }

    fn fresh(battery_counters: bool, import_counter: bool) -> SiteAccount {
        SiteAccount::new(
            setup(battery_counters, import_counter),
            SiteState::default(),
            BTreeMap::new(),
            BTreeMap::new(),
        )
    }

    fn local(s: &str) -> Timestamp {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
            .unwrap()
            .timestamp()
    }

    fn value(at: Timestamp, role: Role, v: Option<f64>) -> Observation {
        Observation {
            at,
            role,
            reading: Measured::Value(v),
        }
    }

    fn counter(at: Timestamp, role: Role, kwh: f64) -> Observation {
        Observation {
            at,
            role,
            reading: Measured::Counter {
                raw: (kwh * 1000.0).round() as u64,
                bits: 32,
                mwh_per_raw: 1000.0,
                step: 1,
            },
        }
    }

    fn totals(acc: &mut SiteAccount, p: &str) -> report::Report {
        acc.finish();
        acc.report(p.parse::<Period>().unwrap())
    }

    #[test]
    fn power_is_integrated_when_there_are_no_counters() {
        let mut acc = fresh(false, false);
        let t0 = local("2025-03-10T02:00");
        // An hour charging at 360 kW (one reading a second), then an hour discharging at 720 kW at the peak.
        for s in 0..=3600 {
            acc.observe(&value(
                t0 + SignedDuration::from_secs(s),
                Role::BatteryPower,
                Some(-360.0),
            ));
        }
        let t1 = local("2025-03-10T12:00");
        for s in 0..=3600 {
            acc.observe(&value(
                t1 + SignedDuration::from_secs(s),
                Role::BatteryPower,
                Some(720.0),
            ));
        }
        let r = totals(&mut acc, "2025-03-10");
        assert!(
            (r.bands["valley"].charge_kwh - 360.0).abs() < 1e-6,
            "{:?}",
            r.bands
        );
        assert!((r.bands["peak"].discharge_kwh - 720.0).abs() < 1e-6);
        // The ten hours between the two runs are a gap: reported, nothing booked.
        assert_eq!(r.integration_gaps, 1);
        assert_eq!(acc.anomalies.gaps, 1);
        assert!((r.total.savings - (720.0 * 1.133067 - 360.0 * 0.379188)).abs() < 1e-6);
    }

    #[test]
    fn an_invalid_power_reading_is_not_interpolated_through() {
        let mut acc = fresh(false, false);
        let t0 = local("2025-03-10T02:00");
        let at = |ms| t0 + SignedDuration::from_millis(ms);
        acc.observe(&value(at(0), Role::BatteryPower, Some(-1000.0)));
        acc.observe(&value(at(1800), Role::BatteryPower, Some(-1000.0))); // 0.5 kWh
        acc.observe(&value(at(2500), Role::BatteryPower, None)); // invalid: chain broken
        acc.observe(&value(at(3000), Role::BatteryPower, Some(-1000.0)));
        acc.observe(&value(at(4800), Role::BatteryPower, Some(-1000.0))); // 0.5 kWh
        let r = totals(&mut acc, "2025-03-10");
        assert!(
            (r.total.charge_kwh - 1.0).abs() < 1e-9,
            "{}",
            r.total.charge_kwh
        );
    }

    #[test]
    fn latest_values_are_indexed_by_role() {
        // `Latest` indexes its array with `role as usize`: ALL must list every
        // role in declaration order.
        for (i, r) in Role::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        let mut l = Latest::default();
        let t = local("2025-03-10T02:00");
        l.insert(Role::Alarm, (t, 3.0));
        assert_eq!(l.get(&Role::Alarm), Some(&(t, 3.0)));
        assert_eq!(l.get(&Role::Soc), None);
    }

    #[test]
    fn a_garbage_power_reading_books_nothing() {
        let mut acc = fresh(false, false);
        let t0 = local("2025-03-10T02:00");
        let at = |ms| t0 + SignedDuration::from_millis(ms);
        acc.observe(&value(at(0), Role::BatteryPower, Some(-1000.0)));
        acc.observe(&value(at(1800), Role::BatteryPower, Some(-1000.0))); // 0.5 kWh
                                                                          // A word-swapped or corrupted float: 1.2e9 kW on a 1 MW battery.
        acc.observe(&value(at(2500), Role::BatteryPower, Some(-1.2e9)));
        acc.observe(&value(at(3000), Role::BatteryPower, Some(-1000.0)));
        acc.observe(&value(at(4800), Role::BatteryPower, Some(-1000.0))); // 0.5 kWh
                                                                          // On the grid side the limit is the grid connection's.
        acc.observe(&value(at(5000), Role::GridPower, Some(5000.0)));
        acc.observe(&value(at(6000), Role::GridPower, Some(2.0e6)));
        let r = totals(&mut acc, "2025-03-10");
        assert!(
            (r.total.charge_kwh - 1.0).abs() < 1e-9,
            "{}",
            r.total.charge_kwh
        );
        assert_eq!(acc.anomalies.implausible, 2);
        assert!(
            acc.messages
                .iter()
                .any(|m| m.contains("battery power read -1200000000 kW")),
            "{:?}",
            acc.messages
        );
    }

    #[test]
    fn auxiliary_consumption_is_priced_by_band() {
        let mut acc = fresh(true, false);
        let t0 = local("2025-03-10T12:00");
        acc.observe(&counter(t0, Role::AuxEnergyTotal, 100.0));
        acc.observe(&counter(
            t0 + SignedDuration::from_mins(10),
            Role::AuxEnergyTotal,
            105.0,
        ));
        let r = totals(&mut acc, "2025-03");
        assert!((r.total.aux_kwh - 5.0).abs() < 1e-9);
        assert!((r.total.aux_cost - 5.0 * 1.133067).abs() < 1e-9);
        assert!((r.net_savings - (r.total.savings - r.total.aux_cost)).abs() < 1e-12);
    }

    #[test]
    fn demand_from_the_import_counter_with_the_battery_shaving() {
        let mut acc = fresh(true, true);
        let t0 = local("2025-07-01T14:00");
        let (mut imp, mut dis) = (0.0, 0.0);
        // Two windows: 15 min of 1,200 kW import with the battery idle, then 15 min of
        // 700 kW import while it discharges 900 kW (the site needed 1,600 kW).
        for m in 0..=45 {
            let at = t0 + SignedDuration::from_mins(m);
            acc.observe(&counter(at, Role::GridImportEnergyTotal, imp));
            acc.observe(&counter(at, Role::ChargeEnergyTotal, 0.0));
            acc.observe(&counter(at, Role::DischargeEnergyTotal, dis));
            match m {
                0..15 => imp += 1200.0 / 60.0,
                15..30 => {
                    imp += 700.0 / 60.0;
                    dis += 900.0 / 60.0;
                }
                _ => imp += 100.0 / 60.0,
            }
        }
        let r = totals(&mut acc, "2025-07");
        let d = &r.demand[0];
        assert!((d.max_kw.unwrap() - 1200.0).abs() < 1e-6, "{d:?}");
        assert!((d.baseline_max_kw.unwrap() - 1600.0).abs() < 1e-6, "{d:?}");
        assert_eq!((d.measured_windows, d.unmeasured_windows), (3, 0));
        assert!((r.demand_savings - 400.0 * 30.0).abs() < 1e-6);
    }
}
