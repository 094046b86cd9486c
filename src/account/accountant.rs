//! The daemon's books: one [`SiteAccount`] per configured site, fed from the
//! pollers' samples, committed to the store at least every 10 s and at
//! shutdown.
use std::collections::HashMap;
use std::sync::Arc;

use jiff::SignedDuration;

use super::energy::{Changes, Measured, Observation, SiteAccount, SiteSetup};
use super::report::{Period, Report};
use super::site::SiteSpec;
use super::store::{Store, StoreError};
use crate::acquire::decode::scale_factor_of;
use crate::acquire::profile::DataType;
use crate::acquire::Sample;
use crate::log_throttle::LogThrottle;
use crate::role::Role;

/// Accounting's view of a configured site.
pub fn setup_for(site: &SiteSpec) -> SiteSetup {
    let has = |role: Role| {
        site.devices
            .iter()
            .any(|d| d.profile.point_with_role(role).is_some())
    };
    let mut s = SiteSetup::new(
        &site.id,
        site.tariff.clone(),
        site.capacity_kwh,
        site.rated_power_kw,
    );
    s.usable_kwh = site.settle.usable_kwh;
    s.round_trip_efficiency = site.settle.round_trip_efficiency;
    s.max_cycles_per_day = site.settle.max_cycles_per_day;
    s.meter_rates = site.settle.meter_rates.clone();
    s.reconcile_tolerance = site.settle.reconcile_tolerance;
    s.max_grid_kw = site.max_grid_kw;
    s.grid_capacity_kw = site.grid_capacity_kw;
    s.max_gap =
        SignedDuration::try_from(site.poll_interval * 3).unwrap_or(SignedDuration::from_secs(3));
    s.max_attribution_gap =
        SignedDuration::try_from(site.max_attribution_gap).unwrap_or(SignedDuration::from_mins(1));
    s.battery_counters = has(Role::ChargeEnergyTotal) && has(Role::DischargeEnergyTotal);
    s.import_counter = has(Role::GridImportEnergyTotal);
    s.battery_power = has(Role::BatteryPower);
    for d in &site.devices {
        for p in &d.profile.points {
            if let Some(r) = p.role.filter(|r| r.is_site_quantity()) {
                if !s.sources.iter().any(|(x, _)| *x == r) {
                    s.sources.push((r, d.id.clone()));
                }
            }
        }
    }
    s
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
            let Some(r) = reading.filter(|r| r.valid) else {
                continue;
            };
            // A counter's unit is its scale times 10^scale factor, as for any
            // point; without a readable scale factor its counts mean nothing.
            let exponent = match p.scale_factor {
                None => 0,
                Some(j) => {
                    let sf = s.readings.iter().find(|r| r.point == j);
                    match sf.and_then(|r| scale_factor_of(&profile.points[j], r.raw as u16)) {
                        Some(e) => e as i32,
                        None => continue,
                    }
                }
            };
            if p.kind.is_integer() {
                Measured::Counter {
                    raw: r.raw,
                    bits: (p.width * 16).min(64) as u8,
                    mwh_per_raw: p.scale * 10f64.powi(exponent) * 1e6,
                    step: 1,
                }
            } else {
                match float_counter(p.kind, r.raw, p.scale * 10f64.powi(exponent)) {
                    Some(m) => m,
                    None => continue,
                }
            }
        } else {
            let v = reading.filter(|r| r.valid).and_then(|r| r.value.as_f64());
            let v = if role == Role::BatteryPower {
                v.map(|x| p.sign.discharge_positive(x))
            } else {
                v
            };
            if v.is_none() && !s.online {
                // A device that did not answer says nothing about power; the gap shows up as a gap.
                continue;
            }
            Measured::Value(v)
        };
        out.push(Observation {
            at: s.at,
            role,
            reading: obs,
        });
    }
}

