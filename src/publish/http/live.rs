//! What the HTTP side shows: the latest state of every site and device, kept
//! current by the daemon loop, plus the counters `/metrics` renders.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::account::report::Report;
use crate::acquire::sample::ErrorKind;
use crate::acquire::Sample;
use crate::config::validate::Validated;
use crate::role::Role;

#[derive(Debug, Clone, Serialize, Default)]
pub struct DeviceLive {
    pub online: bool,
    pub last_poll: Option<String>,
    pub poll_ms: f64,
    pub errors: Vec<String>,
    pub values: Values,
    pub invalid: Vec<String>,
}

/// A device's latest value of each point, in the profile's order, shown as a
/// JSON object. Updated in place by point index: every poll of every device
/// passes through here, and a map keyed by name cost a string comparison per
/// value per level of the tree.
#[derive(Debug, Clone, Default)]
pub struct Values {
    list: Vec<(Arc<str>, f64)>,
    /// Point index to position in `list` (`usize::MAX`: not seen yet).
    slot: Vec<usize>,
    /// The profile the slots are for: a reload or a SunSpec resolution that
    /// gives the device another profile starts the list again.
    profile: Option<std::sync::Weak<crate::acquire::profile::Profile>>,
}

impl Values {
    fn set(&mut self, profile: &Arc<crate::acquire::profile::Profile>, point: usize, v: f64) {
        if !self
            .profile
            .as_ref()
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(profile)))
        {
            self.list.clear();
            self.slot = vec![usize::MAX; profile.points.len()];
            self.profile = Some(Arc::downgrade(profile));
        }
        let Some(at) = self.slot.get_mut(point) else {
            return;
        };
        if *at == usize::MAX {
            *at = self.list.len();
            self.list.push((profile.points[point].name.clone(), v));
        } else {
            self.list[*at].1 = v;
        }
    }
}

impl Serialize for Values {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.list.len()))?;
        for (k, v) in &self.list {
            m.serialize_entry(&**k, v)?;
        }
        m.end()
    }
}

/// The band and price in force now, and until when, as the API shows them.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TariffNow {
    pub band: String,
    pub price: f64,
    pub until: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct SiteLive {
    pub id: String,
    pub name: String,
    pub currency: String,
    /// For `/metrics`: how old the tariff's prices in force are.
    #[serde(skip)]
    pub tariff_def: Option<Arc<crate::account::tariff::Tariff>>,
    pub tariff_id: String,
    /// The site's IANA zone: the dashboard shows its times in it.
    pub timezone: String,
    pub capacity_kwh: f64,
    pub rated_power_kw: f64,
    pub soc: Option<f64>,
    /// + = discharge.
    pub battery_power_kw: Option<f64>,
    /// + = import.
    pub grid_power_kw: Option<f64>,
    pub tariff: Option<TariffNow>,
    pub today: Option<Report>,
    /// Net savings this month and over the lifetime, from the same moment
    /// as `today` (one snapshot, never figures of different ages side by side).
    pub month_net_savings: Option<f64>,
    pub lifetime_net_savings: Option<f64>,
    /// When `today` and the two above were taken (RFC 3339).
    pub savings_at: Option<String>,
    /// What the tariff lacks today: this month's prices, this year's holidays.
    pub tariff_warnings: Vec<String>,
    pub devices: BTreeMap<String, DeviceLive>,
    /// The last 24 hours of power and SOC, one point a minute (for the dashboard).
    #[serde(skip)]
    pub history: std::collections::VecDeque<HistoryPoint>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct HistoryPoint {
    pub ts: i64,
    pub battery_power_kw: Option<f64>,
    pub soc: Option<f64>,
}

/// Per-device counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct DeviceMetrics {
    pub polls: u64,
    pub requests: u64,
    pub missed: u64,
    pub errors: [u64; 4],
    /// Poll duration histogram: counts per bucket of [`BUCKETS`], then the sum in seconds.
    pub buckets: [u64; BUCKETS.len()],
    pub duration_sum: f64,
    /// When a poll last got data (Unix ms): the alert "no data for N minutes"
    /// needs a time, not the online flag.
    pub last_success_ms: Option<i64>,
}

