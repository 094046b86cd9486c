//! The daemon's books: one [`SiteAccount`] per configured site, fed from the
//! pollers' samples, committed to the store at least every 10 s and at
//! shutdown.
use std::collections::HashMap;
use std::sync::Arc;

use jiff::SignedDuration;

use super::energy::{Observation, Reading, SiteAccount, SiteSetup};
use super::report::{self, Period, Report};
use super::store::{Store, StoreError};
use crate::acquire::decode::Value;
use crate::acquire::profile::{Role, Sign};
use crate::acquire::Sample;
use crate::config::validate::{SiteSpec, Validated};
use crate::log_throttle::LogThrottle;

/// Accounting's view of a configured site.
pub fn setup_for(site: &SiteSpec) -> SiteSetup {
    let has = |role: Role| {
        site.devices
            .iter()
            .any(|d| d.profile.point_with_role(role).is_some())
    };
    SiteSetup {
        site: site.id.clone(),
        tariff: site.tariff.clone(),
        capacity_kwh: site.capacity_kwh,
        rated_kw: site.rated_power_kw,
        max_grid_kw: site.max_grid_kw,
        max_gap: SignedDuration::try_from(site.poll_interval * 3)
            .unwrap_or(SignedDuration::from_secs(3)),
        battery_counters: has(Role::ChargeEnergyTotal) && has(Role::DischargeEnergyTotal),
        import_counter: has(Role::GridImportEnergyTotal),
    }
}

/// The observations in one device sample: its role points, normalised (battery
/// power discharge-positive; counters as raw counts). Invalid or missing
/// values of power roles are passed as `None`, so integration does not bridge them.
pub fn observations(s: &Sample, out: &mut Vec<Observation>) {
    let profile = &s.device.profile;
    for (i, p) in profile.points.iter().enumerate() {
        let Some(role) = p.role else { continue };
        let reading = s.readings.iter().find(|r| r.point == i);
        let obs = if role.is_counter() {
            match reading {
                Some(r) if r.valid => Reading::Counter {
                    raw: r.raw,
                    bits: (p.width * 16).min(64) as u8,
                    mwh_per_raw: p.scale * 1e6,
                },
                _ => continue,
            }
        } else {
            let v = reading.filter(|r| r.valid).and_then(|r| match r.value {
                Value::Num(v) => Some(v),
                Value::Bool(b) => Some(b as u8 as f64),
                Value::Text(_) => None,
            });
            let v = if role == Role::BatteryPower && p.sign == Sign::ChargePositive {
                v.map(|x| -x)
            } else {
                v
            };
            if v.is_none() && !s.online {
                // A device that did not answer says nothing about power; the gap shows up as a gap.
                continue;
            }
            Reading::Value(v)
        };
        out.push(Observation {
            at: s.at,
            role,
            reading: obs,
        });
    }
}

pub struct Accountant {
    pub sites: HashMap<Arc<str>, SiteAccount>,
    store: Store,
    scratch: Vec<Observation>,
    /// Counter glitches on a noisy line repeat every poll.
    pub log: LogThrottle,
}

impl Accountant {
    /// Opens the store and resumes each site from what it last committed.
    pub fn open(v: &Validated) -> Result<Accountant, StoreError> {
        let store = Store::open(&v.config.daemon.state_dir)?;
        let mut sites = HashMap::new();
        for s in &v.sites {
            let loaded = store.load(&s.id)?;
            let resumed = loaded.state.is_some();
            let account = SiteAccount::new(
                setup_for(s),
                loaded.state.unwrap_or_default(),
                loaded.days,
                loaded.months,
            );
            if resumed {
                tracing::info!(
                    "site {}: ledger resumed from {}",
                    s.id,
                    v.config.daemon.state_dir.display()
                );
            }
            sites.insert(s.id.clone(), account);
        }
        Ok(Accountant {
            sites,
            store,
            scratch: Vec::new(),
            log: LogThrottle::default(),
        })
    }

    /// Books a sample; true when a counter took its first reading (commit soon).
    pub fn on_sample(&mut self, s: &Sample) -> bool {
        let Some(acc) = self.sites.get_mut(s.site()) else {
            return false;
        };
        self.scratch.clear();
        observations(s, &mut self.scratch);
        for o in &self.scratch {
            acc.observe(o);
        }
        for m in acc.messages.drain(..) {
            self.log.warn(&acc.setup.site, &m);
        }
        acc.baseline_pending
    }

