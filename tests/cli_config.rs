//! `check`, `plan` and `run` as an operator uses them: the binary, real files.
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::*;

#[test]
fn check_accepts_a_valid_config_and_summarises_it() {
    let cfg = TestConfig::new(&site_toml("1s", &sim_devices(5020, "500ms")));
    let out = cli_c("check", &cfg.path, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // PCS 1 fast request, BMS 2 (input registers + discrete input), meter 1.
    assert!(
        stdout.contains("sites: 1, devices: 3, connections: 1, requests per poll: 4"),
        "{stdout}"
    );
}

#[test]
fn check_lists_every_error_with_file_and_key() {
    let profiles = tempfile::tempdir().unwrap();
    std::fs::write(
        profiles.path().join("broken.toml"),
        r#"id = "broken"
[[points]]
name = "a"
table = "holding"
address = 10
type = "u32"
[[points]]
name = "b"
table = "holding"
address = 11
type = "u16"
[[points]]
name = "c"
table = "coil"
address = 0
type = "f32"
"#,
    )
    .unwrap();
    let t = "{ type = \"tcp\", host = \"127.0.0.1\", port = 502 }";
    let body = site_toml(
        "1x",
        &(device_toml("pcs", "no-such-profile", 1, "1s", t)
            + &device_toml("pcs", "broken", 2, "1s", t)
            + &device_toml("meter", "bessmon-sim-meter", 2, "1s", t)),
    )
    .replace("cn-chongqing-ci-2025-02", "no-such-tariff");
    let cfg = TestConfig::with_profile_dir(&body, profiles.path());
    let out = cli_c("check", &cfg.path, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = cfg.path.display().to_string();
    let expect = [
        (
            file.as_str(),
            "sites[0] (lab).tariff",
            "no tariff `no-such-tariff`",
        ),
        (
            file.as_str(),
            "sites[0] (lab).poll_interval",
            "unknown unit",
        ),
        (
            file.as_str(),
            "devices[0] (pcs).profile",
            "no profile `no-such-profile`",
        ),
        (file.as_str(), "devices[1] (pcs).id", "duplicate device id"),
        (
            file.as_str(),
            "devices[2] (meter).unit",
            "unit 2 on tcp://127.0.0.1:502 is already claimed by lab/pcs",
        ),
        ("broken.toml", "points[1] (b).address", "overlaps `a`"),
        ("broken.toml", "points[2] (c).type", "only type = \"bool\""),
    ];
    for (f, key, msg) in expect {
        assert!(
            err.lines()
                .any(|l| l.contains(f) && l.contains(key) && l.contains(msg)),
            "expected an error naming {f} / {key} / {msg} in:\n{err}"
        );
    }
    assert!(err.contains("7 errors"), "{err}");
}

#[test]
fn environment_overrides_config_keys() {
    let cfg = TestConfig::new(&site_toml("1s", &sim_devices(5020, "500ms")));
    let out = Command::new(bin())
        .args(["check", "-c"])
        .arg(&cfg.path)
        .env("BESSMON__DAEMON__INSTANCE", "no spaces allowed")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("daemon.instance") && err.contains("no spaces allowed"),
        "{err}"
    );
}

#[test]
fn unreadable_and_malformed_configs_are_input_errors() {
    let out = Command::new(bin())
        .args(["check", "-c", "/nonexistent/bessmon.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bessmon.toml"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[daemon]\ninstance = \n").unwrap();
    let out = cli_c("check", &path, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&path.display().to_string()));

    std::fs::write(&path, "[daemon]\ninstanse = \"typo\"\n").unwrap();
    let out = cli_c("check", &path, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("instanse"),
        "unknown keys are named"
    );
}

#[test]
fn plan_prints_each_request() {
    let cfg = TestConfig::new(&site_toml("1s", &sim_devices(5020, "500ms")));
    let out = cli_c("plan", &cfg.path, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("lab/")).collect();
    // PCS: 1 fast + 2 slow; BMS: 2 fast + 1 slow; meter: 1 fast, its
    // grid registers and the per-rate registers after them in one read.
    assert_eq!(rows.len(), 7, "{stdout}");
    let meter = rows.iter().find(|l| l.starts_with("lab/meter")).unwrap();
    assert!(
        meter.contains("holding")
            && meter.contains("0x0")
            && meter.contains(" 32 ")
            && meter.contains("power_factor,pf_sf")
            && meter.contains("discharge_energy_rate4"),
        "{meter}"
    );
}

#[test]
fn run_stops_cleanly_on_sigterm() {
    let mut sim = Command::new(bin())
        .args(["simulate", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = BufReader::new(sim.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let _sim = Proc(sim);
    let port: u16 = line
        .split_whitespace()
        .nth(4)
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    let cfg = TestConfig::new(&site_toml("200ms", &sim_devices(port, "500ms")));
    let mut run = Command::new(bin())
        .args(["--log-format", "json", "run", "-c"])
        .arg(&cfg.path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(run.stderr.take().unwrap()).lines();
    // Wait until all three devices report online: the daemon is polling.
    let mut online = 0;
    for l in lines.by_ref() {
        let l = l.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        if v["message"]
            .as_str()
            .is_some_and(|m| m.ends_with(" online"))
        {
            online += 1;
            if online == 3 {
                break;
            }
        }
    }
    assert_eq!(online, 3);
    let pid = run.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean exit");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn bundled_example_config_passes_check() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/examples/site-chongqing-tcp.toml");
    let out = cli_c("check", &path, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_names_unreadable_mqtt_secrets_without_printing_them() {
    let body = format!(
        "[mqtt]\nurl = \"mqtts://broker:8883\"\nusername = \"u\"\npassword_file = \"/nonexistent/mqtt-password\"\nca_file = \"/nonexistent/ca.crt\"\nsavings_interval = \"often\"\n{}",
        site_toml("1s", &sim_devices(5020, "500ms"))
    );
    let cfg = TestConfig::new(&body);
    let out = cli_c("check", &cfg.path, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "mqtt.password_file: cannot read /nonexistent/mqtt-password",
        "mqtt.ca_file",
        "mqtt.savings_interval",
    ] {
        assert!(err.contains(key), "{key} in {err}");
    }
    // A password given through the environment is accepted and never echoed.
    let cfg = TestConfig::new(&format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\nusername = \"u\"\n{}",
        site_toml("1s", &sim_devices(5020, "500ms"))
    ));
    let out = Command::new(bin())
        .args(["check", "-c"])
        .arg(&cfg.path)
        .env("BESSMON__MQTT__PASSWORD", "hunter2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("hunter2"));
}

#[test]
fn check_warns_about_an_open_listener_without_a_token() {
    let cfg = TestConfig::new(&site_toml("1s", &sim_devices(5020, "500ms")));
    let text = std::fs::read_to_string(&cfg.path).unwrap().replace(
        "http_listen = \"127.0.0.1:0\"",
        "http_listen = \"0.0.0.0:9810\"",
    );
    std::fs::write(&cfg.path, text).unwrap();
    let out = cli_c("check", &cfg.path, &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("warning:")
            && stdout.contains("not loopback")
            && stdout.contains("http_token_file"),
        "{stdout}"
    );
}

#[test]
fn check_names_bad_attribution_gaps_and_grid_capacities() {
    let t = "{ type = \"tcp\", host = \"127.0.0.1\", port = 502 }";
    let body = site_toml("1s", &device_toml("pcs", "bessmon-sim-pcs", 1, "500ms", t)).replacen(
        "\npoll_interval",
        "\nmax_attribution_gap = \"100ms\"\ngrid_capacity_kw = -5\npoll_interval",
        1,
    );
    let cfg = TestConfig::new(&body);
    let out = cli_c("check", &cfg.path, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for (key, msg) in [
        (
            "sites[0] (lab).max_attribution_gap",
            "at least the poll interval",
        ),
        (
            "sites[0] (lab).grid_capacity_kw",
            "-5 must be a positive number",
        ),
    ] {
        assert!(
            err.lines().any(|l| l.contains(key) && l.contains(msg)),
            "expected {key} / {msg} in:\n{err}"
        );
    }
}

#[test]
fn a_systemd_credential_is_a_warning_outside_the_service_and_an_error_inside() {
    let cfg = TestConfig::new(&format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\nusername = \"bessmon\"\npassword_file = \"/run/credentials/bessmon.service/mqtt-password\"\n{}",
        site_toml("1s", &sim_devices(5020, "500ms"))
    ));
    let out = Command::new(bin())
        .args(["check", "-c"])
        .arg(&cfg.path)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("warning: ")
            && stdout.contains("mqtt.password_file")
            && stdout.contains("systemd credential"),
        "{stdout}"
    );
    // Inside the service the same file missing is the error it looks like.
    let out = Command::new(bin())
        .args(["check", "-c"])
        .arg(&cfg.path)
        .env("CREDENTIALS_DIRECTORY", "/run/credentials/bessmon.service")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mqtt.password_file"));
}
