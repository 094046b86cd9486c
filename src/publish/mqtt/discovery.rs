//! The retained topics a configuration publishes, and Home Assistant's
//! discovery configs for them.
use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::account::site::SiteSpec;
use crate::config::MqttSettings;
use crate::role::Role;

/// The retained topics `sites` publish, and Home Assistant's discovery
/// configs (topic, payload) when enabled.
pub fn retained_topics(
    s: &MqttSettings,
    sites: &[SiteSpec],
) -> (BTreeSet<String>, Vec<(String, String)>) {
    let p = &s.prefix;
    let mut topics = BTreeSet::new();
    let mut discovery = Vec::new();
    for site in sites {
        topics.insert(format!("{p}/{}/tariff", site.id));
        topics.insert(format!("{p}/{}/savings", site.id));
        for d in &site.devices {
            topics.insert(format!("{p}/{}/{}/state", site.id, d.id));
            topics.insert(format!("{p}/{}/{}/availability", site.id, d.id));
        }
        let Some(ha) = &s.homeassistant else { continue };
        let role_source = |role: Role| {
            site.devices.iter().find_map(|d| {
                d.profile
                    .point_with_role(role)
                    .map(|(_, pt)| (d.id.clone(), pt.name.clone()))
            })
        };
        // Identities from the site alone: a site moved to another instance
        // (another shard) stays the same Home Assistant device and entities.
        let device = json!({
            "identifiers": [format!("bessmon_{}", site.id)],
            "name": site.name,
            "manufacturer": "bessmon",
            "model": format!("{} kWh / {} kW", site.capacity_kwh, site.rated_power_kw),
        });
        let mut sensors: Vec<(&str, String, String, Value)> = Vec::new();
        if let Some((dev, pt)) = role_source(Role::Soc) {
            sensors.push(("soc", "State of charge".into(), format!("{p}/{}/{dev}/state", site.id), json!({
                "value_template": format!("{{{{ value_json['values']['{pt}'] }}}}"), "unit_of_measurement": "%", "device_class": "battery", "state_class": "measurement" })));
        }
        if let Some((dev, pt)) = role_source(Role::BatteryPower) {
            sensors.push(("battery_power", "Battery power".into(), format!("{p}/{}/{dev}/state", site.id), json!({
                "value_template": format!("{{{{ value_json['values']['{pt}'] }}}}"), "unit_of_measurement": "kW", "device_class": "power", "state_class": "measurement" })));
        }
        // Net of what the auxiliaries cost: the figure an owner is paid on.
        sensors.push(("savings_today", "Net savings today".into(), format!("{p}/{}/savings", site.id), json!({
            "value_template": "{{ value_json.today.net_savings }}", "unit_of_measurement": site.tariff.currency, "device_class": "monetary" })));
        sensors.push((
            "tariff_band",
            "Tariff band".into(),
            format!("{p}/{}/tariff", site.id),
            json!({ "value_template": "{{ value_json.band }}" }),
        ));
        for (key, name, state_topic, mut extra) in sensors {
            let object = format!("{}_{}", site.id, key).replace(['.', '-'], "_");
            // Prefixed: discovery topics are shared with every other integration.
            let topic = format!("{ha}/sensor/bessmon_{object}/config");
            let obj = extra.as_object_mut().expect("built as an object");
            obj.insert("name".into(), json!(name));
            obj.insert("unique_id".into(), json!(format!("bessmon_{object}")));
            obj.insert("state_topic".into(), json!(state_topic));
            obj.insert("availability_topic".into(), json!(s.status_topic()));
            obj.insert("device".into(), device.clone());
            topics.insert(topic.clone());
            discovery.push((topic, extra.to_string()));
        }
    }
    (topics, discovery)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::lab_config;

    #[test]
    fn each_site_gets_its_retained_topics_and_a_labelled_net_savings_sensor() {
        let v = lab_config(
            "[mqtt]\ntopic_prefix = \"bess\"\nhomeassistant = { enabled = true }",
            "",
        );
        let (topics, discovery) = retained_topics(v.mqtt.as_ref().unwrap(), &v.sites);
        for t in [
            "bess/lab/savings",
            "bess/lab/tariff",
            "bess/lab/pcs/state",
            "bess/lab/pcs/availability",
        ] {
            assert!(topics.contains(t), "{t} in {topics:?}");
        }
        let (topic, payload) = discovery
            .iter()
            .find(|(t, _)| t.ends_with("savings_today/config"))
            .expect("a savings sensor");
        assert!(topics.contains(topic), "discovery topics are retained too");
        let p: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(p["name"], "Net savings today");
        assert_eq!(p["value_template"], "{{ value_json.today.net_savings }}");
        assert_eq!(p["device_class"], "monetary");
        assert_eq!(
            p["unique_id"], "bessmon_lab_savings_today",
            "no instance name: a site moved between shards keeps its entities"
        );
    }
}
