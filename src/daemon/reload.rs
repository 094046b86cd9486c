//! SIGHUP: re-read the configuration and apply what changed, or keep running
//! on the old one. This file decides; `mod.rs` carries it out (pollers by
//! link, books by site, a sink whose settings changed).
use std::sync::Arc;

use crate::config::diff::Diff;
use crate::config::validate::Validated;

/// How the daemon finds its configuration again: the same file, the same
/// environment overrides, the same shard.
#[derive(Clone)]
pub struct Reloader(pub Arc<dyn Fn() -> Result<Validated, Vec<String>> + Send + Sync>);

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloader")
    }
}

/// What a running daemon cannot change in place, or None when it can apply
/// everything. The state directory, the listener and the spool are opened
/// once; a sink added or removed changes what the spool holds for whom.
pub fn needs_restart(d: &Diff, old: &Validated, new: &Validated) -> Option<String> {
    let mut why = Vec::new();
    if d.daemon_changed {
        why.push("[daemon] (instance, state directory, listener, token)");
    }
    if d.spool_changed {
        why.push("[spool]");
    }
    if old.mqtt.is_some() != new.mqtt.is_some() {
        why.push("adding or removing [mqtt]");
    }
    if old.influx.is_some() != new.influx.is_some() {
        why.push("adding or removing [influxdb]");
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// Sites whose books must be reopened under their new setup: their
/// accounting changed, or their devices did (the setup knows which roles
/// are measured and by whom).
pub fn sites_to_reopen(d: &Diff) -> Vec<Arc<str>> {
    let mut sites: Vec<Arc<str>> = d.sites_changed.clone();
    for (site, _) in d
        .devices_added
        .iter()
        .chain(&d.devices_removed)
        .chain(&d.devices_changed)
    {
        if !sites.contains(site) && !d.sites_added.contains(site) {
            sites.push(site.clone());
        }
    }
    sites
}

/// The MQTT sink restarts when its settings changed, or when the topics it
/// retains and announces did (any site or device came, went or changed).
pub fn mqtt_restarts(d: &Diff) -> bool {
    d.mqtt_changed
        || !d.sites_added.is_empty()
        || !d.sites_removed.is_empty()
        || !d.sites_changed.is_empty()
        || !d.devices_added.is_empty()
        || !d.devices_removed.is_empty()
        || !d.devices_changed.is_empty()
}

/// One line for the log.
pub fn summary(d: &Diff) -> String {
    let mut parts = Vec::new();
    for (n, what) in [
        (d.sites_added.len(), "sites added"),
        (d.sites_removed.len(), "sites removed"),
        (d.sites_changed.len(), "sites changed"),
        (d.devices_added.len(), "devices added"),
        (d.devices_removed.len(), "devices removed"),
        (d.devices_changed.len(), "devices changed"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if d.mqtt_changed {
        parts.push("MQTT settings changed".into());
    }
    if d.influxdb_changed {
        parts.push("InfluxDB settings changed".into());
    }
    if parts.is_empty() {
        "nothing changed".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::lab_config;

    #[test]
    fn what_cannot_change_in_place_is_named() {
        let a = lab_config("", "");
        let b = lab_config("[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"", "");
        let d = a.diff(&b);
        assert_eq!(
            needs_restart(&d, &a, &b).as_deref(),
            Some("adding or removing [mqtt]")
        );
        let c = lab_config("[spool]\nmax_bytes = \"2GiB\"", "");
        let d = a.diff(&c);
        assert_eq!(needs_restart(&d, &a, &c).as_deref(), Some("[spool]"));
        let e = lab_config("", ", pause = \"20ms\"");
        let d = a.diff(&e);
        assert_eq!(
            needs_restart(&d, &a, &e),
            None,
            "a device change applies in place"
        );
        assert_eq!(sites_to_reopen(&d), [Arc::<str>::from("lab")]);
        assert!(mqtt_restarts(&d));
        assert_eq!(summary(&d), "1 devices changed");
        assert_eq!(summary(&a.diff(&lab_config("", ""))), "nothing changed");
    }
}
