//! Events as InfluxDB line protocol: the contract's measurements, every number
//! a float and every flag a boolean, always, so a field never changes type.
use influxdb_line_protocol::LineProtocolBuilder;

use super::event::Event;
use crate::spool::Record;

/// The lines (newline-terminated) an event becomes, or None.
pub fn encode(e: &Event) -> Option<Record> {
    let at = e.at().as_millisecond();
    let lines: Vec<u8> = match e {
        Event::DeviceState {
            site,
            device,
            seq,
            values,
            ..
        } => {
            let mut fields = values.iter().filter(|(_, v)| v.is_finite());
            let (k, v) = fields.next()?;
            let mut b = LineProtocolBuilder::new()
                .measurement("bess_telemetry")
                .tag("site", site)
                .tag("device", device)
                .field(k, *v);
            for (k, v) in fields {
                b = b.field(k, *v);
            }
            // The poll number lets a reader see that no point is missing.
            b.field("seq", *seq as f64)
                .timestamp(at)
                .close_line()
                .build()
        }
        Event::PollStatus {
            site,
            device,
            online,
            poll_ms,
            errors,
            seq,
            ..
        } => LineProtocolBuilder::new()
            .measurement("bess_status")
            .tag("site", site)
            .tag("device", device)
            .field("online", *online)
            .field("poll_ms", *poll_ms)
            .field("errors", *errors as f64)
            .field("seq", *seq as f64)
            .timestamp(at)
            .close_line()
            .build(),
        Event::SiteState {
            site,
            soc,
            battery_power_kw,
            grid_power_kw,
            band,
            price,
            ..
        } => {
            // Dashboards read these by role, for any profile; a value not
            // measured at this site is left out, never written as 0.
            let mut b = LineProtocolBuilder::new()
                .measurement("bess_site")
                .tag("site", site)
                .tag("band", band)
                .field("price", *price);
            for (k, v) in [
                ("soc", soc),
                ("battery_power_kw", battery_power_kw),
                ("grid_power_kw", grid_power_kw),
            ] {
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    b = b.field(k, v);
                }
            }
            b.timestamp(at).close_line().build()
        }
        Event::Savings { site, today, .. } => {
            let mut out = LineProtocolBuilder::new();
            let rows = today
                .bands
                .iter()
                .map(|(b, t)| (b.as_str(), t, t.savings - t.aux_cost))
                .chain(std::iter::once(("total", &today.total, today.net_savings)));
            for (band, t, net) in rows {
                let mut line = out
                    .measurement("bess_savings")
                    .tag("site", site)
                    .tag("band", band)
                    .field("charge_kwh", t.charge_kwh)
                    .field("discharge_kwh", t.discharge_kwh)
                    .field("charge_cost", t.charge_cost)
                    .field("discharge_value", t.discharge_value)
                    .field("savings", t.savings)
                    .field("aux_cost", t.aux_cost)
                    .field("net_savings", net);
                // The day's optimum belongs to no band: on the totals' row.
                if band == "total" {
                    line = line.field("optimum_savings", today.optimum_savings);
                    if let Some(e) = today.schedule_efficiency.filter(|e| e.is_finite()) {
                        line = line.field("schedule_efficiency", e);
                    }
                }
                out = line.timestamp(at).close_line();
            }
            out.build()
        }
        Event::Availability { .. } | Event::Tariff { .. } => return None,
    };
    Some(Record {
        at_ms: at,
        key: String::new(),
        payload: lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_field_types_and_escape_tags() {
        let at: jiff::Timestamp = "2026-11-28T04:00:00.250Z".parse().unwrap();
        let e = Event::DeviceState {
            site: "a site".into(),
            device: "pcs".into(),
            at,
            seq: 3,
            values: vec![("p".into(), 1.0), ("q".into(), f64::NAN)],
            invalid: vec![],
        };
        let line = String::from_utf8(encode(&e).unwrap().payload).unwrap();
        assert_eq!(
            line,
            "bess_telemetry,site=a\\ site,device=pcs p=1,seq=3 1795838400250\n"
        );
        let e = Event::PollStatus {
            site: "s".into(),
            device: "d".into(),
            at,
            online: false,
            poll_ms: 12.5,
            errors: 2,
            seq: 9,
        };
        let line = String::from_utf8(encode(&e).unwrap().payload).unwrap();
        assert_eq!(
            line,
            "bess_status,site=s,device=d online=false,poll_ms=12.5,errors=2,seq=9 1795838400250\n"
        );
    }

    #[test]
    fn the_site_state_is_written_by_role_and_leaves_out_what_is_not_measured() {
        let at: jiff::Timestamp = "2026-11-28T04:00:00.250Z".parse().unwrap();
        let e = Event::SiteState {
            site: "lab".into(),
            at,
            soc: Some(63.5),
            battery_power_kw: Some(-250.0),
            grid_power_kw: None,
            band: "valley".into(),
            price: 0.379188,
        };
        let r = encode(&e).unwrap();
        assert_eq!(
            String::from_utf8(r.payload).unwrap(),
            format!(
                "bess_site,site=lab,band=valley price=0.379188,soc=63.5,battery_power_kw=-250 {}\n",
                at.as_millisecond()
            )
        );
    }
}
