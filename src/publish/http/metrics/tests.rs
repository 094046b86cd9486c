use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};

use super::super::live::{DeviceLive, DeviceMetrics, SiteLive};
use super::*;
use crate::clock::ManualClock;
use crate::publish::influx::InfluxStats;
use crate::publish::mqtt::MqttStats;
use crate::spool::{Limits, Record, Spool};

fn shared(spool: Option<Arc<Spool>>, at: jiff::Timestamp) -> Shared {
    let (asks, _rx) = tokio::sync::mpsc::channel(1);
    let mqtt = MqttStats::default();
    mqtt.delivered.store(41, Relaxed);
    mqtt.connected.store(true, Relaxed);
    mqtt.connections_lost.store(2, Relaxed);
    let influx = InfluxStats::default();
    influx.written_lines.store(7, Relaxed);
    influx.writes.store(3, Relaxed);
    influx.write_nanos.store(1_500_000_000, Relaxed);
    Shared {
        live: Arc::new(RwLock::new(Live::default())),
        token: None,
        asks,
        spool,
        sinks: vec!["mqtt", "influxdb"],
        influx: Some(Arc::new(influx)),
        mqtt: Some(Arc::new(mqtt)),
        clock: Arc::new(ManualClock::new(at)),
        health: Arc::default(),
        metrics_public: false,
    }
}

fn empty_day() -> crate::account::report::Report {
    let tariff = crate::account::tariff::TariffCatalog::new(&[])
        .load("cn-chongqing-ci-2025-02")
        .unwrap()
        .unwrap();
    crate::account::report::build(
        "lab",
        crate::account::report::Period::Lifetime,
        &tariff,
        &crate::account::optimum::Terms::new(2000.0, 1000.0),
        &Default::default(),
        &Default::default(),
    )
}

fn populated() -> Live {
    let mut live = Live {
        ready: true,
        ..Live::default()
    };
    let mut m = DeviceMetrics {
        polls: 10,
        requests: 30,
        missed: 1,
        errors: [1, 0, 2, 0],
        duration_sum: 0.125,
        ..DeviceMetrics::default()
    };
    m.buckets[2] = 4;
    m.last_success_ms = Some(1_764_547_200_500);
    live.devices.insert(("lab".into(), "pcs".into()), m.clone());
    live.devices.insert(("lab \"2\"".into(), "meter".into()), m);
    let mut site = SiteLive {
        id: "lab".into(),
        currency: "CNY".into(),
        today: Some(empty_day()),
        ..SiteLive::default()
    };
    site.devices.insert(
        "pcs".into(),
        DeviceLive {
            online: true,
            ..DeviceLive::default()
        },
    );
    live.sites.insert("lab".into(), site);
    live.anomalies
        .insert("lab".into(), [1, 2, 3, 4, 5, 6, 7, 8]);
    live
}

fn spool_with_one_record(dir: &std::path::Path, at: jiff::Timestamp) -> Arc<Spool> {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_age: std::time::Duration::from_secs(86_400),
    };
    let spool = Arc::new(Spool::open(dir, limits).unwrap());
    let record = Record {
        at_ms: at.as_millisecond(),
        key: "k".into(),
        payload: b"p".to_vec(),
    };
    spool.append(&[("mqtt", record)]).unwrap();
    spool
}

#[test]
fn the_spool_age_is_measured_on_the_daemons_clock() {
    let dir = tempfile::tempdir().unwrap();
    // A simulated day far from the wall clock, as `demo --speed` runs.
    let t0: jiff::Timestamp = "2025-03-10T04:00:00Z".parse().unwrap();
    let spool = spool_with_one_record(dir.path(), t0);
    let text = render(
        &Live::default(),
        &shared(Some(spool), t0 + jiff::SignedDuration::from_secs(30)),
    );
    assert!(
        text.contains("bessmon_spool_oldest_age_seconds{sink=\"mqtt\"} 30\n"),
        "{text}"
    );
}

#[test]
fn every_family_is_declared_before_its_samples_and_labels_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let t0: jiff::Timestamp = "2025-03-10T04:00:00Z".parse().unwrap();
    let s = shared(
        Some(spool_with_one_record(dir.path(), t0)),
        t0 + jiff::SignedDuration::from_secs(5),
    );
    let text = render(&populated(), &s);
    let mut declared = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            declared.insert(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains(*f)))
            .unwrap_or(name);
        assert!(declared.contains(family), "{line} before its TYPE");
    }
    assert!(text.contains("site=\"lab \\\"2\\\"\""), "escaped: {text}");
    assert!(text.contains(&format!(
        "bessmon_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    )));
    for line in [
        "bessmon_poll_duration_seconds_bucket{site=\"lab\",device=\"pcs\",le=\"0.025\"} 4",
        "bessmon_poll_duration_seconds_bucket{site=\"lab\",device=\"pcs\",le=\"+Inf\"} 10",
        "bessmon_counter_anomalies_total{site=\"lab\",kind=\"counter_gap\"} 8",
        "bessmon_sink_failures_total{sink=\"mqtt\",kind=\"connection_lost\"} 2",
        "bessmon_sink_write_seconds_sum{sink=\"influxdb\"} 1.5",
        "bessmon_spool_entries{sink=\"mqtt\"} 1",
        "bessmon_device_online{site=\"lab\",device=\"pcs\"} 1",
        "bessmon_device_last_success_timestamp_seconds{site=\"lab\",device=\"pcs\"} 1764547200.5",
        "bessmon_ledger_commit_failures_total 0",
        "bessmon_sink_failing{sink=\"influxdb\"} 0",
        "bessmon_dead_letter_files_removed_total{sink=\"influxdb\"} 0",
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line} in {text}");
    }
}