pub const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

pub fn kind_index(k: ErrorKind) -> usize {
    match k {
        ErrorKind::Timeout => 0,
        ErrorKind::Exception => 1,
        ErrorKind::Transport => 2,
        ErrorKind::Decode => 3,
    }
}

pub const KINDS: [&str; 4] = ["timeout", "exception", "transport", "decode"];

/// Counter anomaly kinds, as `/metrics` labels them.
pub const ANOMALY_KINDS: [&str; 8] = [
    "quarantined",
    "reset",
    "rollover",
    "transient",
    "gap",
    "implausible",
    "held_back",
    "counter_gap",
];

#[derive(Debug, Default)]
pub struct Live {
    /// The config is loaded and every site has been polled once.
    pub ready: bool,
    pub sites: BTreeMap<String, SiteLive>,
    /// Keyed by the samples' own names, hashed: counting a poll allocates
    /// nothing and compares no strings down a tree. `/metrics` sorts them.
    pub devices: HashMap<(Arc<str>, Arc<str>), DeviceMetrics>,
    /// Per site, counts in the order of [`ANOMALY_KINDS`].
    pub anomalies: BTreeMap<String, [u64; 8]>,
}

impl Live {
    pub fn new(v: &Validated) -> Live {
        let mut live = Live::default();
        for s in &v.sites {
            live.sites.insert(
                s.id.to_string(),
                SiteLive {
                    id: s.id.to_string(),
                    name: s.name.clone(),
                    currency: s.tariff.currency.clone(),
                    tariff_id: s.tariff.id.clone(),
                    tariff_def: Some(s.tariff.clone()),
                    timezone: s.tariff.timezone.clone(),
                    capacity_kwh: s.capacity_kwh,
                    rated_power_kw: s.rated_power_kw,
                    devices: s
                        .devices
                        .iter()
                        .map(|d| (d.id.to_string(), DeviceLive::default()))
                        .collect(),
                    ..SiteLive::default()
                },
            );
        }
        // An instance that owns no sites (an empty shard) has nothing to wait for.
        live.ready = v.devices().next().is_none();
        live
    }

    /// Follows a reloaded configuration: sites and devices that remain keep
    /// what is known of them, new ones start empty, removed ones go.
    pub fn reconfigure(&mut self, v: &Validated) {
        let mut fresh = Live::new(v);
        for (id, site) in fresh.sites.iter_mut() {
            let Some(mut old) = self.sites.remove(id) else {
                continue;
            };
            for (dev, live) in site.devices.iter_mut() {
                if let Some(known) = old.devices.remove(dev) {
                    *live = known;
                }
            }
            site.soc = old.soc;
            site.battery_power_kw = old.battery_power_kw;
            site.grid_power_kw = old.grid_power_kw;
            site.tariff = old.tariff.take();
            site.today = old.today.take();
            site.month_net_savings = old.month_net_savings;
            site.lifetime_net_savings = old.lifetime_net_savings;
            site.savings_at = old.savings_at.take();
            site.tariff_warnings = std::mem::take(&mut old.tariff_warnings);
            site.history = std::mem::take(&mut old.history);
        }
        fresh.devices = std::mem::take(&mut self.devices)
            .into_iter()
            .filter(|((s, d), _)| {
                fresh
                    .sites
                    .get(&**s)
                    .is_some_and(|x| x.devices.contains_key(&**d))
            })
            .collect();
        fresh.anomalies = std::mem::take(&mut self.anomalies)
            .into_iter()
            .filter(|(s, _)| fresh.sites.contains_key(s))
            .collect();
        fresh.ready = fresh
            .sites
            .values()
            .all(|s| s.devices.values().all(|d| d.last_poll.is_some()));
        *self = fresh;
    }

