//! The simulator as a Modbus server: read by Debian's mbpoll (an independent
//! master) and by bessmon, with faults switched on and off while polling.
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bessmon::acquire::decode::{decode_words, Decoded};
use bessmon::acquire::profile::Table;
use bessmon::clock::{ManualClock, SharedClock};
use bessmon::sim::{self, SiteParams};
use jiff::Timestamp;
use support::*;
use tokio_util::sync::CancellationToken;

/// 12:00 in Shanghai on a July day: the battery is discharging at the midday peak.
fn noon() -> Timestamp {
    "2025-07-15T04:00:00Z".parse().unwrap()
}

async fn simulator(clock: SharedClock) -> (sim::Simulator, CancellationToken) {
    let cancel = CancellationToken::new();
    let s = sim::start(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        0,
        vec![SiteParams::standard(0)],
        clock,
        cancel.clone(),
    )
    .await
    .unwrap();
    (s, cancel)
}

fn sim_site_toml(port: u16, poll: &str, timeout: &str) -> String {
    site_toml(poll, &sim_devices(port, timeout))
}

async fn mbpoll(port: u16, unit: u8, table: &str, count: u16) -> Vec<u16> {
    let out = tokio::process::Command::new(require("mbpoll"))
        .args([
            "-m",
            "tcp",
            "-a",
            &unit.to_string(),
            "-t",
            &format!("{table}:hex"),
            "-0",
            "-r",
            "0",
            "-c",
            &count.to_string(),
            "-1",
            "-p",
            &port.to_string(),
            "127.0.0.1",
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mbpoll failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<u16> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix('['))
        .filter_map(|l| {
            l.split_once("0x")
                .map(|(_, hex)| u16::from_str_radix(hex.trim(), 16).unwrap())
        })
        .collect();
    assert_eq!(words.len(), count as usize, "{text}");
    words
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbpoll_and_bessmon_read_the_same_registers() {
    let clock = Arc::new(ManualClock::new(noon()));
    let (simulator, cancel) = simulator(clock.clone()).await;
    let port = simulator.addrs[0].port();
    let site = simulator.sites[0].clone();

    let cfg = TestConfig::new(&sim_site_toml(port, "200ms", "1s"));
    let mut polling = Polling::start_with_clock(&cfg, clock.clone());
    let by = polling.collect_each(&["pcs", "bms", "meter"], 1).await;
    polling.stop().await;
    let (pcs, bms, meter) = (&by["pcs"][0], &by["bms"][0], &by["meter"][0]);

    // The clock stands still, so the registers mbpoll reads now are those bessmon read.
    for (sample, unit, table, mb_table, count) in [
        (pcs, 1u8, Table::Holding, "4", 0x14u16),
        (bms, 2, Table::Input, "3", 0x0A),
        (meter, 3, Table::Holding, "4", 0x0E),
    ] {
        let words = mbpoll(port, unit, mb_table, count).await;
        assert_eq!(
            &site.image(unit).unwrap().words(table)[..count as usize],
            &words[..],
            "unit {unit}"
        );
        let profile = &sample.device.profile;
        let mut compared = 0;
        for r in &sample.readings {
            let p = &profile.points[r.point];
            if p.table != table || p.end() > count as u32 || p.scale_factor.is_some() {
                continue;
            }
            let w = &words[p.address as usize..p.end() as usize];
            match decode_words(p, w, None) {
                Decoded::Value { value, .. } => {
                    assert_eq!(value, r.value, "unit {unit} {}", p.name)
                }
                Decoded::Missing => panic!("{} missing", p.name),
            }
            compared += 1;
        }
        assert!(compared >= 5, "unit {unit}: compared {compared} points");
    }

    // Physics at noon in July: discharging, and the meter sees load minus battery.
    assert_eq!(num(pcs, "status"), 2.0);
    let battery = num(pcs, "active_power");
    assert!(battery > 0.0, "discharging at noon: {battery}");
    let s = site.site.lock().unwrap();
    assert!((num(meter, "grid_power") - (s.state.load_kw - s.state.power_kw)).abs() < 0.01);
    assert!((num(bms, "soc") - s.soc() * 100.0).abs() < 0.051);
    assert!(boolean(bms, "contactor_closed"));
    assert!(
        (num(meter, "power_factor") - 0.98).abs() < 1e-9,
        "scale factor applied"
    );
    drop(s);
    assert_eq!(site.writes.load(Relaxed), 0, "bessmon never writes");
    cancel.cancel();
}

/// tokio-modbus #324, grid-x/modbus #78: after a timeout the late reply must not be
/// read as the answer to the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_slower_than_the_timeout_never_poisons_later_values() {
    let clock = Arc::new(ManualClock::new(noon()));
    let (simulator, cancel) = simulator(clock.clone()).await;
    let site = simulator.sites[0].clone();
    // Only the PCS, all its requests (fast and slow, three different ranges) every poll.
    let t = format!(
        "{{ type = \"tcp\", host = \"127.0.0.1\", port = {} }}",
        simulator.addrs[0].port()
    );
    let cfg = TestConfig::new(&site_toml(
        "200ms",
        &device_toml("pcs", "bessmon-sim-pcs", 1, "80ms", &t),
    ));
    let mut polling = Polling::start_with_clock(&cfg, clock.clone());
    let good = polling.next_of("pcs").await;
    assert!(good.online && good.errors.is_empty(), "{:?}", good.errors);
    assert_eq!(good.requests, 3);

    site.faults.set_slow(0, 150);
    let mut timeouts = 0;
    while timeouts < 3 {
        let s = polling.next_of("pcs").await;
        timeouts += s
            .errors
            .iter()
            .filter(|e| e.kind == bessmon::acquire::sample::ErrorKind::Timeout)
            .count();
        // Whatever did arrive must still be right.
        for r in &s.readings {
            let g = good.readings.iter().find(|g| g.point == r.point).unwrap();
            assert_eq!(g.value, r.value);
        }
    }
    site.faults.set_slow(0, 0);
    // The device backs off after failures; wait for it to come back, then demand exact values.
    let mut clean = 0;
    while clean < 5 {
        let s = polling.next_of("pcs").await;
        if !s.online {
            continue;
        }
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(
            s.readings, good.readings,
            "values after recovery equal those before the fault"
        );
        clean += 1;
    }
    polling.stop().await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_and_exceptions_are_survived() {
    let clock = Arc::new(ManualClock::new(noon()));
    let (simulator, cancel) = simulator(clock.clone()).await;
    let site = simulator.sites[0].clone();
    site.faults.drop_every.store(4, Relaxed);
    site.faults.exception_unit.store(2, Relaxed);
    site.faults.exception_code.store(0x04, Relaxed);
    let cfg = TestConfig::new(&sim_site_toml(simulator.addrs[0].port(), "100ms", "500ms"));
    let mut polling = Polling::start_with_clock(&cfg, clock.clone());
    let by = polling.collect_until("meter", 12).await;
    polling.stop().await;
    let meters = &by["meter"];
    assert!(
        meters.iter().filter(|s| s.online).count() >= 6,
        "reconnects after every drop"
    );
    let bms = &by["bms"];
    assert!(bms.iter().all(|s| !s.online || s.readings.is_empty()));
    let e = bms
        .iter()
        .flat_map(|s| &s.errors)
        .find(|e| e.kind == bessmon::acquire::sample::ErrorKind::Exception)
        .expect("exception reported");
    assert!(
        e.to_string().contains("exception 0x04") && e.to_string().contains("unit 2"),
        "{e}"
    );
    cancel.cancel();
}

#[test]
fn simulate_command_serves_sites_on_consecutive_ports() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(bin())
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--sites",
            "2",
            "--speed",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Proc(child);
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(2)
        .map(Result::unwrap)
        .collect();
    let port = lines[1]
        .split_whitespace()
        .nth(4)
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    let text = read_device(port, 3, "bessmon-sim-meter", None, &[]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("voltage_l1") && l.contains("230")),
        "{text}"
    );
    drop(guard);
}

