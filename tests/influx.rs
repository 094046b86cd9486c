//! InfluxDB publishing against real servers started by each test: Debian's
//! VictoriaMetrics through the v2 write API (behind a path prefix) and
//! InfluxDB 1.x through the v1 API, read back and compared with what the same
//! daemon published on MQTT for the same polls.
mod support;

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use support::*;

fn config(sim_port: u16, sections: &str) -> TestConfig {
    TestConfig::new(&format!(
        "{sections}\n{}",
        sized_site_toml("200ms", 2000.0, 1000.0, &sim_devices(sim_port, "1s"))
    ))
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// (device, ts ms) -> values, from the MQTT state messages received.
fn mqtt_states(got: &Received) -> HashMap<(String, i64), serde_json::Map<String, Value>> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|(t, p, _)| t.ends_with("/state") && !p.is_empty())
        .map(|(t, p, _)| {
            let v = json(p);
            let device = t.split('/').nth(2).unwrap().to_string();
            let ts = v["ts"]
                .as_str()
                .unwrap()
                .parse::<Timestamp>()
                .unwrap()
                .as_millisecond();
            ((device, ts), v["values"].as_object().unwrap().clone())
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    // VictoriaMetrics keeps 12 significant digits; f32 readings carry more.
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn victoriametrics_v2_api_behind_a_path_prefix_matches_mqtt() {
    let broker = Mosquitto::start();
    let mut vm = VictoriaMetrics::start();
    let sim = simulator(1);
    let cfg = config(
        sim.sim.addrs[0].port(),
        &format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[influxdb]\nurl = \"http://127.0.0.1:{}/influx\"\napi = \"v2\"\norg = \"ops\"\nbucket = \"bess\"\ntoken = \"secret-token\"\nflush_interval = \"200ms\"\n",
            broker.port, vm.port
        ),
    );
    let (got, _rt) = subscribe(broker.port, "t-vm", "bessmon/#", None);
    let mut daemon = Daemon::start(&cfg.path);
    wait_until(&got, "ten polls of every device", |g| {
        ["pcs", "bms", "meter"].iter().all(|d| {
            g.iter()
                .filter(|m| m.0 == format!("bessmon/lab/{d}/state"))
                .count()
                >= 10
        })
    });
    assert_eq!(daemon.terminate(), Some(0));
    let states = mqtt_states(&got);
    // VictoriaMetrics makes fresh points searchable within seconds; wait for the last poll.
    let newest = states.keys().map(|k| k.1).max().unwrap();
    let mut series = vm.export("bess_.*");
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !series
        .iter()
        .any(|(m, v)| m["__name__"] == "bess_telemetry_seq" && v.iter().any(|p| p.0 >= newest))
    {
        assert!(
            std::time::Instant::now() < end,
            "the last poll ({newest}) did not reach VictoriaMetrics within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
        series = vm.export("bess_.*");
    }
    let find = |name: &str, device: Option<&str>| {
        series
            .iter()
            .find(|(m, _)| {
                m["__name__"] == name
                    && m["site"] == "lab"
                    && device.is_none_or(|d| m["device"] == d)
            })
            .map(|(_, v)| v)
    };
    let mut compared = 0;
    for ((device, ts), values) in &states {
        for (point, v) in values {
            let samples = find(&format!("bess_telemetry_{point}"), Some(device))
                .unwrap_or_else(|| panic!("no series for {device}.{point}"));
            let at = samples
                .iter()
                .find(|(t, _)| t == ts)
                .unwrap_or_else(|| panic!("{device}.{point}: no point at {ts} in {samples:?}"));
            assert!(
                close(at.1, v.as_f64().unwrap()),
                "{device}.{point} at {ts}: {} in VM, {v} on MQTT",
                at.1
            );
            compared += 1;
        }
    }
    assert!(compared > 300, "compared {compared} values");
    for d in ["pcs", "bms", "meter"] {
        for f in ["online", "poll_ms", "errors"] {
            assert!(
                find(&format!("bess_status_{f}"), Some(d)).is_some(),
                "bess_status {f} of {d}"
            );
        }
    }
    let total = series
        .iter()
        .find(|(m, _)| m["__name__"] == "bess_savings_savings" && m["band"] == "total");
    assert!(total.is_some(), "the day's totals arrive as band=total");
    vm.stop();
}

#[test]
fn influxdb_1x_v1_api_queried_with_influxql() {
    let broker = Mosquitto::start();
    let influx = InfluxV1::start(false);
    influx.query("CREATE DATABASE bess", "", None);
    let sim = simulator(1);
    let cfg = config(
        sim.sim.addrs[0].port(),
        &format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[influxdb]\nurl = \"http://127.0.0.1:{}\"\napi = \"v1\"\ndatabase = \"bess\"\nflush_interval = \"200ms\"\n",
            broker.port, influx.port
        ),
    );
    let (got, _rt) = subscribe(broker.port, "t-v1", "bessmon/#", None);
    let mut daemon = Daemon::start(&cfg.path);
    wait_until(&got, "ten polls of the PCS", |g| {
        g.iter().filter(|m| m.0 == "bessmon/lab/pcs/state").count() >= 10
    });
    assert_eq!(daemon.terminate(), Some(0));
    let states = mqtt_states(&got);
    let r = influx.query(
        "SELECT * FROM bess_telemetry WHERE site = 'lab'",
        "bess",
        None,
    );
    let s = &r["results"][0]["series"][0];
    let cols: Vec<&str> = s["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let col = |name: &str| cols.iter().position(|c| *c == name).unwrap();
    let rows = s["values"].as_array().unwrap();
    let mut compared = 0;
    let mut matched = 0;
    for row in rows {
        let ts = row[col("time")].as_i64().unwrap();
        let device = row[col("device")].as_str().unwrap().to_string();
        let Some(values) = states.get(&(device.clone(), ts)) else {
            continue;
        };
        matched += 1;
        for (point, v) in values {
            assert_eq!(
                row[col(point)].as_f64(),
                v.as_f64(),
                "{device}.{point} at {ts}"
            );
            compared += 1;
        }
    }
    assert!(compared > 100, "compared {compared} values");
    // The daemon drained both sinks before exiting: every MQTT state is a row.
    assert_eq!(
        matched,
        states.len(),
        "{} of {} MQTT states found in InfluxDB",
        matched,
        states.len()
    );
    // Field types: numbers are floats, flags booleans.
    let keys = influx.query("SHOW FIELD KEYS FROM bess_status", "bess", None);
    let types: HashMap<String, String> = keys["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v[0].as_str().unwrap().to_string(),
                v[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(types["online"], "boolean");
    assert_eq!(types["poll_ms"], "float");
    assert_eq!(types["errors"], "float");
    let totals = influx.query(
        "SELECT savings FROM bess_savings WHERE band = 'total'",
        "bess",
        None,
    );
    assert!(totals["results"][0]["series"][0]["values"]
        .as_array()
        .is_some_and(|v| !v.is_empty()));
}

#[test]
fn a_database_outage_loses_nothing() {
    let mut vm = VictoriaMetrics::start();
    let sim = simulator(1);
    let cfg = config(
        sim.sim.addrs[0].port(),
        &format!("[influxdb]\nurl = \"http://127.0.0.1:{}\"\nbucket = \"bess\"\nflush_interval = \"200ms\"\nconnect_timeout = \"1s\"\n", vm.port),
    );
    let mut daemon = Daemon::start(&cfg.path);
    daemon.wait_logs(&["lab/pcs online"]);
    let site = &sim.sim.sites[0];
    wait_for_requests(site, 40, "polls written before the outage");
    vm.stop();
    // Some fifty polls (about five requests each) while the database is down.
    wait_for_requests(site, 240, "polls during the database outage");
    vm.resume();
    let resumed = Timestamp::now().as_millisecond();
    // Delivery is in order: a point polled after the restart means the backlog is in.
    let seq = |vm: &VictoriaMetrics| {
        vm.export("bess_telemetry_seq")
            .into_iter()
            .find(|(m, _)| m["device"] == "pcs")
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while !seq(&vm).iter().any(|(t, _)| *t > resumed + 1000) {
        assert!(
            std::time::Instant::now() < end,
            "no poll from after the outage reached VictoriaMetrics within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(daemon.terminate(), Some(0));
    let mut points = seq(&vm);
    points.sort_by_key(|p| p.0);
    // Same timestamp twice (at least once) must carry the same value.
    for w in points.windows(2) {
        if w[0].0 == w[1].0 {
            assert_eq!(
                w[0].1, w[1].1,
                "a point written twice with different values"
            );
        }
    }
    points.dedup();
    let polls: Vec<u64> = points.iter().map(|p| p.1 as u64).collect();
    for w in polls.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "polls {}..{} missing from the database",
            w[0] + 1,
            w[1]
        );
    }
    assert!(
        polls.len() > 40,
        "the polls before, during and after the outage: {}",
        polls.len()
    );
}

/// Points of `device` in InfluxDB 1.x's `bess` database before `before`.
fn points_before(influx: &InfluxV1, device: &str, before: Timestamp, auth: (&str, &str)) -> u64 {
    let r = influx.query(
        &format!(
            "SELECT count(seq) FROM bess_telemetry WHERE device = '{device}' AND time < '{before}'"
        ),
        "bess",
        Some(auth),
    );
    r["results"][0]["series"][0]["values"][0][1]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn a_bad_password_keeps_everything_spooled_until_a_reload_fixes_it() {
    let broker = Mosquitto::start();
    let influx = InfluxV1::start(true);
    influx.query(
        "CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES",
        "",
        None,
    );
    influx.query("CREATE DATABASE bess", "", Some(("admin", "right")));
    let sim = simulator(1);
    let sections = |password: &str| {
        format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[influxdb]\nurl = \"http://127.0.0.1:{}\"\napi = \"v1\"\ndatabase = \"bess\"\nusername = \"admin\"\npassword = \"{password}\"\nflush_interval = \"200ms\"\n",
            broker.port, influx.port
        )
    };
    let cfg = config(sim.sim.addrs[0].port(), &sections("wrong"));
    let (got, _rt) = subscribe(broker.port, "t-bad", "bessmon/lab/pcs/state", None);
    let mut daemon = Daemon::start(&cfg.path);
    let line = daemon.wait_log("nothing is written, the data stays spooled");
    assert!(
        line.contains("401") && line.contains("authorization failed") && line.contains("ERROR"),
        "{line}"
    );
    assert!(
        !line.contains("wrong"),
        "the password is never logged: {line}"
    );
    let port = daemon.http_port();
    let (code, body) = http("GET", port, "/readyz", "", None);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("InfluxDB sink is failing"), "{body}");
    let (_, status) = http("GET", port, "/api/v1/status", "", None);
    let status = json(&status);
    assert_eq!(status["sinks"]["influxdb"]["ok"], false, "{status}");
    assert_eq!(status["ready"], false, "{status}");
    assert!(
        daemon
            .metric("bessmon_sink_failures_total{sink=\"influxdb\",kind=\"unauthorized\"}")
            .unwrap()
            >= 1.0
    );
    // MQTT keeps flowing while InfluxDB refuses.
    let n = got.lock().unwrap().len();
    wait_until(&got, "MQTT after the InfluxDB error", |g| g.len() > n + 5);
    let fixed = Timestamp::now();
    // Every PCS poll before the fix, as MQTT received it.
    let polled = || {
        mqtt_states(&got)
            .keys()
            .filter(|(d, ts)| d == "pcs" && *ts < fixed.as_millisecond())
            .count() as u64
    };
    assert!(polled() > 5);
    let dead = cfg.dir.path().join("state/influxdb-dead-letter");
    assert!(
        std::fs::read_dir(&dead).map_or(true, |mut d| d.next().is_none()),
        "a bad password is no reason to dead-letter data"
    );
    assert_eq!(points_before(&influx, "pcs", fixed, ("admin", "right")), 0);

    // Fixed in the file and reloaded (SIGHUP): every poll of the refused
    // period arrives, and the daemon never stopped.
    cfg.rewrite(&format!(
        "{}\n{}",
        sections("right"),
        sized_site_toml(
            "200ms",
            2000.0,
            1000.0,
            &sim_devices(sim.sim.addrs[0].port(), "1s")
        )
    ));
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &daemon.proc.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let line = daemon.wait_log("reloaded");
    assert!(line.contains("InfluxDB settings changed"), "{line}");
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (have, want) = (
            points_before(&influx, "pcs", fixed, ("admin", "right")),
            polled(),
        );
        if have == want {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "waited 60 s for the {want} spooled PCS polls, InfluxDB has {have}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while http("GET", port, "/readyz", "", None).0 != 200 {
        assert!(
            std::time::Instant::now() < end,
            "not ready 30 s after the fix"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(daemon.terminate(), Some(0));
}

#[test]
fn bad_data_is_set_apart_record_by_record_and_the_rest_is_written() {
    let influx = InfluxV1::start(false);
    influx.query("CREATE DATABASE bess", "", None);
    // A string where bessmon writes a float, in a field only the PCS has:
    // every PCS line now conflicts, the BMS's and the meter's lines in the
    // same batches do not.
    let sim = simulator(1);
    let cfg = config(
        sim.sim.addrs[0].port(),
        &format!(
            "[influxdb]\nurl = \"http://127.0.0.1:{}\"\napi = \"v1\"\ndatabase = \"bess\"\nflush_interval = \"1s\"\ndead_letter_max_bytes = \"64KiB\"\n",
            influx.port
        ),
    );
    let write = http(
        "POST",
        influx.port,
        "/write?db=bess",
        &format!(
            "bess_telemetry,site=lab,device=pcs reactive_power=\"text\" {}\n",
            // In the shard bessmon writes to now: conflicts are per shard.
            Timestamp::now().as_nanosecond()
        ),
        None,
    );
    assert_eq!(write.0, 204, "{}", write.1);
    let mut daemon = Daemon::start(&cfg.path);
    daemon.wait_log("holds bad data");
    daemon.wait_log("influxdb rejected 1 lines as bad data");
    let end = std::time::Instant::now() + Duration::from_secs(60);
    let bms = loop {
        let r = influx.query(
            "SELECT count(seq) FROM bess_telemetry WHERE device = 'bms'",
            "bess",
            None,
        );
        let n = r["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap_or(0);
        if n >= 10 {
            break n;
        }
        assert!(
            std::time::Instant::now() < end,
            "waited 60 s for the BMS's lines"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(bms >= 10);
    assert_eq!(daemon.terminate(), Some(0));
    let dead = cfg.dir.path().join("state/influxdb-dead-letter");
    let mut size = 0;
    for f in std::fs::read_dir(&dead).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        size += text.len();
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(body.len(), 1, "one record per file: {text}");
        assert!(
            body[0].starts_with("bess_telemetry,site=lab,device=pcs "),
            "{text}"
        );
        assert!(text.contains("field type conflict"), "{text}");
    }
    assert!(
        size > 0 && size <= 64 * 1024 + 4096,
        "bounded: {size} bytes"
    );
}

#[test]
fn every_promql_query_of_the_shipped_dashboard_finds_series_in_victoriametrics() {
    let vm = VictoriaMetrics::start();
    // Charging, so today's savings have bands to show.
    let sim = charging_site();
    let cfg = config(
        sim.sim.addrs[0].port(),
        &format!(
            "[influxdb]\nurl = \"http://127.0.0.1:{}\"\napi = \"v2\"\nbucket = \"bess\"\nflush_interval = \"200ms\"\n",
            vm.port
        ),
    );
    let mut daemon = Daemon::start(&cfg.path);
    wait_for_requests(&sim.sim.sites[0], 20, "a few polls");
    assert_eq!(
        daemon.terminate(),
        Some(0),
        "stopped, so everything is written"
    );
    let dash: Value = json(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy/grafana/bessmon-prometheus.json"),
        )
        .unwrap(),
    );
    http("GET", vm.port, "/internal/force_flush", "", None);
    let mut checked = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap().replace("$site", ".*");
            // Rows VictoriaMetrics took become searchable within a second or so.
            let end = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let (status, body) = http(
                    "GET",
                    vm.port,
                    &format!("/api/v1/query?query={}", url_encode(&expr)),
                    "",
                    None,
                );
                assert_eq!(status, 200, "{expr}: {body}");
                if !json(&body)["data"]["result"].as_array().unwrap().is_empty() {
                    break;
                }
                assert!(
                    std::time::Instant::now() < end,
                    "{}: `{expr}` found nothing in 30 s in what bessmon wrote",
                    panel["title"]
                );
                http("GET", vm.port, "/internal/force_flush", "", None);
                std::thread::sleep(Duration::from_millis(100));
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "{checked} queries");
    // The site variable's values come from the site state.
    let (_, body) = http(
        "GET",
        vm.port,
        "/api/v1/label/site/values?match[]=bess_site_soc",
        "",
        None,
    );
    assert_eq!(json(&body)["data"], serde_json::json!(["lab"]), "{body}");
}

#[test]
fn victoriametrics_refusing_the_token_keeps_the_spool_until_a_reload_fixes_it() {
    let vm = VictoriaMetrics::start_with_auth("bess", "s3cret");
    let sim = simulator(1);
    let v2 = format!(
        "[influxdb]\nurl = \"http://127.0.0.1:{}\"\napi = \"v2\"\nbucket = \"bess\"\ntoken = \"expired\"\nflush_interval = \"200ms\"\n",
        vm.port
    );
    let cfg = config(sim.sim.addrs[0].port(), &v2);
    let mut daemon = Daemon::start(&cfg.path);
    let line = daemon.wait_log("nothing is written, the data stays spooled");
    assert!(line.contains("401") && line.contains("ERROR"), "{line}");
    let port = daemon.http_port();
    assert_eq!(http("GET", port, "/readyz", "", None).0, 503);
    wait_for_requests(&sim.sim.sites[0], 60, "polls while VictoriaMetrics refuses");
    let spooled = daemon
        .metric("bessmon_spool_entries{sink=\"influxdb\"}")
        .unwrap();
    assert!(spooled > 0.0, "kept in the spool");
    // Every PCS poll made so far happened before `fixed`.
    let polled = daemon
        .metric("bessmon_polls_total{site=\"lab\",device=\"pcs\"}")
        .unwrap();
    let fixed = Timestamp::now() + jiff::SignedDuration::from_secs(1);
    // The right credentials, by the v1 API's basic auth, and a reload.
    cfg.rewrite(&format!(
        "[influxdb]\nurl = \"http://127.0.0.1:{}\"\napi = \"v1\"\ndatabase = \"bess\"\nusername = \"bess\"\npassword = \"s3cret\"\nflush_interval = \"200ms\"\n\n{}",
        vm.port,
        sized_site_toml("200ms", 2000.0, 1000.0, &sim_devices(sim.sim.addrs[0].port(), "1s"))
    ));
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &daemon.proc.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    daemon.wait_log("reloaded");
    // Everything polled before the fix arrives: the first poll's status is there.
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http(
            "GET",
            vm.port,
            &format!(
                "/api/v1/query?query={}&time={}",
                url_encode("count_over_time(bess_status_online{device=\"pcs\"}[10m])"),
                fixed.as_second()
            ),
            "",
            Some(&format!("Basic {}", base64_basic("bess", "s3cret"))),
        );
        assert_eq!(status, 200, "{body}");
        let r = json(&body);
        let n = r["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if n >= polled {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "60 s after the fix, {n} of the {polled} PCS statuses from before it: {body}"
        );
        http(
            "GET",
            vm.port,
            "/internal/force_flush",
            "",
            Some(&format!("Basic {}", base64_basic("bess", "s3cret"))),
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let dead = cfg.dir.path().join("state/influxdb-dead-letter");
    assert!(
        std::fs::read_dir(&dead).map_or(true, |mut d| d.next().is_none()),
        "nothing dead-lettered"
    );
    assert_eq!(daemon.terminate(), Some(0));
}

/// `user:password` in base64, for an HTTP basic Authorization header.
fn base64_basic(user: &str, password: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