    /// Every device's counters, by site and device name (for `/metrics`).
    pub fn device_metrics(&self) -> Vec<(&Arc<str>, &Arc<str>, &DeviceMetrics)> {
        let mut v: Vec<_> = self.devices.iter().map(|((s, d), m)| (s, d, m)).collect();
        v.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        v
    }

    pub fn on_sample(&mut self, s: &Sample) {
        let (site, device) = (&*s.device.site, &*s.device.device);
        // A sample already queued from a device a reload removed.
        let Some(sl) = self.sites.get_mut(site) else {
            return;
        };
        let Some(d) = sl.devices.get_mut(device) else {
            return;
        };
        let m = self
            .devices
            .entry((s.device.site.clone(), s.device.device.clone()))
            .or_default();
        m.polls += 1;
        m.requests += s.requests as u64;
        m.missed += s.missed as u64;
        for e in &s.errors {
            m.errors[kind_index(e.kind)] += 1;
        }
        if s.online {
            m.last_success_ms = Some(s.at.as_millisecond());
        }
        let secs = s.poll_duration.as_secs_f64();
        m.duration_sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                m.buckets[i] += 1;
            }
        }
        d.online = s.online;
        let stamp = d.last_poll.get_or_insert_with(String::new);
        stamp.clear();
        crate::timefmt::write_rfc3339(stamp, s.at);
        d.poll_ms = secs * 1000.0;
        d.errors.clear();
        d.errors.extend(s.errors.iter().map(|e| e.to_string()));
        if s.online {
            let profile = &s.device.profile;
            // Updated in place: after the first poll no name is allocated again.
            d.invalid.clear();
            for r in &s.readings {
                let p = &profile.points[r.point];
                let Some(v) = r.value.as_f64() else { continue };
                d.values.set(profile, r.point, v);
                if !r.valid {
                    d.invalid.push(p.name.to_string());
                    continue;
                }
                match p.role {
                    Some(Role::Soc) => sl.soc = Some(v),
                    Some(Role::BatteryPower) => {
                        sl.battery_power_kw = Some(p.sign.discharge_positive(v))
                    }
                    Some(Role::GridPower) => sl.grid_power_kw = Some(v),
                    _ => {}
                }
            }
        }
        // One history point a minute of the daemon's clock, a day of them.
        let at = s.at.as_millisecond();
        if sl.history.back().is_none_or(|p| at - p.ts >= 60_000)
            && (sl.soc.is_some() || sl.battery_power_kw.is_some())
        {
            sl.history.push_back(HistoryPoint {
                ts: at,
                battery_power_kw: sl.battery_power_kw,
                soc: sl.soc,
            });
            while sl.history.front().is_some_and(|p| at - p.ts > 86_400_000) {
                sl.history.pop_front();
            }
        }
        if !self.ready
            && self
                .sites
                .values()
                .all(|s| s.devices.values().all(|d| d.last_poll.is_some()))
        {
            self.ready = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquire::profile::Profile;

    fn profile(names: &[&str]) -> Arc<Profile> {
        let mut text = String::from("id = \"t\"\n");
        for (i, n) in names.iter().enumerate() {
            text += &format!(
                "[[points]]\nname = \"{n}\"\ntable = \"holding\"\naddress = {i}\ntype = \"u16\"\n"
            );
        }
        Arc::new(Profile::parse(std::path::Path::new("t.toml"), &text).unwrap())
    }

    #[test]
    fn values_are_kept_by_point_and_shown_by_name() {
        let p = profile(&["a", "b", "c"]);
        let mut v = Values::default();
        v.set(&p, 2, 3.0);
        v.set(&p, 0, 1.0);
        v.set(&p, 2, 4.5);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"c":4.5,"a":1.0}"#);
        // Another profile (a reload, a SunSpec move) starts again.
        let q = profile(&["x"]);
        v.set(&q, 0, 7.0);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"x":7.0}"#);
        v.set(&q, 5, 1.0);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"x":7.0}"#,
            "no such point"
        );
    }
}
