//! Known secret values (MQTT password, InfluxDB token, HTTP token) must
//! appear nowhere the daemon writes: its debug-level log, `check`, the
//! metrics, the API, the dashboard, or what it publishes.
mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::*;

const MQTT_PASSWORD: &str = "mqtt-pw-Q7v9XkR2";
const WRONG_MQTT_PASSWORD: &str = "mqtt-guess-H4d8JsE1";
const INFLUX_TOKEN: &str = "influx-tok-L3m8ZpW4";
const HTTP_TOKEN: &str = "http-tok-N5c1YbT6";
const SECRETS: [&str; 4] = [MQTT_PASSWORD, WRONG_MQTT_PASSWORD, INFLUX_TOKEN, HTTP_TOKEN];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        if let Some(at) = text.find(s) {
            let from = at.saturating_sub(120);
            panic!(
                "{what} shows the secret `{s}`: …{}…",
                &text[from..(at + s.len()).min(text.len())]
            );
        }
    }
}

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn secrets_appear_in_no_log_output_metric_api_answer_page_or_message() {
    let users = tempfile::tempdir().unwrap();
    let passwd = users.path().join("passwd");
    let out = Command::new(require("mosquitto_passwd"))
        .args(["-b", "-c"])
        .arg(&passwd)
        .args(["bessmon", MQTT_PASSWORD])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let broker = Mosquitto::with_port(|port, _| {
        format!(
            "allow_anonymous false\npassword_file {}\nlistener {port} 127.0.0.1\n",
            passwd.display()
        )
    });
    let vm = VictoriaMetrics::start();
    let sim = simulator(1);
    let cfg = TestConfig::new(&sized_site_toml(
        "200ms",
        2000.0,
        1000.0,
        &sim_devices(sim.sim.addrs[0].port(), "1s"),
    ));
    let pw_file = cfg.dir.path().join("mqtt-password");
    std::fs::write(&pw_file, format!("{MQTT_PASSWORD}\n")).unwrap();
    cfg.protect_api(HTTP_TOKEN);
    let token_file = cfg.dir.path().join("token");
    let text = std::fs::read_to_string(&cfg.path).unwrap();
    std::fs::write(
        &cfg.path,
        format!(
            "{text}\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nusername = \"bessmon\"\npassword_file = {:?}\n\
             [mqtt.homeassistant]\nenabled = true\n\
             [influxdb]\nurl = \"http://127.0.0.1:{}\"\napi = \"v2\"\norg = \"ops\"\nbucket = \"bess\"\nflush_interval = \"200ms\"\n",
            broker.port,
            pw_file.display().to_string(),
            vm.port
        ),
    )
    .unwrap();
    // The token comes from the environment, as a container would pass it.
    let env = [
        ("BESSMON__INFLUXDB__TOKEN", INFLUX_TOKEN),
        ("RUST_LOG", "debug"),
    ];

    // `check`'s whole output; it must pass.
    let check = || {
        let out = Command::new(bin())
            .args(["check", "-c"])
            .arg(&cfg.path)
            .envs(env)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        said
    };
    // `check` names the secret files others can read, and never their contents.
    chmod(&pw_file, 0o644);
    chmod(&token_file, 0o644);
    let said = check();
    assert_clean("`check`", &said);
    for key in ["mqtt.password_file", "daemon.http_token_file"] {
        assert!(
            said.lines()
                .any(|l| l.contains(key) && l.contains("readable by every user")),
            "`check` warns that {key} is readable by others:\n{said}"
        );
    }
    chmod(&pw_file, 0o600);
    chmod(&token_file, 0o600);
    let said = check();
    assert!(
        !said.contains("readable by every user"),
        "private files draw no warning:\n{said}"
    );

    let (received, _rt) = subscribe(
        broker.port,
        "t-secrets",
        "#",
        Some(("bessmon", MQTT_PASSWORD)),
    );
    let daemon = Daemon::start_env(&cfg.path, &[], &env);
    wait_until(&received, "state and discovery messages", |g| {
        g.iter().any(|m| m.0 == "bessmon/lab/pcs/state")
            && g.iter().any(|m| m.0.starts_with("homeassistant/"))
    });
    wait_for("a telemetry point in VictoriaMetrics", 60, || {
        !vm.export("bess_telemetry_.*").is_empty()
    });

    let port = daemon.http_port();
    let bearer = format!("Bearer {HTTP_TOKEN}");
    let mut answered = 0;
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/status",
        "/api/v1/sites",
        "/api/v1/sites/lab",
        "/api/v1/sites/lab/savings?period=lifetime",
        "/api/v1/sites/lab/days?period=lifetime",
        "/api/v1/sites/lab/history",
    ] {
        let (code, body) = http("GET", port, path, "", Some(&bearer));
        assert_eq!(code, 200, "GET {path}: {body}");
        assert_clean(&format!("GET {path}"), &body);
        answered += 1;
        let (_, refused) = http("GET", port, path, "", Some("Bearer not-the-token"));
        assert_clean(&format!("GET {path} with a wrong token"), &refused);
    }
    assert_eq!(answered, 10);
    for (topic, payload, _) in received.lock().unwrap().iter() {
        assert_clean(&format!("MQTT {topic}"), &format!("{topic} {payload}"));
    }
    let (code, lines) = daemon.finish();
    assert_eq!(code, Some(0));
    assert!(
        lines.iter().any(|l| l.contains("DEBUG")),
        "the daemon logged at debug level ({} lines)",
        lines.len()
    );
    assert_clean("the daemon's log", &lines.join("\n"));

    // The broker refuses a wrong password: the failure is logged, the password is not.
    std::fs::write(&pw_file, format!("{WRONG_MQTT_PASSWORD}\n")).unwrap();
    let daemon = Daemon::start_env(&cfg.path, &[], &env);
    daemon.wait_logs(&["the broker refused"]);
    let (code, lines) = daemon.finish();
    assert_eq!(code, Some(0));
    assert_clean("the daemon's log after a refused login", &lines.join("\n"));
}
