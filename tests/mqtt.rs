//! MQTT publishing against a real Mosquitto started by each test on its own
//! loopback port: the contract's topics and payloads, the last will, a broker
//! outage with nothing lost, a crash while the broker is down, and TLS with a
//! password or a client certificate.
mod support;

use std::process::Command;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use support::*;

fn config_body(mqtt: &str, port: u16, poll: &str, devices: &[&str]) -> String {
    let all = sim_devices(port, "1s");
    // Keep only the listed devices (a removed device must have its topics cleared).
    let kept: String = all
        .split("\n[[sites.devices]]")
        .filter(|chunk| {
            devices
                .iter()
                .any(|d| chunk.contains(&format!("id = \"{d}\"")))
        })
        .map(|c| format!("\n[[sites.devices]]{c}"))
        .collect();
    format!("{mqtt}\n{}", sized_site_toml(poll, 2000.0, 1000.0, &kept))
}

fn config(mqtt: &str, port: u16, poll: &str, devices: &[&str]) -> TestConfig {
    TestConfig::new(&config_body(mqtt, port, poll, devices))
}

fn mqtt_section(port: u16, extra: &str) -> String {
    format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nsavings_interval = \"1s\"\n{extra}\n")
}

fn last<'a>(got: &'a [(String, String, bool)], topic: &str) -> Option<&'a (String, String, bool)> {
    got.iter().rev().find(|(t, _, _)| t == topic)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn contract_topics_payloads_retained_and_last_will() {
    let broker = Mosquitto::start();
    let sim = simulator(1);
    let cfg = config(
        &mqtt_section(broker.port, "[mqtt.homeassistant]\nenabled = true"),
        sim.sim.addrs[0].port(),
        "200ms",
        &["pcs", "bms", "meter"],
    );
    let (got, _rt) = subscribe(broker.port, "t-live", "#", None);
    let mut daemon = Daemon::start(&cfg.path);
    let topics = [
        "bessmon/test/status",
        "bessmon/lab/pcs/state",
        "bessmon/lab/bms/state",
        "bessmon/lab/meter/state",
        "bessmon/lab/pcs/availability",
        "bessmon/lab/tariff",
        "bessmon/lab/savings",
    ];
    wait_until(&got, "every contract topic", |g| {
        topics.iter().all(|t| last(g, t).is_some())
    });
    {
        let g = got.lock().unwrap();
        assert_eq!(last(&g, "bessmon/test/status").unwrap().1, "online");
        assert_eq!(
            last(&g, "bessmon/lab/pcs/availability").unwrap().1,
            "online"
        );
        let state = json(&last(&g, "bessmon/lab/pcs/state").unwrap().1);
        assert!(
            state["ts"].as_str().unwrap().parse::<Timestamp>().is_ok(),
            "{state}"
        );
        assert!(state["values"]["active_power"].is_number(), "{state}");
        assert!(state["invalid"].is_array());
        assert!(
            state["values"].get("serial_number").is_none(),
            "only numbers are published"
        );
        let tariff = json(&last(&g, "bessmon/lab/tariff").unwrap().1);
        assert_eq!(tariff["currency"], "CNY");
        assert!(["valley", "flat", "peak", "critical"].contains(&tariff["band"].as_str().unwrap()));
        assert!(
            tariff["price"].is_number()
                && tariff["until"]
                    .as_str()
                    .unwrap()
                    .parse::<Timestamp>()
                    .is_ok()
        );
        let savings = json(&last(&g, "bessmon/lab/savings").unwrap().1);
        assert_eq!(savings["currency"], "CNY");
        for p in ["today", "month", "lifetime"] {
            assert!(
                savings[p]["savings"].is_number() && savings[p]["bands"].is_object(),
                "{p}: {savings}"
            );
        }
        let ha = g
            .iter()
            .find(|(t, _, _)| t == "homeassistant/sensor/bessmon_lab_soc/config")
            .expect("discovery");
        let ha = json(&ha.1);
        assert_eq!(ha["state_topic"], "bessmon/lab/bms/state");
        assert_eq!(ha["unit_of_measurement"], "%");
    }
    // A newcomer gets every topic retained.
    let (fresh, _rt2) = subscribe(broker.port, "t-fresh", "bessmon/#", None);
    wait_until(&fresh, "retained copies", |g| {
        topics.iter().all(|t| last(g, t).is_some_and(|m| m.2))
    });

    // SIGKILL: the broker sends the last will.
    daemon.kill();
    wait_until(&got, "the last will", |g| {
        last(g, "bessmon/test/status").is_some_and(|m| m.1 == "offline")
    });

    // The meter leaves the config: its retained topics are cleared on the next start.
    cfg.rewrite(&config_body(
        &mqtt_section(broker.port, ""),
        sim.sim.addrs[0].port(),
        "200ms",
        &["pcs", "bms"],
    ));
    let n = got.lock().unwrap().len();
    let mut daemon = Daemon::start(&cfg.path);
    wait_until(&got, "the meter's topics cleared", |g| {
        g[n..]
            .iter()
            .any(|(t, p, _)| t == "bessmon/lab/meter/state" && p.is_empty())
            && g[n..]
                .iter()
                .any(|(t, p, _)| t == "bessmon/lab/meter/availability" && p.is_empty())
            && g[n..]
                .iter()
                .any(|(t, p, _)| t == "homeassistant/sensor/bessmon_lab_soc/config" && p.is_empty())
    });
    assert_eq!(daemon.terminate(), Some(0));
    wait_until(&got, "offline on a clean stop", |g| {
        last(g, "bessmon/test/status").is_some_and(|m| m.1 == "offline")
    });
}