    /// One line per site: SOC, power, current band, and today's savings so far.
    pub fn summary(&mut self, now: jiff::Timestamp) -> Vec<String> {
        let mut accounts: Vec<&mut SiteAccount> = self.sites.values_mut().collect();
        accounts.sort_by(|a, b| a.setup.site.cmp(&b.setup.site));
        accounts
            .into_iter()
            .map(|a| {
                let t = a.setup.tariff.clone();
                let (seg, until, _) = t.next_change(now);
                let today = super::report::Period::Day(seg.date);
                a.ledger.flush();
                let r = super::report::build(&a.setup.site, today, &t.currency, a.setup.capacity_kwh, None, &a.ledger.days, &a.demand.months);
                let live = |role| a.live.get(&role).map(|(_, v)| *v);
                let fmt = |v: Option<f64>, unit: &str| v.map(|x| format!("{x:.1} {unit}")).unwrap_or_else(|| "-".into());
                format!(
                    "site {}: SOC {}, battery {}, band {} at {} {}/kWh until {}; today charged {:.1} kWh, discharged {:.1} kWh, saved {:.2} {}",
                    a.setup.site,
                    fmt(live(Role::Soc), "%"),
                    fmt(live(Role::BatteryPower), "kW"),
                    t.bands[seg.band as usize],
                    seg.price,
                    t.currency,
                    until.to_zoned(t.tz.clone()).strftime("%H:%M"),
                    r.total.charge_kwh,
                    r.total.discharge_kwh,
                    r.total.savings,
                    t.currency
                )
            })
            .collect()
    }

    /// Today's, this month's and the lifetime savings of a site, as of `at` (local dates of its tariff).
    pub fn savings_reports(
        &mut self,
        site: &str,
        at: jiff::Timestamp,
    ) -> Option<(Report, Report, Report)> {
        let a = self.sites.get_mut(site)?;
        a.ledger.flush();
        let t = a.setup.tariff.clone();
        let date = t.tz.to_datetime(at).date();
        let demand = t.demand.as_ref().map(|d| d.price_per_kw_month);
        let build = |p: Period| {
            report::build(
                &a.setup.site,
                p,
                &t.currency,
                a.setup.capacity_kwh,
                demand,
                &a.ledger.days,
                &a.demand.months,
            )
        };
        Some((
            build(Period::Day(date)),
            build(Period::Month(date.year(), date.month())),
            build(Period::Lifetime),
        ))
    }

    /// A site's report for any period, as the API asks for it.
    pub fn report(&mut self, site: &str, period: Period) -> Option<Report> {
        let a = self.sites.get_mut(site)?;
        a.ledger.flush();
        let t = &a.setup.tariff;
        let demand = t.demand.as_ref().map(|d| d.price_per_kw_month);
        Some(report::build(
            &a.setup.site,
            period,
            &t.currency,
            a.setup.capacity_kwh,
            demand,
            &a.ledger.days,
            &a.demand.months,
        ))
    }

    /// Per day of `period`: the date, savings, charge and discharge.
    pub fn days(&mut self, site: &str, period: Period) -> Option<Vec<serde_json::Value>> {
        let a = self.sites.get_mut(site)?;
        a.ledger.flush();
        let t = &a.setup.tariff;
        let dates: Vec<jiff::civil::Date> = a
            .ledger
            .days
            .keys()
            .filter(|d| period.contains(**d))
            .copied()
            .collect();
        Some(
            dates
                .into_iter()
                .map(|d| {
                    let r = report::build(&a.setup.site, Period::Day(d), &t.currency, a.setup.capacity_kwh, None, &a.ledger.days, &a.demand.months);
                    serde_json::json!({ "date": d.to_string(), "savings": r.total.savings, "charge_kwh": r.total.charge_kwh, "discharge_kwh": r.total.discharge_kwh })
                })
                .collect(),
        )
    }

    /// Writes what changed since the last commit, all sites in one transaction.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        // Only sites that saw observations: a fleet of idle sites costs nothing.
        let changes: Vec<_> = self
            .sites
            .values_mut()
            .filter(|a| a.dirty)
            .map(|a| a.take_changes())
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        self.store.commit(&changes)
    }
}
