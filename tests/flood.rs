//! A flood: 10,000 devices, each on its own connection, none of which ever
//! answers, and a spool that cannot be written (its disk is full). Memory
//! and open files must stay under the bounds README documents, the daemon
//! must stay healthy (devices that do not answer are not ill health) and
//! answer its API.
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const DEVICES: usize = 10_000;
/// README: "Resource bounds".
const MAX_RSS_MB: u64 = 512;
const MAX_OPEN_FILES: usize = DEVICES + 256;

fn rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn ten_thousand_silent_devices_and_a_full_spool_stay_within_bounds() {
    // Listening, never accepting: connections wait in the backlog or never
    // complete, and no request is ever answered.
    let silent = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut body = String::new();
    for s in 0..DEVICES / 10 {
        body += &format!(
            "\n[[sites]]\nid = \"s{s}\"\ntariff = \"cn-chongqing-ci-2025-02\"\ncapacity_kwh = 2000\nrated_power_kw = 1000\npoll_interval = \"1s\"\n"
        );
        for k in 0..10 {
            let i = s * 10 + k;
            // Each device its own connection: 127.1.x.y all reach the listener.
            let host = format!("127.1.{}.{}", i / 250, i % 250 + 1);
            body += &device_toml(
                &format!("d{k}"),
                "test-one-register",
                1,
                "500ms",
                &format!("{{ type = \"tcp\", host = \"{host}\", port = {port} }}"),
            );
        }
    }
    // A broker nobody listens on: every message waits for the spool.
    let nobody = free_port();
    let cfg = TestConfig::new(&format!(
        "{body}\n[mqtt]\nurl = \"mqtt://127.0.0.1:{nobody}\"\n"
    ));
    let state = cfg.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let _fs = Tmpfs::mount(&state, "8m");
    let d = Daemon::start(&cfg.path);
    let port_http = d.http_port();
    // The spool's disk fills up.
    let filler = state.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 << 10];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    d.wait_log("cannot write");

    let pid = d.proc.0.id();
    let (mut rss_max, mut fds_max) = (0, 0);
    let until = Instant::now() + Duration::from_secs(40);
    while Instant::now() < until {
        rss_max = rss_max.max(rss_mb(pid));
        fds_max = fds_max.max(open_files(pid));
        std::thread::sleep(Duration::from_millis(250));
    }
    let polls = d.metric("bessmon_polls_total{site=\"s0\",device=\"d0\"}");
    let (code, health) = http("GET", port_http, "/healthz", "", None);
    let (api, _) = http("GET", port_http, "/api/v1/status", "", None);
    let failures = d
        .metric("bessmon_spool_write_failures_total")
        .unwrap_or(0.0);
    eprintln!("flood: {DEVICES} devices, peak RSS {rss_max} MB, peak open files {fds_max}, spool write failures {failures}");
    assert!(polls.unwrap_or(0.0) >= 2.0, "s0/d0 was polled: {polls:?}");
    assert_eq!(code, 200, "silent devices are not ill health: {health}");
    assert_eq!(api, 200);
    assert!(failures >= 1.0, "the full spool was noticed");
    assert!(
        rss_max <= MAX_RSS_MB,
        "peak RSS {rss_max} MB, documented bound {MAX_RSS_MB} MB"
    );
    assert!(
        fds_max <= MAX_OPEN_FILES,
        "peak open files {fds_max}, documented bound {MAX_OPEN_FILES}"
    );
    // A clean stop, within a deadline, however many connections hang.
    let mut d = d;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = d.proc.0.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let lines = d.kill_and_collect();
            panic!(
                "the daemon did not stop within 30 s of SIGTERM; its last lines:\n{}",
                lines[lines.len().saturating_sub(20)..].join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0));
}