/// A float energy register (Eastron, CHINT and most DIN meters send kWh as
/// f32) as a counter in whole mWh that never wraps: a decrease is a reset.
/// `kwh_per_unit` is the point's scale with its scale factor applied. The
/// step is the float's spacing at this magnitude: an f32 at 1 GWh moves in
/// 62.5 Wh steps, and one such step at idle is resolution, not a jump.
fn float_counter(kind: DataType, bits: u64, kwh_per_unit: f64) -> Option<Measured> {
    let (value, spacing) = match kind {
        DataType::F32 => {
            let x = f32::from_bits(bits as u32);
            (
                x as f64,
                (f32::from_bits(x.abs().to_bits() + 1) - x.abs()) as f64,
            )
        }
        DataType::F64 => {
            let x = f64::from_bits(bits);
            (x, f64::from_bits(x.abs().to_bits() + 1) - x.abs())
        }
        _ => return None,
    };
    let mwh = value * kwh_per_unit * 1e6;
    // A negative total is no counter; beyond 2^53 mWh whole counts stop being exact.
    if !(0.0..9.0e15).contains(&mwh) {
        return None;
    }
    Some(Measured::Counter {
        raw: mwh.round() as u64,
        bits: 64,
        mwh_per_raw: 1.0,
        step: (spacing * kwh_per_unit.abs() * 1e6).ceil().max(1.0) as u64,
    })
}

pub struct Accountant {
    pub sites: HashMap<Arc<str>, SiteAccount>,
    store: Store,
    scratch: Vec<Observation>,
    /// Counter glitches on a noisy line repeat every poll.
    pub log: LogThrottle,
    /// Changes a failed commit could not write, for the next one.
    unsaved: Vec<Changes>,
}

impl Accountant {
    /// Opens the store and resumes each site from what it last committed.
    pub fn open(
        configured: &[SiteSpec],
        state_dir: &std::path::Path,
    ) -> Result<Accountant, StoreError> {
        let store = Store::open(state_dir)?;
        let mut books = Accountant {
            sites: HashMap::new(),
            store,
            scratch: Vec::new(),
            log: LogThrottle::default(),
            unsaved: Vec::new(),
        };
        for s in configured {
            let account = books.resume(s)?;
            books.sites.insert(s.id.clone(), account);
        }
        Ok(books)
    }

    /// A site's books as last committed, under `s`'s setup.
    fn resume(&self, s: &SiteSpec) -> Result<SiteAccount, StoreError> {
        let loaded = self.store.load(&s.id)?;
        if loaded.state.is_some() {
            tracing::info!("site {}: ledger resumed", s.id);
        }
        Ok(SiteAccount::new(
            setup_for(s),
            loaded.state.unwrap_or_default(),
            loaded.days,
            loaded.months,
        ))
    }

    /// Follows a reloaded configuration. Everything is committed first; a
    /// removed site's books close (its ledger stays on disk, for a return or
    /// `report`), an added site resumes from the store, and a site in
    /// `reopen` (its accounting or its devices changed) resumes from what was
    /// just committed under its new setup, as after a restart of that site
    /// alone. Every other site's books are untouched.
    pub fn reconfigure(
        &mut self,
        sites: &[SiteSpec],
        reopen: &[Arc<str>],
    ) -> Result<(), StoreError> {
        self.commit()?;
        self.sites.retain(|id, _| sites.iter().any(|s| s.id == *id));
        for s in sites {
            if !self.sites.contains_key(&s.id) || reopen.contains(&s.id) {
                let account = self.resume(s)?;
                self.sites.insert(s.id.clone(), account);
            }
        }
        Ok(())
    }

