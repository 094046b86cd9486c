//! What changed between two validated configurations, so a reload (SIGHUP)
//! restarts only what it must: the pollers of added, removed or changed
//! devices, the books of sites whose accounting changed, a sink whose
//! settings changed; everything else runs on untouched.
use std::sync::Arc;

use super::validate::Validated;
use crate::account::site::SiteSpec;

#[derive(Debug, Default, PartialEq)]
pub struct Diff {
    pub sites_added: Vec<Arc<str>>,
    pub sites_removed: Vec<Arc<str>>,
    /// Sites whose accounting changed (tariff, size, limits, timing).
    pub sites_changed: Vec<Arc<str>>,
    /// (site, device) whose pollers start, stop or restart.
    pub devices_added: Vec<(Arc<str>, Arc<str>)>,
    pub devices_removed: Vec<(Arc<str>, Arc<str>)>,
    pub devices_changed: Vec<(Arc<str>, Arc<str>)>,
    pub mqtt_changed: bool,
    pub influxdb_changed: bool,
    pub spool_changed: bool,
    /// `[daemon]` changed (state directory, listener, instance...): these need
    /// a restart, a reload cannot apply them.
    pub daemon_changed: bool,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        *self == Diff::default()
    }
}

/// Two sites account alike when everything but their device list agrees.
fn same_books(a: &SiteSpec, b: &SiteSpec) -> bool {
    a.name == b.name
        && a.tariff == b.tariff
        && a.max_grid_kw == b.max_grid_kw
        && a.grid_capacity_kw == b.grid_capacity_kw
        && a.max_attribution_gap == b.max_attribution_gap
        && a.capacity_kwh == b.capacity_kwh
        && a.rated_power_kw == b.rated_power_kw
        && a.poll_interval == b.poll_interval
        && a.settle == b.settle
}

impl Validated {
    /// What must change to go from `self` to `new`.
    pub fn diff(&self, new: &Validated) -> Diff {
        let mut d = Diff::default();
        for old in &self.sites {
            match new.sites.iter().find(|s| s.id == old.id) {
                None => {
                    d.sites_removed.push(old.id.clone());
                    d.devices_removed
                        .extend(old.devices.iter().map(|x| (old.id.clone(), x.id.clone())));
                }
                Some(now) => {
                    if !same_books(old, now) {
                        d.sites_changed.push(old.id.clone());
                    }
                    for dev in &old.devices {
                        let key = (old.id.clone(), dev.id.clone());
                        match now.devices.iter().find(|x| x.id == dev.id) {
                            None => d.devices_removed.push(key),
                            Some(x) if x != dev => d.devices_changed.push(key),
                            Some(_) => {}
                        }
                    }
                    for dev in &now.devices {
                        if !old.devices.iter().any(|x| x.id == dev.id) {
                            d.devices_added.push((now.id.clone(), dev.id.clone()));
                        }
                    }
                }
            }
        }
        for now in &new.sites {
            if !self.sites.iter().any(|s| s.id == now.id) {
                d.sites_added.push(now.id.clone());
                d.devices_added
                    .extend(now.devices.iter().map(|x| (now.id.clone(), x.id.clone())));
            }
        }
        // Settings compare resolved: a changed password file is a change,
        // a default spelled out is not.
        d.mqtt_changed = self.mqtt != new.mqtt;
        d.influxdb_changed = self.influx != new.influx;
        d.spool_changed = self.spool != new.spool;
        d.daemon_changed = self.daemon != new.daemon;
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::load_and_validate;
    use crate::config::ConfigSource;

    fn config(sites: &str, extra: &str) -> Validated {
        let toml = format!(
            "[daemon]\nstate_dir = \"/tmp/unused\"\nprofile_dirs = []\ntariff_dirs = []\n{extra}\n{sites}"
        );
        load_and_validate(&ConfigSource::Inline {
            name: "t".into(),
            toml,
        })
        .unwrap()
    }

    fn site(id: &str, tariff: &str, devices: &[(&str, u16)]) -> String {
        let mut s = format!(
            "\n[[sites]]\nid = \"{id}\"\ntariff = \"{tariff}\"\ncapacity_kwh = 2000\nrated_power_kw = 1000\n"
        );
        for (k, (dev, port)) in devices.iter().enumerate() {
            s += &format!(
                "\n[[sites.devices]]\nid = \"{dev}\"\nprofile = \"bessmon-sim-{dev}\"\nunit = {}\ntimeout = \"500ms\"\ntransport = {{ type = \"tcp\", host = \"127.0.0.1\", port = {port} }}\n",
                k + 1
            );
        }
        s
    }

    fn ids(v: &[Arc<str>]) -> Vec<&str> {
        v.iter().map(|s| &**s).collect()
    }

    #[test]
    fn the_same_configuration_is_no_change() {
        let a = config(&site("a", "cn-chongqing-ci-2025-02", &[("pcs", 502)]), "");
        let b = config(&site("a", "cn-chongqing-ci-2025-02", &[("pcs", 502)]), "");
        assert!(a.diff(&b).is_empty(), "{:?}", a.diff(&b));
    }

    #[test]
    fn settlement_settings_change_the_books() {
        let cq = "cn-chongqing-ci-2025-02";
        let a = config(&site("a", cq, &[("pcs", 502)]), "");
        let b = config(
            &site("a", cq, &[("pcs", 502)]).replacen(
                "rated_power_kw = 1000\n",
                "rated_power_kw = 1000\nusable_kwh = 1800\n",
                1,
            ),
            "",
        );
        assert_eq!(ids(&a.diff(&b).sites_changed), ["a"], "the optimum changes");
    }

    #[test]
    fn sites_devices_and_sinks_are_told_apart() {
        let cq = "cn-chongqing-ci-2025-02";
        let a = config(
            &(site("a", cq, &[("pcs", 502), ("bms", 502)]) + &site("b", cq, &[("pcs", 503)])),
            "",
        );
        let b = config(
            &(site("a", cq, &[("pcs", 502), ("meter", 502)])
                + &site("b", "eu-berlin-two-rate-example", &[("pcs", 504)])
                + &site("c", cq, &[("pcs", 505)])),
            "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n",
        );
        let d = a.diff(&b);
        assert_eq!(ids(&d.sites_added), ["c"]);
        assert!(d.sites_removed.is_empty());
        assert_eq!(
            ids(&d.sites_changed),
            ["b"],
            "b's tariff changed; a's books did not"
        );
        let pairs = |v: &[(Arc<str>, Arc<str>)]| {
            v.iter()
                .map(|(s, d)| format!("{s}/{d}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&d.devices_added), ["a/meter", "c/pcs"]);
        assert_eq!(pairs(&d.devices_removed), ["a/bms"]);
        assert_eq!(
            pairs(&d.devices_changed),
            ["b/pcs"],
            "its port moved; a/pcs is untouched"
        );
        assert!(d.mqtt_changed && !d.influxdb_changed && !d.daemon_changed);
        let back = b.diff(&a);
        assert_eq!(ids(&back.sites_removed), ["c"]);
        assert_eq!(pairs(&back.devices_removed), ["a/meter", "c/pcs"]);
    }
}
