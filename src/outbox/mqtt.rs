//! Events as the contract's topics and payloads.
use serde_json::{json, Value};

use super::event::Event;
use crate::account::report::Report;
use crate::spool::Record;
use std::sync::Arc;

use crate::timefmt::{rfc3339, write_rfc3339};

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

/// A device's state, written straight into its text: one of these per device
/// poll, where building a `serde_json::Value` tree first cost an allocation
/// per value. Values keep the profile's point order.
fn state_payload(
    at: jiff::Timestamp,
    seq: u64,
    values: &[(Arc<str>, f64)],
    invalid: &[Arc<str>],
) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(48 + 24 * values.len());
    out.push_str("{\"ts\":\"");
    write_rfc3339(&mut out, at);
    let _ = write!(out, "\",\"seq\":{seq},\"values\":{{");
    let mut num = ryu::Buffer::new();
    for (i, (name, v)) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, name);
        out.push(':');
        // JSON has no NaN or infinity; serde_json says null for them too.
        out.push_str(if v.is_finite() {
            num.format_finite(*v)
        } else {
            "null"
        });
    }
    out.push_str("},\"invalid\":[");
    for (i, name) in invalid.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, name);
    }
    out.push_str("]}");
    out
}

/// A JSON string; point names are snake_case and need no escaping, but a
/// name that would is escaped by serde_json rather than trusted.
fn push_json_str(out: &mut String, s: &str) {
    if s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x80)
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::from(s).to_string());
    }
}

/// The topic and payload of an event, or None for events MQTT does not carry.
pub fn encode(prefix: &str, e: &Event) -> Option<Record> {
    let at_ms = e.at().as_millisecond();
    let (key, payload) = match e {
        Event::DeviceState { site, device, at, seq, values, invalid } => {
            (format!("{prefix}/{site}/{device}/state"), state_payload(*at, *seq, values, invalid))
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

    #[test]
    fn state_payload_is_the_json_serde_writes() {
        let values: Vec<(Arc<str>, f64)> = vec![
            ("a".into(), 1.0),
            ("b".into(), -0.1),
            ("c".into(), 1e21),
            ("d".into(), 2401.7507),
            ("e".into(), f64::NAN),
            ("odd \"name\"".into(), 5e-324),
        ];
        let invalid: Vec<Arc<str>> = vec!["b".into(), "odd \"name\"".into()];
        let at = "2026-11-28T04:00:00.250Z".parse().unwrap();
        let text = state_payload(at, 3, &values, &invalid);
        let ours: Value = serde_json::from_str(&text).unwrap();
        let theirs = json!({
            "ts": "2026-11-28T04:00:00.250Z", "seq": 3,
            "values": values.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "invalid": ["b", "odd \"name\""],
        });
        assert_eq!(ours, theirs, "{text}");
        assert!(
            text.contains("\"d\":2401.7507,") && text.contains("\"e\":null"),
            "{text}"
        );
    }
}
