//! Modbus RTU on a serial line: a socat pty pair, pymodbus serving one end,
//! bessmon on the other.
mod support;

use std::process::Command;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_a_serial_bus_with_two_units() {
    let pty = PtyPair::start();
    let _server = PyModbus::start(serde_json::json!({
        "mode": "rtu",
        "serial": pty.a.display().to_string(),
        "baud": 19200,
        "units": { "1": all_types_map(), "2": { "holding": { "0x00": [1234] } } }
    }));
    let t = format!(
        "{{ type = \"rtu\", path = {:?}, baud = 19200 }}",
        pty.b.display().to_string()
    );
    let devices = device_toml("dut", "test-all-types", 1, "1s", &t)
        + &device_toml("second", "test-one-register", 2, "1s", &t);
    let cfg = TestConfig::new(&site_toml("300ms", &devices));
    let mut polling = Polling::start(&cfg);
    // Two devices on one bus: one link, requests serialised.
    let by = polling.collect_until("second", 3).await;
    polling.stop().await;
    assert_all_types(by["dut"].last().expect("dut polled"));
    for s in &by["second"] {
        assert!(s.online, "{:?}", s.errors);
        assert_eq!(num(s, "value"), 1234.0);
    }
}

#[test]
fn read_command_over_serial() {
    let pty = PtyPair::start();
    let _server = PyModbus::start(serde_json::json!({
        "mode": "rtu",
        "serial": pty.a.display().to_string(),
        "units": { "5": { "holding": { "0x00": [777] } } }
    }));
    let out = Command::new(bin())
        .args(["read", "--serial"])
        .arg(&pty.b)
        .args([
            "--unit",
            "5",
            "--profile",
            "test-one-register",
            "--profile-dir",
        ])
        .arg(data_dir().join("profiles"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("value"))
        .expect("value line");
    assert!(line.contains("0309") && line.contains("777"), "{line}");
}