fn ts_ms(payload: &str) -> i64 {
    json(payload)["ts"]
        .as_str()
        .unwrap()
        .parse::<Timestamp>()
        .unwrap()
        .as_millisecond()
}

/// Every state message of every poll, by the poll number `seq`: none may be
/// missing (a duplicate may arrive: delivery is at least once), none may come
/// after a later one. Returns how many polls arrived.
fn assert_no_gaps(got: &Received, topic: &str) -> usize {
    let g = got.lock().unwrap();
    let arrived: Vec<u64> = g
        .iter()
        .filter(|(t, p, _)| t == topic && !p.is_empty())
        .map(|(_, p, _)| json(p)["seq"].as_u64().unwrap())
        .collect();
    let mut seqs = arrived.clone();
    seqs.dedup();

    for w in seqs.windows(2) {
        assert!(
            w[1] > w[0],
            "{topic}: poll {} arrived after poll {}",
            w[1],
            w[0]
        );
        assert_eq!(
            w[1],
            w[0] + 1,
            "{topic}: polls {}..{} missing ({} messages arrived)",
            w[0] + 1,
            w[1],
            arrived.len()
        );
    }
    seqs.len()
}

#[test]
fn a_broker_outage_loses_nothing() {
    let mut broker = Mosquitto::start();
    let sim = simulator(1);
    let cfg = config(
        &mqtt_section(broker.port, ""),
        sim.sim.addrs[0].port(),
        "200ms",
        &["pcs", "bms", "meter"],
    );
    let (got, _rt) = subscribe(broker.port, "t-outage", "bessmon/#", None);
    let mut daemon = Daemon::start(&cfg.path);
    wait_until(&got, "first states", |g| {
        g.iter().filter(|m| m.0 == "bessmon/lab/pcs/state").count() >= 5
    });
    broker.stop();
    // Some sixty polls (about five requests each) while the broker is down.
    wait_for_requests(&sim.sim.sites[0], 300, "polls during the broker outage");
    broker.resume();
    let resumed = Timestamp::now().as_millisecond();
    daemon.wait_log("connected");
    // Delivery is in order, so a state polled after the outage means the backlog is through.
    wait_until(&got, "states polled after the outage", |g| {
        g.iter()
            .any(|(t, p, _)| t == "bessmon/lab/meter/state" && ts_ms(p) > resumed + 1000)
    });
    let m = |s: &str| {
        daemon
            .metric(s)
            .unwrap_or_else(|| panic!("no {s} in /metrics"))
    };
    assert_eq!(m("bessmon_sink_connected{sink=\"mqtt\"}"), 1.0);
    assert!(m("bessmon_sink_failures_total{sink=\"mqtt\",kind=\"connection_lost\"}") >= 1.0);
    // Acknowledgements are committed in batches: wait for the backlog's to land.
    let written = (0..100)
        .map(|_| {
            let w = m("bessmon_sink_written_total{sink=\"mqtt\"}");
            if w < 60.0 {
                std::thread::sleep(Duration::from_millis(100));
            }
            w
        })
        .find(|&w| w >= 60.0);
    assert!(written.is_some(), "the backlog's deliveries are counted");
    assert_eq!(daemon.terminate(), Some(0));
    wait_until(&got, "offline after the drain", |g| {
        last(g, "bessmon/test/status").is_some_and(|m| m.1 == "offline")
    });
    let polls = assert_no_gaps(&got, "bessmon/lab/pcs/state");
    assert!(
        polls >= 50,
        "the polls before, during and after the outage: {polls}"
    );
    assert_no_gaps(&got, "bessmon/lab/meter/state");
}

