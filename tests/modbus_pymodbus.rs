//! bessmon against an independent Modbus implementation: Debian's pymodbus
//! serving register maps written by hand in the test.
mod support;

use std::process::Command;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decodes_every_type_and_order_over_tcp() {
    let server =
        PyModbus::start(serde_json::json!({ "mode": "tcp", "units": { "1": all_types_map() } }));
    let transport = format!(
        "{{ type = \"tcp\", host = \"127.0.0.1\", port = {} }}",
        server.port
    );
    let cfg = TestConfig::new(&site_toml(
        "200ms",
        &device_toml("dut", "test-all-types", 1, "1s", &transport),
    ));
    let mut polling = Polling::start(&cfg);
    let s = polling.next_of("dut").await;
    assert_all_types(&s);
    let invalid: Vec<&str> = s.invalid().collect();
    assert_eq!(
        invalid,
        vec!["out_of_range"],
        "a value outside `valid` is flagged, not dropped"
    );
    assert_eq!(num(&s, "out_of_range"), 500.0);
    polling.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decodes_rtu_framed_over_tcp() {
    let server = PyModbus::start(
        serde_json::json!({ "mode": "rtu-over-tcp", "units": { "7": all_types_map() } }),
    );
    let transport = format!(
        "{{ type = \"rtu-over-tcp\", host = \"127.0.0.1\", port = {} }}",
        server.port
    );
    let cfg = TestConfig::new(&site_toml(
        "200ms",
        &device_toml("dut", "test-all-types", 7, "1s", &transport),
    ));
    let mut polling = Polling::start(&cfg);
    assert_all_types(&polling.next_of("dut").await);
    polling.stop().await;
}

/// Field lesson (OpenEMS #6, Telegraf #11782): one dead unit behind a gateway must
/// not stall its neighbours. Unit 3 never answers; units 1 and 2 keep every tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_unit_behind_gateway_does_not_stall_its_neighbours() {
    let unit = serde_json::json!({ "holding": { "0x00": [42] } });
    let server =
        PyModbus::start(serde_json::json!({ "mode": "tcp", "units": { "1": unit, "2": unit } }));
    let t = format!(
        "{{ type = \"tcp\", host = \"127.0.0.1\", port = {} }}",
        server.port
    );
    let devices = [("a", 1), ("b", 2), ("dead", 3)]
        .iter()
        .map(|(id, u)| device_toml(id, "test-one-register", *u, "100ms", &t))
        .collect::<String>();
    let cfg = TestConfig::new(&site_toml("250ms", &devices));
    let mut polling = Polling::start(&cfg);
    let by = polling.collect_until("a", 16).await;
    polling.stop().await;

    let (a, b, dead) = (
        &by["a"],
        &by["b"],
        by.get("dead").cloned().unwrap_or_default(),
    );
    for s in a.iter().chain(b.iter()) {
        assert!(
            s.online && s.errors.is_empty(),
            "{}: {:?}",
            s.device.device,
            s.errors
        );
        assert_eq!(num(s, "value"), 42.0);
    }
    let missed: u32 = a.iter().chain(b.iter()).map(|s| s.missed).sum();
    assert_eq!(missed, 0, "healthy units kept their schedule");
    assert!(
        b.len() + 1 >= a.len(),
        "b polled as often as a: {} vs {}",
        b.len(),
        a.len()
    );
    assert!(!dead.is_empty(), "the dead unit was tried");
    assert!(dead.iter().all(|s| !s.online));
    let e = &dead[0].errors[0];
    assert_eq!(e.kind, bessmon::acquire::sample::ErrorKind::Timeout);
    let text = e.to_string();
    for part in [
        "site lab",
        "device dead",
        "unit 3",
        "function 0x03",
        "address 0x0000",
    ] {
        assert!(text.contains(part), "error names {part}: {text}");
    }
    assert!(
        dead.len() * 2 < a.len(),
        "the dead unit backs off: {} polls vs {}",
        dead.len(),
        a.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exception_responses_name_the_request() {
    // pymodbus answers ILLEGAL DATA ADDRESS past the end of its block (0x200).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("test-bad-address.toml"),
        "id = \"test-bad-address\"\n[[points]]\nname = \"ok\"\ntable = \"holding\"\naddress = 0\ntype = \"u16\"\n[[points]]\nname = \"beyond\"\ntable = \"holding\"\naddress = 0x300\ntype = \"u16\"\n",
    )
    .unwrap();
    let server = PyModbus::start(
        serde_json::json!({ "mode": "tcp", "units": { "1": { "holding": { "0": [5] } } } }),
    );
    let t = format!(
        "{{ type = \"tcp\", host = \"127.0.0.1\", port = {} }}",
        server.port
    );
    let body = site_toml(
        "200ms",
        &device_toml("dut", "test-bad-address", 1, "1s", &t),
    );
    let cfg = TestConfig::with_profile_dir(&body, dir.path());
    let mut polling = Polling::start(&cfg);
    let s = polling.next_of("dut").await;
    polling.stop().await;
    assert!(s.online, "the device answered the good request");
    assert_eq!(num(&s, "ok"), 5.0);
    assert_eq!(s.errors.len(), 1);
    let e = s.errors[0].to_string();
    assert!(
        e.contains("exception 0x02") && e.contains("address 0x0300") && e.contains("unit 1"),
        "{e}"
    );
}

#[test]
fn read_command_shows_raw_registers_beside_values() {
    let server =
        PyModbus::start(serde_json::json!({ "mode": "tcp", "units": { "1": all_types_map() } }));
    let out = Command::new(bin())
        .args([
            "read",
            "--host",
            "127.0.0.1",
            "--port",
            &server.port.to_string(),
            "--unit",
            "1",
            "--profile",
            "test-all-types",
            "--profile-dir",
        ])
        .arg(data_dir().join("profiles"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {stdout}"))
            .to_string()
    };
    let l = line("i16_abcd");
    assert!(l.contains("ffd5") && l.contains("-43"), "{l}");
    let l = line("u32_cdab");
    assert!(l.contains("5678 1234") && l.contains("305419896"), "{l}");
    assert!(line("not_available").contains("missing"));
    assert!(line("out_of_range").contains("invalid"));
}