    /// Books a sample; true when a counter took its first reading (commit soon).
    pub fn on_sample(&mut self, s: &Sample) -> bool {
        let Some(acc) = self.sites.get_mut(s.site()) else {
            return false;
        };
        self.scratch.clear();
        observations(s, &mut self.scratch);
        acc.observe_all(&self.scratch);
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
                let r = a.report(Period::Day(seg.date));
                let live = |role| a.live.get(&role).map(|(_, v)| *v);
                let fmt = |v: Option<f64>, unit: &str| v.map(|x| format!("{x:.1} {unit}")).unwrap_or_else(|| "-".into());
                format!(
                    "site {}: SOC {}, battery {}, band {} at {} {}/kWh until {}; today charged {:.1} kWh, discharged {:.1} kWh, net savings {:.2} {}",
                    a.setup.site,
                    fmt(live(Role::Soc), "%"),
                    fmt(live(Role::BatteryPower), "kW"),
                    t.bands[seg.band as usize],
                    seg.price,
                    t.currency,
                    crate::timefmt::local_hm(until, &t.tz),
                    r.total.charge_kwh,
                    r.total.discharge_kwh,
                    r.net_savings,
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
        let date = a.setup.tariff.tz.to_datetime(at).date();
        Some((
            a.report(Period::Day(date)),
            a.report(Period::Month(date.year(), date.month())),
            a.report(Period::Lifetime),
        ))
    }

    /// A site's report for any period.
    pub fn report(&mut self, site: &str, period: Period) -> Option<Report> {
        Some(self.sites.get_mut(site)?.report(period))
    }

    /// Per day of `period`: the date, savings, charge and discharge.
    pub fn days(&mut self, site: &str, period: Period) -> Option<Vec<serde_json::Value>> {
        Some(self.snapshot(site, period)?.days())
    }

    /// A site's books for `period`, to report from on another thread.
    pub fn snapshot(&mut self, site: &str, period: Period) -> Option<super::report::Snapshot> {
        Some(self.sites.get_mut(site)?.snapshot(period))
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
        if changes.is_empty() && self.unsaved.is_empty() {
            return Ok(());
        }
        // Taking the changes marked them saved: a failed commit keeps them
        // here, merged (newest wins) so a long outage of the disk holds one
        // copy of each day, and the next commit writes them.
        for c in changes {
            match self.unsaved.iter_mut().find(|u| u.site == c.site) {
                Some(u) => u.absorb(c),
                None => self.unsaved.push(c),
            }
        }
        self.store.commit(&self.unsaved)?;
        self.unsaved.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::energy::SiteAccount;
    use crate::account::tariff::TariffCatalog;
    use crate::acquire::decode::{decode_reply, Decoded, Reply};
    use crate::acquire::profile::Profile;
    use crate::acquire::sample::{DeviceRef, PointReading};
    use jiff::Timestamp;
    use std::time::Duration;

    /// A SunSpec-style inverter block: WH (acc32, Wh) with WH_SF beside it,
    /// read as kWh by giving the unit conversion as `scale`.
    const PROFILE: &str = r#"
id = "sunspec-like"
description = "lifetime energy as SunSpec model 103 lays it out"
[[points]]
name = "wh_charge"
table = "holding"
address = 0
type = "u32"
scale = 0.001
scale_factor = "wh_sf"
role = "charge_energy_total"
[[points]]
name = "wh_discharge"
table = "holding"
address = 2
type = "u32"
scale = 0.001
scale_factor = "wh_sf"
role = "discharge_energy_total"
[[points]]
name = "wh_sf"
table = "holding"
address = 4
type = "i16"
"#;

    /// One poll of the register image: the two counters and the exponent as
    /// the device writes them.
    fn sample(dev: &Arc<DeviceRef>, at: Timestamp, chg: u32, dis: u32, sf: i16) -> Sample {
        let words = [
            (chg >> 16) as u16,
            chg as u16,
            (dis >> 16) as u16,
            dis as u16,
            sf as u16,
        ];
        let plan = crate::acquire::planner::plan(&dev.profile).unwrap();
        let mut readings = Vec::new();
        for req in plan.fast.iter().chain(plan.slow.iter()) {
            decode_reply(
                &dev.profile,
                req,
                &Reply::Words(words[req.start as usize..][..req.count as usize].to_vec()),
                |point, d| {
                    if let Decoded::Value { value, raw, valid } = d {
                        readings.push(PointReading {
                            point,
                            value,
                            raw,
                            valid,
                        });
                    }
                },
            );
        }
        Sample {
            device: dev.clone(),
            at,
            readings,
            missing: vec![],
            poll_duration: Duration::ZERO,
            errors: vec![],
            requests: 1,
            missed: 0,
            seq: 1,
            online: true,
        }
    }

    #[test]
    fn a_counter_with_a_scale_factor_books_its_real_energy() {
        let profile =
            Arc::new(Profile::parse(std::path::Path::new("sunspec-like.toml"), PROFILE).unwrap());
        let dev = Arc::new(DeviceRef {
            site: "s".into(),
            device: "inv".into(),
            unit: 1,
            profile,
        });
        let tariff = TariffCatalog::new(&[])
            .load("cn-chongqing-ci-2025-02")
            .unwrap()
            .unwrap();
        let mut setup = SiteSetup::new("s", tariff, 2000.0, 1000.0);
        setup.battery_counters = true;
        let mut acc = SiteAccount::new(
            setup,
            Default::default(),
            Default::default(),
            Default::default(),
        );
        let t0: Timestamp = "2025-03-10T04:00:00Z".parse().unwrap(); // 12:00 in Chongqing: peak
        let mut obs = Vec::new();
        // WH_SF = -2 (SunSpec's negative exponents): a count is 0.01 Wh, so
        // 1,000,000 counts a minute is 10 kWh, 600 kW.
        for (i, dis) in [(0, 50_000_000u32), (1, 51_000_000), (2, 52_000_000)] {
            let s = sample(
                &dev,
                t0 + jiff::SignedDuration::from_mins(i),
                7_000_000,
                dis,
                -2,
            );
            obs.clear();
            observations(&s, &mut obs);
            acc.observe_all(&obs);
        }
        let r = acc.report(Period::Day(jiff::civil::date(2025, 3, 10)));
        assert_eq!(r.quarantined_kwh, 0.0, "{:?}", acc.messages);
        assert!(
            (r.bands["peak"].discharge_kwh - 20.0).abs() < 1e-9,
            "{:?}",
            r.bands
        );
        // A scale factor the device marks as not implemented leaves the counter unread.
        let s = sample(
            &dev,
            t0 + jiff::SignedDuration::from_mins(3),
            7_000_000,
            53_000_000,
            i16::MIN,
        );
        obs.clear();
        observations(&s, &mut obs);
        assert!(obs.iter().all(|o| !o.role.is_counter()), "{obs:?}");
    }

    #[test]
    fn a_float_register_is_a_counter_in_mwh_whose_step_grows_with_it() {
        let at = |kwh: f32| float_counter(DataType::F32, kwh.to_bits() as u64, 1.0).unwrap();
        assert_eq!(
            at(1234.5),
            Measured::Counter {
                raw: 1_234_500_000,
                bits: 64,
                mwh_per_raw: 1.0,
                // f32 spacing at 1234.5 is 2^-13 kWh = 122 mWh.
                step: 123,
            }
        );
        // At 1 GWh an f32 moves in 1/16 kWh.
        let Measured::Counter { step, .. } = at(1.0e6) else {
            unreachable!()
        };
        assert_eq!(step, 62_500);
        // A Wh register (scale 0.001) and an f64 one.
        let wh = float_counter(DataType::F32, 5000f32.to_bits() as u64, 0.001).unwrap();
        assert!(
            matches!(
                wh,
                Measured::Counter {
                    raw: 5_000_000,
                    step: 1,
                    ..
                }
            ),
            "{wh:?}"
        );
        assert!(float_counter(DataType::F64, 2.5f64.to_bits(), 1.0).is_some());
        for bad in [-1.0f32, f32::NAN, f32::INFINITY] {
            assert_eq!(
                float_counter(DataType::F32, bad.to_bits() as u64, 1.0),
                None
            );
        }
    }
}