#[test]
fn messages_spooled_before_a_crash_are_delivered_after_restart() {
    let mut broker = Mosquitto::start();
    let sim = simulator(1);
    let cfg = config(
        &mqtt_section(broker.port, ""),
        sim.sim.addrs[0].port(),
        "200ms",
        &["pcs"],
    );
    let (got, _rt) = subscribe(broker.port, "t-crash", "bessmon/lab/pcs/state", None);
    let mut daemon = Daemon::start(&cfg.path);
    wait_until(&got, "first states", |g| g.len() >= 3);
    broker.stop();
    let down = Timestamp::now();
    wait_for_requests(
        &sim.sim.sites[0],
        45,
        "polls spooled while the broker is down",
    );
    daemon.kill();
    let killed = Timestamp::now();
    let mut daemon = Daemon::start(&cfg.path);
    daemon.wait_log("polling");
    broker.resume();
    // Everything polled while the broker was down and before the kill arrives.
    wait_until(&got, "the spooled tail", |g| {
        g.iter().any(|(_, p, _)| {
            json(p)["ts"]
                .as_str()
                .unwrap()
                .parse::<Timestamp>()
                .unwrap()
                > killed
        })
    });
    let during: Vec<i64> = got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, p, _)| {
            json(p)["ts"]
                .as_str()
                .unwrap()
                .parse::<Timestamp>()
                .unwrap()
                .as_millisecond()
        })
        .filter(|&t| t > down.as_millisecond() && t < killed.as_millisecond())
        .collect();
    // Fifteen polls or more (each two or three requests); allow for the last
    // 200 ms batch that had not reached the spool.
    assert!(
        during.len() >= 12,
        "{} states from the outage before the crash",
        during.len()
    );
    assert_eq!(daemon.terminate(), Some(0));
}

/// A test CA, a server certificate for localhost and a client certificate,
/// made with the openssl CLI in `d`.
fn make_pki(d: &std::path::Path) {
    let ssl = |args: &[&str]| {
        let out = Command::new(require("openssl"))
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=bessmon test CA",
    ]);
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, cn) in [("server", "localhost"), ("client", "bessmon-site-gateway")] {
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        ssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        ssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
}

