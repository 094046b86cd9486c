//! The deployment files: the systemd unit verifies and the daemon speaks
//! sd_notify, the example configs pass `check`, compose and Kubernetes files
//! parse, and every Grafana query asks for measurements, fields and tags the
//! daemon writes.
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn example_configs_pass_check() {
    let dir = root().join("config/examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let out = Command::new(bin())
            .args(["check", "-c"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        n += 1;
    }
    let out = Command::new(bin())
        .args(["check", "-c"])
        .arg(root().join("deploy/compose/bessmon.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compose config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(n >= 3, "the demo, a TCP site and an RS485 gateway site");
}

#[test]
fn systemd_unit_verifies() {
    // A missing tool fails the test: scripts/test.sh installs it (systemd).
    let path = support::require("systemd-analyze");
    let dir = tempfile::tempdir().unwrap();
    // verify wants the ExecStart binary to exist: point it at the one just built.
    let unit = std::fs::read_to_string(root().join("deploy/systemd/bessmon.service"))
        .unwrap()
        .replace("/usr/bin/bessmon", bin());
    let file = dir.path().join("bessmon.service");
    std::fs::write(&file, unit).unwrap();
    let out = Command::new(path)
        .args(["verify", "--man=no"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Missing credential files on this machine are expected; anything else is a fault in the unit.
    let faults: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("credentials"))
        .collect();
    assert!(
        out.status.success() && faults.is_empty(),
        "systemd-analyze verify: {err}"
    );
}

#[test]
fn the_daemon_speaks_sd_notify() {
    let sim = simulator(1);
    let cfg = sim_site_config(&sim);
    let sock_dir = tempfile::tempdir().unwrap();
    let sock_path = sock_dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let child = Command::new(bin())
        .args(["run", "-c"])
        .arg(&cfg.path)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut daemon = Proc(child);
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !(seen.iter().any(|m: &String| m.starts_with("READY=1"))
        && seen.iter().any(|m| m == "WATCHDOG=1"))
    {
        let n = sock.recv(&mut buf).expect("a notification");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status()
        .unwrap()
        .success());
    loop {
        let n = sock.recv(&mut buf).expect("STOPPING=1");
        if &buf[..n] == b"STOPPING=1" {
            break;
        }
    }
    assert_eq!(daemon.0.wait().unwrap().code(), Some(0));
}

fn yaml_docs(path: &Path) -> serde_json::Value {
    let py =
        "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", py])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn compose_and_kubernetes_files_parse_and_agree() {
    let compose = yaml_docs(&root().join("deploy/compose/docker-compose.yml"));
    let services = compose[0]["services"].as_object().unwrap();
    for s in ["bessmon", "simulator", "mosquitto", "influxdb", "grafana"] {
        assert!(services.contains_key(s), "compose has {s}");
    }
    let check = services["bessmon"]["healthcheck"]["test"]
        .as_array()
        .unwrap();
    assert_eq!(check[1], "/usr/bin/bessmon", "the image has no curl");
    // Peers by service name: host.docker.internal does not resolve on Linux.
    let toml = std::fs::read_to_string(root().join("deploy/compose/bessmon.toml")).unwrap();
    assert!(!toml.contains("host.docker.internal"));
    let k8s = yaml_docs(&root().join("deploy/kubernetes/bessmon.yaml"));
    let kinds: BTreeSet<&str> = k8s
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("StatefulSet") && kinds.contains("ConfigMap"),
        "{kinds:?}"
    );
    let sts = k8s
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .unwrap();
    let args = sts["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    assert!(
        args.contains("--shard"),
        "each replica takes its shard: {args}"
    );
    for f in [
        "deploy/grafana/provisioning/datasources/influxdb.yml",
        "deploy/grafana/provisioning/dashboards/bessmon.yml",
    ] {
        yaml_docs(&root().join(f));
    }
}

/// What the daemon writes (the contract's schema), with the bundled profiles' point names.
fn schema() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut fields: BTreeSet<String> = [
        "seq",
        "online",
        "poll_ms",
        "errors",
        "charge_kwh",
        "discharge_kwh",
        "charge_cost",
        "discharge_value",
        "savings",
        "aux_cost",
        "net_savings",
        "soc",
        "battery_power_kw",
        "grid_power_kw",
        "price",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (_, text) in bessmon::bundled::PROFILES {
        let v: toml::Value = toml::from_str(text).unwrap();
        for p in v["points"].as_array().unwrap() {
            fields.insert(p["name"].as_str().unwrap().to_string());
        }
    }
    let tags = ["site", "device", "band"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    (fields, tags)
}

/// The quoted values compared with `r.<key> ==` in a Flux query.
fn compared(query: &str, key: &str) -> Vec<String> {
    query
        .match_indices(&format!("r.{key} == \""))
        .map(|(i, m)| query[i + m.len()..].split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn grafana_queries_match_the_schema() {
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/bessmon.json")).unwrap(),
    )
    .unwrap();
    let (fields, tags) = schema();
    let measurements = ["bess_telemetry", "bess_status", "bess_savings", "bess_site"];
    let mut used = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let q = t["query"].as_str().unwrap();
            assert!(
                !q.contains("today()"),
                "{}: Flux's today() is UTC midnight, not the site's",
                panel["title"]
            );
            for m in compared(q, "_measurement") {
                assert!(
                    measurements.contains(&m.as_str()),
                    "{}: unknown measurement {m}",
                    panel["title"]
                );
                used.insert(m);
            }
            for f in compared(q, "_field") {
                assert!(
                    fields.contains(&f),
                    "{}: the daemon writes no field {f}",
                    panel["title"]
                );
            }
            for (i, _) in q.match_indices("r.") {
                let key: String = q[i + 2..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    key.starts_with('_') || tags.contains(&key),
                    "{}: no tag {key}",
                    panel["title"]
                );
            }
        }
    }
    assert!(
        ["bess_site", "bess_status", "bess_savings"]
            .iter()
            .all(|m| used.contains(*m)),
        "site, status and savings all charted: {used:?}"
    );
}

/// Runs `bessmon ARGS` with stderr in a file that JOURNAL_STREAM names, as
/// systemd connects a service's stderr to journald; `until` decides when to
/// stop it (SIGTERM) from what it wrote so far, None to let it exit.
fn as_journal_stream(args: &[&str], until: Option<&str>) -> String {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stderr");
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let mut child = Command::new(bin())
        .args(args)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stderr(file)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    if let Some(needle) = until {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !std::fs::read_to_string(&path).unwrap().contains(needle) {
            assert!(
                std::time::Instant::now() < end,
                "waited 30 s for `{needle}`"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = Command::new("kill").arg(child.id().to_string()).status();
    }
    child.wait().unwrap();
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn under_systemd_every_line_carries_its_level_for_the_journal() {
    let sim = simulator(1);
    let cfg = sim_site_config(&sim);
    // Not loopback and no token: a warning, then the daemon's info lines.
    let text = std::fs::read_to_string(&cfg.path).unwrap().replace(
        "http_listen = \"127.0.0.1:0\"",
        "http_listen = \"0.0.0.0:0\"",
    );
    std::fs::write(&cfg.path, text).unwrap();
    let out = as_journal_stream(
        &["run", "-c", cfg.path.to_str().unwrap()],
        Some("HTTP on http://"),
    );
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {out}"))
    };
    assert!(line("is not loopback").starts_with("<4>"), "{out}");
    assert!(line("HTTP on http://").starts_with("<6>"), "{out}");
    assert!(out.lines().all(|l| l.starts_with('<')), "{out}");
    // A refused configuration is an error in the journal too.
    std::fs::write(&cfg.path, "[daemon]\nsample_queue = 0\n").unwrap();
    let out = as_journal_stream(&["run", "-c", cfg.path.to_str().unwrap()], None);
    assert!(
        out.lines().next().unwrap().starts_with("<3>error: "),
        "{out}"
    );
}

#[test]
fn time_zones_work_where_the_system_has_no_zoneinfo() {
    // A minimal container image has no /usr/share/zoneinfo: hide it in a
    // private mount namespace (needs root, as CI and the test command run).
    let script = format!(
        "mount -t tmpfs none /usr/share/zoneinfo && ls /usr/share/zoneinfo | wc -l && {} tariff show --date 2025-07-01 {}",
        bin(),
        root().join("config/tariffs/cn-chongqing-ci-2025-02.toml").display()
    );
    let out = Command::new(support::require("unshare"))
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("0\n"),
        "cannot hide zoneinfo here (the test needs root and a mount namespace): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("time zone Asia/Shanghai"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alert_rules_pass_promtool_and_name_only_metrics_bessmon_serves() {
    let dir = root().join("deploy/prometheus");
    let promtool = require("promtool");
    for args in [
        ["check", "rules", "bessmon-alerts.yml"],
        ["test", "rules", "bessmon-alerts.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every bessmon_ metric a rule uses is a family of a daemon's /metrics
    // (with both sinks configured, so their families are there too).
    let sim = simulator(1);
    let cfg = sim_site_config(&sim);
    let text = std::fs::read_to_string(&cfg.path).unwrap().replace(
        "[[sites]]",
        &format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[influxdb]\nurl = \"http://127.0.0.1:{}\"\nbucket = \"b\"\n[[sites]]",
            free_port(),
            free_port()
        ),
    );
    std::fs::write(&cfg.path, text).unwrap();
    let mut d = Daemon::start(&cfg.path);
    let (code, metrics) = http("GET", d.http_port(), "/metrics", "", None);
    assert_eq!(code, 200);
    assert_eq!(d.terminate(), Some(0));
    let families: BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let rules = std::fs::read_to_string(dir.join("bessmon-alerts.yml")).unwrap();
    let mut used = 0;
    for (i, _) in rules.match_indices("bessmon_") {
        let name: String = rules[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // Alert names are CamelCase; metric names are what we are after.
        if name.chars().any(|c| c.is_ascii_uppercase()) || rules[..i].ends_with("job=\"") {
            continue;
        }
        assert!(
            families.contains(name.as_str()),
            "{name} is not served: {families:?}"
        );
        used += 1;
    }
    assert!(used >= 9, "{used} metrics named");
}
