//! bessmon monitors; it never commands. No configuration or profile can make
//! it send a Modbus write (functions 5, 6, 15, 16, 22, 23): the code that
//! talks to devices holds only the four read functions, and the simulator,
//! which counts and refuses every write, counts none after every profile
//! and every register table has been polled.
mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use support::*;

/// Names by which tokio-modbus sends anything but a read.
const WRITES: [&str; 11] = [
    "write_single_coil",
    "write_single_register",
    "write_multiple_coils",
    "write_multiple_registers",
    "masked_write_register",
    "read_write_multiple_registers",
    "Request::Write",
    "Request::MaskWrite",
    "Request::ReadWrite",
    "Request::Custom",
    "FunctionCode::",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_code_outside_the_simulator_can_send_a_write() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut reads = 0;
    for f in &files {
        if f.starts_with(src.join("sim")) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for w in WRITES {
            assert!(
                !text.contains(w),
                "{} uses `{w}`: bessmon must only read devices",
                f.display()
            );
        }
        reads += [
            "read_holding_registers",
            "read_input_registers",
            "read_coils",
            "read_discrete_inputs",
        ]
        .iter()
        .filter(|r| text.contains(*r))
        .count();
    }
    assert!(
        reads >= 4,
        "the scan found the transport's four read calls ({reads})"
    );
}

/// One Modbus/TCP request frame: transaction id, protocol 0, length, unit, PDU.
fn frame(tid: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut f = tid.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&(pdu.len() as u16 + 1).to_be_bytes());
    f.push(unit);
    f.extend_from_slice(pdu);
    f
}

#[test]
fn the_simulator_counts_and_refuses_every_write_function() {
    let sim = simulator(1);
    let site = &sim.sim.sites[0];
    let writes: [(u8, &[u8]); 6] = [
        (5, &[0, 1, 0xFF, 0]),
        (6, &[0, 1, 0, 42]),
        (15, &[0, 1, 0, 8, 1, 0x55]),
        (16, &[0, 1, 0, 1, 2, 0, 42]),
        (22, &[0, 1, 0xFF, 0, 0, 0x0F]),
        (23, &[0, 0, 0, 1, 0, 1, 0, 1, 2, 0, 42]),
    ];
    let mut s = std::net::TcpStream::connect(sim.sim.addrs[0]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for (i, (function, body)) in writes.iter().enumerate() {
        let mut pdu = vec![*function];
        pdu.extend_from_slice(body);
        s.write_all(&frame(i as u16 + 1, 1, &pdu)).unwrap();
        let mut reply = [0u8; 9];
        s.read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("no answer to function {function} within 10 s: {e}"));
        assert_eq!(
            &reply[7..9],
            &[function | 0x80, 0x01],
            "function {function} is refused as an illegal function"
        );
    }
    assert_eq!(site.writes.load(Relaxed), 6, "every write is counted");
}

/// A profile with points in all four tables at scattered addresses, so every
/// read function and both request shapes (registers, bits) are planned.
const EVERY_TABLE: &str = r#"
id = "test-every-table"
description = "points in every table, for the read-only proof"

[[points]]
name = "h"
table = "holding"
address = 3
type = "u32"

[[points]]
name = "i"
table = "input"
address = 1
type = "i16"

[[points]]
name = "c"
table = "coil"
address = 2
type = "bool"

[[points]]
name = "d"
table = "discrete"
address = 1
type = "bool"
poll = "slow"
"#;

#[test]
fn polling_every_profile_and_table_sends_no_write() {
    // Two simulators: a unit answers for one device only.
    let (sim, other) = (simulator(1), simulator(1));
    let sites = [&sim.sim.sites[0], &other.sim.sites[0]];
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(extra.path().join("test-every-table.toml"), EVERY_TABLE).unwrap();
    let t = format!(
        "{{ type = \"tcp\", host = \"127.0.0.1\", port = {} }}",
        other.sim.addrs[0].port()
    );
    let mut devices = sim_devices(sim.sim.addrs[0].port(), "1s");
    for (id, profile, unit) in [
        ("all-types", "test-all-types", 1),
        ("one-register", "test-one-register", 2),
        ("every-table", "test-every-table", 3),
    ] {
        devices += &device_toml(id, profile, unit, "1s", &t);
    }
    let cfg = TestConfig::with_profile_dir(&site_toml("100ms", &devices), extra.path());
    let v = cfg.validated();
    let profiles: std::collections::BTreeSet<&str> = v.devices().map(|d| &*d.profile.id).collect();
    assert_eq!(profiles.len(), 6, "six profiles polled: {profiles:?}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut polling = Polling::start(&cfg);
        // Several rounds of every device, slow points included (slow_every = 1).
        polling
            .collect_each(
                &[
                    "pcs",
                    "bms",
                    "meter",
                    "all-types",
                    "one-register",
                    "every-table",
                ],
                5,
            )
            .await;
        polling.stop().await;
    });
    for site in sites {
        assert!(site.requests.load(Relaxed) >= 15);
        assert_eq!(site.writes.load(Relaxed), 0, "bessmon never writes");
    }
}
