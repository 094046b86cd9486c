//! The retained topics a configuration publishes, and Home Assistant's
//! discovery configs for them.
use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::account::site::SiteSpec;
use crate::config::MqttSettings;
use crate::role::{Role, Sign};

/// One Home Assistant sensor: key, name, state topic, the device whose
/// availability it follows (none for the site's own figures), the rest of
/// its config.
type Sensor<'a> = (&'a str, &'a str, String, Option<Arc<str>>, Value);

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
        // The device and point that measure a role, with the point's unit and sign.
        let role_source = |role: Role| {
            site.devices.iter().find_map(|d| {
                d.profile
                    .point_with_role(role)
                    .map(|(_, pt)| (d.id.clone(), pt.clone()))
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
        let savings_topic = format!("{p}/{}/savings", site.id);
        let tariff_topic = format!("{p}/{}/tariff", site.id);
        let mut sensors: Vec<Sensor> = Vec::new();
        let mut measured = |key, name, role: Role, fields: Value| {
            let Some((dev, pt)) = role_source(role) else {
                return;
            };
            let mut value = format!("value_json['values']['{}']", pt.name);
            if role == Role::BatteryPower && pt.sign == Sign::ChargePositive {
                // Home Assistant shows bessmon's convention: discharge positive.
                value = format!("-({value})");
            }
            let mut fields = fields;
            let obj = fields.as_object_mut().expect("built as an object");
            obj.insert("value_template".into(), json!(format!("{{{{ {value} }}}}")));
            if let (None, Some(unit)) = (obj.get("unit_of_measurement"), &pt.unit) {
                obj.insert("unit_of_measurement".into(), json!(unit));
            }
            sensors.push((
                key,
                name,
                format!("{p}/{}/{dev}/state", site.id),
                Some(dev),
                fields,
            ));
        };
        measured(
            "soc",
            "State of charge",
            Role::Soc,
            json!({ "unit_of_measurement": "%", "device_class": "battery", "state_class": "measurement" }),
        );
        measured(
            "battery_power",
            "Battery power",
            Role::BatteryPower,
            json!({ "device_class": "power", "state_class": "measurement" }),
        );
        measured(
            "grid_power",
            "Grid power",
            Role::GridPower,
            json!({ "device_class": "power", "state_class": "measurement" }),
        );
        // Meter counters, as Home Assistant's Energy dashboard takes them.
        for (key, name, role) in [
            (
                "grid_import_energy",
                "Grid import energy",
                Role::GridImportEnergyTotal,
            ),
            (
                "grid_export_energy",
                "Grid export energy",
                Role::GridExportEnergyTotal,
            ),
        ] {
            let energy_unit = role_source(role)
                .and_then(|(_, pt)| pt.unit)
                .is_some_and(|u| matches!(u.as_str(), "Wh" | "kWh" | "MWh"));
            if energy_unit {
                measured(
                    key,
                    name,
                    role,
                    json!({ "device_class": "energy", "state_class": "total_increasing" }),
                );
            }
        }
        // The ledger's lifetime totals: what the battery took and gave, in kWh.
        for (key, name, field) in [
            (
                "battery_charge_energy",
                "Battery charge energy",
                "charge_kwh",
            ),
            (
                "battery_discharge_energy",
                "Battery discharge energy",
                "discharge_kwh",
            ),
        ] {
            sensors.push((key, name, savings_topic.clone(), None, json!({
                "value_template": format!("{{{{ value_json.lifetime.{field} }}}}"),
                "unit_of_measurement": "kWh", "device_class": "energy", "state_class": "total_increasing" })));
        }
        // Net of what the auxiliaries cost: the figure an owner is paid on.
        for (key, name, period) in [
            ("savings_today", "Net savings today", "today"),
            ("savings_month", "Net savings this month", "month"),
        ] {
            sensors.push((
                key,
                name,
                savings_topic.clone(),
                None,
                json!({
                "value_template": format!("{{{{ value_json.{period}.net_savings }}}}"),
                "unit_of_measurement": site.tariff.currency, "device_class": "monetary" }),
            ));
        }
        sensors.push((
            "tariff_band",
            "Tariff band",
            tariff_topic.clone(),
            None,
            json!({ "value_template": "{{ value_json.band }}" }),
        ));
        sensors.push(("tariff_price", "Tariff price", tariff_topic, None, json!({
            "value_template": "{{ value_json.price }}",
            "unit_of_measurement": format!("{}/kWh", site.tariff.currency), "state_class": "measurement" })));
        for (key, name, state_topic, from, mut extra) in sensors {
            let object = format!("{}_{}", site.id, key).replace(['.', '-'], "_");
            // Prefixed: discovery topics are shared with every other integration.
            let topic = format!("{ha}/sensor/bessmon_{object}/config");
            let obj = extra.as_object_mut().expect("built as an object");
            obj.insert("name".into(), json!(name));
            obj.insert("unique_id".into(), json!(format!("bessmon_{object}")));
            obj.insert("state_topic".into(), json!(state_topic));
            // Available while the instance runs and, for a measured value,
            // while the device it comes from answers.
            let mut availability = vec![json!({ "topic": s.status_topic() })];
            if let Some(dev) = from {
                availability
                    .push(json!({ "topic": format!("{p}/{}/{dev}/availability", site.id) }));
            }
            obj.insert("availability".into(), json!(availability));
            obj.insert("availability_mode".into(), json!("all"));
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
        let config = |key: &str| -> Value {
            let (_, payload) = discovery
                .iter()
                .find(|(t, _)| t == &format!("homeassistant/sensor/bessmon_lab_{key}/config"))
                .unwrap_or_else(|| panic!("a {key} sensor"));
            serde_json::from_str(payload).unwrap()
        };
        // The Energy dashboard's inputs.
        let charged = config("battery_charge_energy");
        assert_eq!(charged["device_class"], "energy");
        assert_eq!(charged["state_class"], "total_increasing");
        assert_eq!(
            charged["value_template"],
            "{{ value_json.lifetime.charge_kwh }}"
        );
        assert_eq!(
            config("savings_month")["value_template"],
            "{{ value_json.month.net_savings }}"
        );
        assert_eq!(config("tariff_price")["unit_of_measurement"], "CNY/kWh");
        // A measured value is unavailable when its device is.
        let power = config("battery_power");
        assert_eq!(
            power["availability"][1]["topic"],
            "bess/lab/pcs/availability"
        );
        assert_eq!(power["availability_mode"], "all");
        assert_eq!(power["unit_of_measurement"], "kW");
    }
}
