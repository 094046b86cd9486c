//! Getting data out: each sink's spool queue (entries, bytes, the oldest's
//! age on the daemon's clock, drops) and each sink's deliveries, failures,
//! connection and write times.
use std::sync::atomic::Ordering::Relaxed;

use super::super::Shared;
use super::text::Text;
use crate::publish::influx::Misconfig;

pub fn write(t: &mut Text, shared: &Shared) {
    t.family(
        "bessmon_ledger_commit_failures_total",
        "counter",
        "Ledger commits that failed; the books stay in memory and the next commit retries.",
    );
    t.sample(
        "bessmon_ledger_commit_failures_total",
        &[],
        shared.health.ledger_commit_failures.load(Relaxed),
    );
    t.family(
        "bessmon_spool_write_failures_total",
        "counter",
        "Spool writes that failed; the messages wait in memory (bounded) and are retried.",
    );
    t.sample(
        "bessmon_spool_write_failures_total",
        &[],
        shared.health.spool_write_failures.load(Relaxed),
    );
    if let Some(spool) = &shared.spool {
        // The daemon's clock, not the wall: under `demo --speed` records are
        // stamped in simulated time.
        let now = shared.clock.now().as_millisecond();
        t.family(
            "bessmon_spool_entries",
            "gauge",
            "Messages waiting in a sink's spool queue.",
        );
        t.family(
            "bessmon_spool_bytes",
            "gauge",
            "Bytes waiting in a sink's spool queue.",
        );
        t.family(
            "bessmon_spool_oldest_age_seconds",
            "gauge",
            "Age of the oldest waiting message.",
        );
        t.family(
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
            let l = [("sink", *sink)];
            t.sample("bessmon_spool_entries", &l, st.count);
            t.sample("bessmon_spool_bytes", &l, st.bytes);
            t.sample("bessmon_spool_oldest_age_seconds", &l, age);
            t.sample("bessmon_spool_dropped_total", &l, st.dropped);
        }
    }
    let (mqtt, influx) = (shared.mqtt.as_deref(), shared.influx.as_deref());
    if mqtt.is_some() || influx.is_some() {
        t.family(
            "bessmon_sink_written_total",
            "counter",
            "What a sink has delivered: lines (InfluxDB), acknowledged messages (MQTT).",
        );
        if let Some(m) = mqtt {
            t.sample(
                "bessmon_sink_written_total",
                &[("sink", "mqtt")],
                m.delivered.load(Relaxed),
            );
        }
        if let Some(i) = influx {
            t.sample(
                "bessmon_sink_written_total",
                &[("sink", "influxdb")],
                i.written_lines.load(Relaxed),
            );
        }
        t.family(
            "bessmon_sink_failures_total",
            "counter",
            "MQTT: failed connection attempts and lost connections. InfluxDB: failed writes (retried), writes refused for the sink's setup (unauthorized, forbidden, not_found, client_error; retried, nothing dropped) and records rejected as bad data (dead_lettered).",
        );
        if let Some(m) = mqtt {
            for (kind, c) in [
                ("connect", &m.connect_failures),
                ("connection_lost", &m.connections_lost),
            ] {
                t.sample(
                    "bessmon_sink_failures_total",
                    &[("sink", "mqtt"), ("kind", kind)],
                    c.load(Relaxed),
                );
            }
        }
        if let Some(i) = influx {
            let setup = Misconfig::ALL
                .iter()
                .zip(&i.setup_failures)
                .map(|(k, c)| (k.label(), c));
            for (kind, c) in [
                ("retried", &i.failed_requests),
                ("dead_lettered", &i.dead_lettered_batches),
            ]
            .into_iter()
            .chain(setup)
            {
                t.sample(
                    "bessmon_sink_failures_total",
                    &[("sink", "influxdb"), ("kind", kind)],
                    c.load(Relaxed),
                );
            }
        }
    }
    if let Some(i) = influx {
        t.family(
            "bessmon_sink_failing",
            "gauge",
            "1 while the server refuses every write for the sink's setup (a token, a bucket, a URL).",
        );
        t.sample(
            "bessmon_sink_failing",
            &[("sink", "influxdb")],
            i.failing().is_some() as u8,
        );
        t.family(
            "bessmon_dead_letter_files_removed_total",
            "counter",
            "Dead-letter files removed to stay within influxdb.dead_letter_max_bytes.",
        );
        t.sample(
            "bessmon_dead_letter_files_removed_total",
            &[("sink", "influxdb")],
            i.dead_letters_removed.load(Relaxed),
        );
    }
    if let Some(m) = mqtt {
        t.family(
            "bessmon_sink_connected",
            "gauge",
            "1 while the sink holds a connection (MQTT).",
        );
        t.sample(
            "bessmon_sink_connected",
            &[("sink", "mqtt")],
            m.connected.load(Relaxed) as u8,
        );
    }
    if let Some(i) = influx {
        t.family(
            "bessmon_sink_write_seconds",
            "summary",
            "Time of sink writes.",
        );
        let l = [("sink", "influxdb")];
        t.sample(
            "bessmon_sink_write_seconds_sum",
            &l,
            i.write_nanos.load(Relaxed) as f64 / 1e9,
        );
        t.sample(
            "bessmon_sink_write_seconds_count",
            &l,
            i.writes.load(Relaxed),
        );
    }
}
