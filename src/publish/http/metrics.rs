//! `/metrics` in the Prometheus text format.
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::live::{Live, BUCKETS, KINDS};
use super::Shared;

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(live: &Live, shared: &Shared) -> String {
    let mut o = String::with_capacity(16 * 1024);
    let family = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(&mut o, "bessmon_up", "gauge", "1 while the daemon runs.");
    let _ = writeln!(o, "bessmon_up 1");
    family(
        &mut o,
        "bessmon_ready",
        "gauge",
        "1 once every device has been polled (what /readyz answers).",
    );
    let _ = writeln!(o, "bessmon_ready {}", live.ready as u8);

    family(
        &mut o,
        "bessmon_poll_duration_seconds",
        "histogram",
        "Time to poll a device, all its requests.",
    );
    for ((site, dev), m) in &live.devices {
        let l = format!("site=\"{}\",device=\"{}\"", esc(site), esc(dev));
        for (b, c) in BUCKETS.iter().zip(m.buckets.iter()) {
            let _ = writeln!(
                o,
                "bessmon_poll_duration_seconds_bucket{{{l},le=\"{b}\"}} {c}"
            );
        }
        let _ = writeln!(
            o,
            "bessmon_poll_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}",
            m.polls
        );
        let _ = writeln!(
            o,
            "bessmon_poll_duration_seconds_sum{{{l}}} {}",
            m.duration_sum
        );
        let _ = writeln!(o, "bessmon_poll_duration_seconds_count{{{l}}} {}", m.polls);
    }
    family(
        &mut o,
        "bessmon_poll_errors_total",
        "counter",
        "Failed requests by kind: timeout, exception, transport, decode.",
    );
    for ((site, dev), m) in &live.devices {
        for (k, c) in KINDS.iter().zip(m.errors.iter()) {
            let _ = writeln!(
                o,
                "bessmon_poll_errors_total{{site=\"{}\",device=\"{}\",kind=\"{k}\"}} {c}",
                esc(site),
                esc(dev)
            );
        }
    }
    for (name, help, f) in [
        (
            "bessmon_polls_total",
            "Polls made.",
            (|m: &super::live::DeviceMetrics| m.polls) as fn(&super::live::DeviceMetrics) -> u64,
        ),
        ("bessmon_requests_total", "Modbus requests sent.", |m| {
            m.requests
        }),
        (
            "bessmon_missed_polls_total",
            "Scheduled polls skipped because a poll overran its interval.",
            |m| m.missed,
        ),
    ] {
        family(&mut o, name, "counter", help);
        for ((site, dev), m) in &live.devices {
            let _ = writeln!(
                o,
                "{name}{{site=\"{}\",device=\"{}\"}} {}",
                esc(site),
                esc(dev),
                f(m)
            );
        }
    }
    family(
        &mut o,
        "bessmon_device_online",
        "gauge",
        "1 when the device's last poll was answered.",
    );
    for s in live.sites.values() {
        for (dev, d) in &s.devices {
            let _ = writeln!(
                o,
                "bessmon_device_online{{site=\"{}\",device=\"{}\"}} {}",
                esc(&s.id),
                esc(dev),
                d.online as u8
            );
        }
    }
    family(&mut o, "bessmon_counter_anomalies_total", "counter", "Energy counter events: quarantined jumps, resets, rollovers, transients, integration gaps, implausible power readings, readings held back over five minutes, counter readings further apart than the attribution gap.");
    for (site, a) in &live.anomalies {
        for (k, c) in [
            "quarantined",
            "reset",
            "rollover",
            "transient",
            "gap",
            "implausible",
            "held_back",
            "counter_gap",
        ]
        .iter()
        .zip(a.iter())
        {
            let _ = writeln!(
                o,
                "bessmon_counter_anomalies_total{{site=\"{}\",kind=\"{k}\"}} {c}",
                esc(site)
            );
        }
    }
    type Figure = fn(&crate::account::report::Report) -> f64;
    let savings: [(&str, &str, Figure); 2] = [
        (
            "bessmon_savings_today",
            "Today's arbitrage savings so far (gross), in the tariff's currency.",
            |r| r.total.savings,
        ),
        (
            "bessmon_net_savings_today",
            "Today's arbitrage savings less the auxiliaries' energy cost, in the tariff's currency.",
            |r| r.net_savings,
        ),
    ];
    for (name, help, figure) in savings {
        family(&mut o, name, "gauge", help);
        for s in live.sites.values() {
            if let Some(t) = &s.today {
                let _ = writeln!(
                    o,
                    "{name}{{site=\"{}\",currency=\"{}\"}} {}",
                    esc(&s.id),
                    esc(&s.currency),
                    figure(t)
                );
            }
        }
    }
    if let Some(spool) = &shared.spool {
        let now = shared.clock.now().as_millisecond();
        family(
            &mut o,
            "bessmon_spool_entries",
            "gauge",
            "Messages waiting in a sink's spool queue.",
        );
        family(
            &mut o,
            "bessmon_spool_bytes",
            "gauge",
            "Bytes waiting in a sink's spool queue.",
        );
        family(
            &mut o,
            "bessmon_spool_oldest_age_seconds",
            "gauge",
            "Age of the oldest waiting message.",
        );
        family(
            &mut o,
            "bessmon_spool_dropped_total",
            "counter",
            "Messages dropped to stay within spool.max_bytes / max_age.",
        );
        for sink in &shared.sinks {
            let st = spool.stats(sink);
            let age = st
                .oldest_ms
                .map(|t| (now - t).max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            let _ = writeln!(o, "bessmon_spool_entries{{sink=\"{sink}\"}} {}", st.count);
            let _ = writeln!(o, "bessmon_spool_bytes{{sink=\"{sink}\"}} {}", st.bytes);
            let _ = writeln!(
                o,
                "bessmon_spool_oldest_age_seconds{{sink=\"{sink}\"}} {age}"
            );
            let _ = writeln!(
                o,
                "bessmon_spool_dropped_total{{sink=\"{sink}\"}} {}",
                st.dropped
            );
        }
    }
    let (mqtt, influx) = (shared.mqtt.as_deref(), shared.influx.as_deref());
    if mqtt.is_some() || influx.is_some() {
        family(
            &mut o,
            "bessmon_sink_written_total",
            "counter",
            "What a sink has delivered: lines (InfluxDB), acknowledged messages (MQTT).",
        );
        if let Some(m) = mqtt {
            let _ = writeln!(
                o,
                "bessmon_sink_written_total{{sink=\"mqtt\"}} {}",
                m.delivered.load(Relaxed)
            );
        }
        if let Some(i) = influx {
            let _ = writeln!(
                o,
                "bessmon_sink_written_total{{sink=\"influxdb\"}} {}",
                i.written_lines.load(Relaxed)
            );
        }
        family(
            &mut o,
            "bessmon_sink_failures_total",
            "counter",
            "MQTT: failed connection attempts and lost connections. InfluxDB: failed writes (retried) and rejected batches (dead-lettered).",
        );
        if let Some(m) = mqtt {
            for (kind, c) in [
                ("connect", &m.connect_failures),
                ("connection_lost", &m.connections_lost),
            ] {
                let _ = writeln!(
                    o,
                    "bessmon_sink_failures_total{{sink=\"mqtt\",kind=\"{kind}\"}} {}",
                    c.load(Relaxed)
                );
            }
        }
        if let Some(i) = influx {
            for (kind, c) in [
                ("retried", &i.failed_requests),
                ("dead_lettered", &i.dead_lettered_batches),
            ] {
                let _ = writeln!(
                    o,
                    "bessmon_sink_failures_total{{sink=\"influxdb\",kind=\"{kind}\"}} {}",
                    c.load(Relaxed)
                );
            }
        }
    }
    if let Some(m) = mqtt {
        family(
            &mut o,
            "bessmon_sink_connected",
            "gauge",
            "1 while the sink holds a connection (MQTT).",
        );
        let _ = writeln!(
            o,
            "bessmon_sink_connected{{sink=\"mqtt\"}} {}",
            m.connected.load(Relaxed) as u8
        );
    }
    if let Some(i) = influx {
        family(
            &mut o,
            "bessmon_sink_write_seconds",
            "summary",
            "Time of sink writes.",
        );
        let _ = writeln!(
            o,
            "bessmon_sink_write_seconds_sum{{sink=\"influxdb\"}} {}",
            i.write_nanos.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(
            o,
            "bessmon_sink_write_seconds_count{{sink=\"influxdb\"}} {}",
            i.writes.load(Relaxed)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::spool::{Limits, Record, Spool};
    use std::sync::{Arc, RwLock};

    #[test]
    fn the_spool_age_is_measured_on_the_daemons_clock() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_bytes: 1 << 20,
            max_age: std::time::Duration::from_secs(86_400),
        };
        let spool = Arc::new(Spool::open(dir.path(), limits).unwrap());
        // A simulated day far from the wall clock, as `demo --speed` runs.
        let t0: jiff::Timestamp = "2025-03-10T04:00:00Z".parse().unwrap();
        let record = Record {
            at_ms: t0.as_millisecond(),
            key: "k".into(),
            payload: b"p".to_vec(),
        };
        spool.append(&[("mqtt", record)]).unwrap();
        let clock = Arc::new(ManualClock::new(t0 + jiff::SignedDuration::from_secs(30)));
        let (asks, _rx) = tokio::sync::mpsc::channel(1);
        let shared = Shared {
            live: Arc::new(RwLock::new(Live::default())),
            token: None,
            asks,
            spool: Some(spool),
            sinks: vec!["mqtt"],
            influx: None,
            mqtt: None,
            clock,
        };
        let text = render(&Live::default(), &shared);
        assert!(
            text.contains("bessmon_spool_oldest_age_seconds{sink=\"mqtt\"} 30\n"),
            "{text}"
        );
    }
}