/// Telegraf #8225, SunGather #40: single-session devices lock out other masters
/// while a connection stays open; `close_after_poll` releases it after each poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_after_poll_opens_one_connection_per_poll() {
    let clock = Arc::new(ManualClock::new(noon()));
    let (simulator, cancel) = simulator(clock.clone()).await;
    let site = simulator.sites[0].clone();
    let port = simulator.addrs[0].port();
    let keep = format!("{{ type = \"tcp\", host = \"127.0.0.1\", port = {port} }}");
    let close = format!(
        "{{ type = \"tcp\", host = \"127.0.0.1\", port = {port}, close_after_poll = true }}"
    );

    let cfg = TestConfig::new(&site_toml(
        "100ms",
        &device_toml("pcs", "bessmon-sim-pcs", 1, "1s", &keep),
    ));
    let mut polling = Polling::start_with_clock(&cfg, clock.clone());
    polling.collect_until("pcs", 5).await;
    polling.stop().await;
    assert_eq!(
        site.connections.load(Relaxed),
        1,
        "by default one connection serves every poll"
    );

    let cfg = TestConfig::new(&site_toml(
        "100ms",
        &device_toml("pcs", "bessmon-sim-pcs", 1, "1s", &close),
    ));
    let mut polling = Polling::start_with_clock(&cfg, clock.clone());
    let by = polling.collect_until("pcs", 5).await;
    polling.stop().await;
    assert!(by["pcs"].iter().all(|s| s.online && s.errors.is_empty()));
    assert!(
        site.connections.load(Relaxed) > 5,
        "a new connection per poll: {}",
        site.connections.load(Relaxed)
    );
    cancel.cancel();
}

/// `simulate --load`: a generic register server for load tests, read by
/// mbpoll at any unit id; each register is its address x 31 plus the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_server_answers_any_unit_and_address() {
    let clock = Arc::new(ManualClock::new(noon()));
    let cancel = CancellationToken::new();
    let s = sim::start_with(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        0,
        vec![SiteParams::standard(0)],
        clock.clone(),
        cancel.clone(),
        sim::SimProfiles {
            generic: true,
            ..sim::SimProfiles::bundled()
        },
    )
    .await
    .unwrap();
    let port = s.addrs[0].port();
    let second = noon().as_second() as u32;
    for unit in [1u8, 77, 247] {
        let words = mbpoll(port, unit, "4", 20).await;
        let expect: Vec<u16> = (0..20u32)
            .map(|a| a.wrapping_mul(31).wrapping_add(second) as u16)
            .collect();
        assert_eq!(words, expect, "unit {unit}");
    }
    clock.advance(jiff::SignedDuration::from_secs(1));
    let later = mbpoll(port, 9, "3", 4).await;
    assert_eq!(
        later[0],
        second.wrapping_add(1) as u16,
        "values move with the clock"
    );
    cancel.cancel();
}