#[test]
fn tls_with_a_password_and_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d);
    let out = Command::new(require("mosquitto_passwd"))
        .args(["-b", "-c"])
        .arg(d.join("passwd"))
        .args(["bessmon", "s3cret"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let plain = free_port();
    let broker = Mosquitto::with_port(|tls_port, _| {
        format!(
            "allow_anonymous false\npassword_file {p}/passwd\nlistener {tls_port} 127.0.0.1\ncafile {p}/ca.crt\ncertfile {p}/server.crt\nkeyfile {p}/server.key\nlistener {plain} 127.0.0.1\n",
            p = d.display()
        )
    });
    let sim = simulator(1);
    std::fs::write(d.join("mqtt-password"), "s3cret\n").unwrap();
    let section = |pw_file: &str| {
        format!(
            "[mqtt]\nurl = \"mqtts://localhost:{}\"\nusername = \"bessmon\"\npassword_file = {:?}\nca_file = {:?}\n",
            broker.port,
            d.join(pw_file).display().to_string(),
            d.join("ca.crt").display().to_string()
        )
    };
    let cfg = config(
        &section("mqtt-password"),
        sim.sim.addrs[0].port(),
        "200ms",
        &["pcs"],
    );
    wait_for_port(plain);
    let (got, _rt) = subscribe(plain, "t-tls", "bessmon/#", Some(("bessmon", "s3cret")));
    let mut daemon = Daemon::start(&cfg.path);
    wait_until(&got, "a state over TLS", |g| {
        g.iter().any(|m| m.0 == "bessmon/lab/pcs/state")
    });
    assert_eq!(daemon.terminate(), Some(0));

    std::fs::write(d.join("wrong-password"), "guess\n").unwrap();
    let cfg = config(
        &section("wrong-password"),
        sim.sim.addrs[0].port(),
        "200ms",
        &["pcs"],
    );
    let mut daemon = Daemon::start(&cfg.path);
    // Either may be logged first: acquisition and the MQTT sink start together.
    let lines = daemon.wait_logs(&["the broker refused", "lab/pcs online"]);
    assert!(
        !lines[0].contains("guess"),
        "the password is never logged: {}",
        lines[0]
    );
    // Still running and polling: the error is retried with backoff, not fatal.
    assert!(daemon.proc.0.try_wait().unwrap().is_none());
    assert_eq!(daemon.terminate(), Some(0));
}

/// A broker that requires a client certificate: bessmon presents the one in
/// `client_cert_file`, and without it the handshake fails and is retried.
#[test]
fn tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d);
    let plain = free_port();
    let broker = Mosquitto::with_port(|tls_port, _| {
        format!(
            "allow_anonymous true\nlistener {tls_port} 127.0.0.1\ncafile {p}/ca.crt\ncertfile {p}/server.crt\nkeyfile {p}/server.key\nrequire_certificate true\nlistener {plain} 127.0.0.1\n",
            p = d.display()
        )
    });
    let sim = simulator(1);
    let file = |f: &str| format!("{:?}", d.join(f).display().to_string());
    let section = |client: &str| {
        format!(
            "[mqtt]\nurl = \"mqtts://127.0.0.1:{}\"\nca_file = {}\n{client}",
            broker.port,
            file("ca.crt")
        )
    };
    wait_for_port(plain);
    let (got, _rt) = subscribe(plain, "t-cert", "bessmon/#", None);

    // Without a certificate the broker ends the handshake; bessmon keeps polling and retrying.
    let cfg = config(&section(""), sim.sim.addrs[0].port(), "200ms", &["pcs"]);
    let mut daemon = Daemon::start(&cfg.path);
    daemon.wait_logs(&["lab/pcs online", "retrying with backoff"]);
    assert!(daemon.proc.0.try_wait().unwrap().is_none());
    assert_eq!(daemon.terminate(), Some(0));
    assert!(
        !got.lock()
            .unwrap()
            .iter()
            .any(|m| m.0 == "bessmon/lab/pcs/state"),
        "a client without a certificate got through"
    );

    let cfg = config(
        &section(&format!(
            "client_cert_file = {}\nclient_key_file = {}\n",
            file("client.crt"),
            file("client.key")
        )),
        sim.sim.addrs[0].port(),
        "200ms",
        &["pcs"],
    );
    let mut daemon = Daemon::start(&cfg.path);
    wait_until(&got, "a state over mutual TLS", |g| {
        g.iter().any(|m| m.0 == "bessmon/lab/pcs/state")
    });
    assert_eq!(daemon.terminate(), Some(0));
}

