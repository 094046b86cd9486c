//! Events as the contract's topics and payloads.
use serde_json::{json, Value};

use super::event::Event;
use crate::account::report::Report;
use crate::spool::Record;
use crate::timefmt::rfc3339;

fn summary(r: &Report) -> Value {
    let t = &r.total;
    json!({
        "charge_kwh": t.charge_kwh,
        "discharge_kwh": t.discharge_kwh,
        "charge_cost": t.charge_cost,
        "discharge_value": t.discharge_value,
        "savings": t.savings,
        "aux_kwh": t.aux_kwh,
        "aux_cost": t.aux_cost,
        "net_savings": r.net_savings,
        "savings_range": r.savings_range,
        "net_savings_range": r.net_savings_range,
        "unattributed": r.unattributed,
        "quarantined_kwh": r.quarantined_kwh,
        "held_back": r.held_back,
        "equivalent_cycles": r.equivalent_cycles,
        "round_trip_efficiency": r.round_trip_efficiency,
        "overall_efficiency": r.overall_efficiency,
        "demand_savings": r.demand_savings,
        "demand": r.demand,
        "bands": r.bands,
        "optimum_savings": r.optimum_savings,
        "schedule_efficiency": r.schedule_efficiency,
        "warnings": r.warnings,
    })
}

/// The topic and payload of an event, or None for events MQTT does not carry.
pub fn encode(prefix: &str, e: &Event) -> Option<Record> {
    let at_ms = e.at().as_millisecond();
    let (key, payload) = match e {
        Event::DeviceState { site, device, at, seq, values, invalid } => {
            let values: serde_json::Map<String, Value> = values.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            (
                format!("{prefix}/{site}/{device}/state"),
                json!({ "ts": rfc3339(*at), "seq": seq, "values": values, "invalid": invalid.iter().map(|s| s.to_string()).collect::<Vec<_>>() }).to_string(),
            )
        }
        Event::Availability { site, device, online, .. } => {
            (format!("{prefix}/{site}/{device}/availability"), if *online { "online" } else { "offline" }.to_string())
        }
        Event::Tariff { site, band, price, currency, until, .. } => (
            format!("{prefix}/{site}/tariff"),
            json!({ "band": band, "price": price, "currency": currency, "until": rfc3339(*until) }).to_string(),
        ),
        Event::Savings { site, currency, today, month, lifetime, at } => (
            format!("{prefix}/{site}/savings"),
            json!({ "ts": rfc3339(*at), "currency": currency, "today": summary(today), "month": summary(month), "lifetime": summary(lifetime) })
                .to_string(),
        ),
        // The contract's topics carry these already (device states, tariff).
        Event::PollStatus { .. } | Event::SiteState { .. } => return None,
    };
    Some(Record {
        at_ms,
        key,
        payload: payload.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_payload_shape() {
        let e = Event::DeviceState {
            site: "s".into(),
            device: "pcs".into(),
            at: "2026-11-28T04:00:00.250Z".parse().unwrap(),
            seq: 7,
            values: vec![("active_power".into(), -187.9)],
            invalid: vec!["frequency".into()],
        };
        let r = encode("bessmon", &e).unwrap();
        assert_eq!(r.key, "bessmon/s/pcs/state");
        let v: Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(v["ts"], "2026-11-28T04:00:00.250Z");
        assert_eq!(v["values"]["active_power"], -187.9);
        assert_eq!(v["invalid"][0], "frequency");
        assert_eq!(v["seq"], 7);
        assert_eq!(r.at_ms, 1_795_838_400_250);
    }
}