/// SIGTERM with an unreachable broker and a growing backlog: the daemon commits
/// and exits 0 within 5 s (systemd's stop timeout is 15 s), keeping the backlog.
#[test]
fn sigterm_exits_promptly_with_a_backlog_and_no_broker() {
    let sim = simulator(1);
    let dead = free_port();
    let cfg = config(
        &mqtt_section(dead, ""),
        sim.sim.addrs[0].port(),
        "200ms",
        &["pcs", "bms", "meter"],
    );
    let mut daemon = Daemon::start(&cfg.path);
    daemon.wait_logs(&["lab/pcs online", "mqtt 127.0.0.1"]);
    wait_for_requests(&sim.sim.sites[0], 20, "a backlog with no broker to take it");
    let t = std::time::Instant::now();
    assert_eq!(daemon.terminate(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stopped after {:?}",
        t.elapsed()
    );
    let spool = bessmon::spool::Spool::open(
        &cfg.dir.path().join("state"),
        bessmon::spool::Limits {
            max_bytes: u64::MAX,
            max_age: Duration::from_secs(3600),
        },
    )
    .unwrap();
    assert!(
        spool.stats("mqtt").count > 10,
        "the backlog is kept for the next start"
    );
}

#[test]
fn retained_state_is_back_after_a_broker_restart_and_when_home_assistant_returns() {
    let mut broker = Mosquitto::start();
    let sim = simulator(1);
    let cfg = config(
        &mqtt_section(broker.port, "[mqtt.homeassistant]\nenabled = true"),
        sim.sim.addrs[0].port(),
        "200ms",
        &["pcs", "bms", "meter"],
    );
    let mut daemon = Daemon::start(&cfg.path);
    let (before, _rt) = subscribe(broker.port, "t-before", "bessmon/lab/tariff", None);
    wait_until(&before, "the tariff", |g| {
        last(g, "bessmon/lab/tariff").is_some()
    });

    // The broker comes back with nothing retained. The tariff band has not
    // changed, so only a republish on reconnect brings the tariff back.
    broker.restart_forgetting();
    daemon.wait_log("connection lost");
    let (after, _rt2) = subscribe(broker.port, "t-after", "bessmon/#", None);
    let state = [
        "bessmon/test/status",
        "bessmon/lab/tariff",
        "bessmon/lab/savings",
        "bessmon/lab/pcs/availability",
        "bessmon/lab/meter/state",
    ];
    wait_until(&after, "the whole state again", |g| {
        state
            .iter()
            .all(|t| last(g, t).is_some_and(|m| !m.1.is_empty()))
    });
    // Retained on the broker, for whoever comes next.
    let (late, _rt3) = subscribe(broker.port, "t-late", "bessmon/lab/tariff", None);
    wait_until(&late, "the tariff retained", |g| {
        last(g, "bessmon/lab/tariff").is_some_and(|m| m.2)
    });

    // Home Assistant restarts and announces itself: discovery comes again,
    // live (not as the broker's retained copy).
    let (ha, _rt4) = subscribe(broker.port, "t-ha", "homeassistant/#", None);
    wait_until(&ha, "the retained discovery configs", |g| {
        g.iter().any(|m| m.0.ends_with("/config") && m.2)
    });
    let n = ha.lock().unwrap().len();
    publish_once(broker.port, "homeassistant/status", "online");
    wait_until(&ha, "discovery again after the birth message", |g| {
        g[n..]
            .iter()
            .any(|m| m.0 == "homeassistant/sensor/bessmon_lab_soc/config" && !m.2)
    });
    daemon.wait_log("Home Assistant is back");
    assert_eq!(daemon.terminate(), Some(0));
}
