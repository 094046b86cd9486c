//! The chaos soak: the simulator, Mosquitto, VictoriaMetrics and a daemon
//! under faults injected at random moments from a fixed seed (broker and
//! database restarts, SIGKILL and restart of the daemon, SIGHUP, a stalled
//! gateway), tallied exactly from what the sinks hold at the end:
//!
//! - every poll leaves a `bess_status` point with its poll number, so within
//!   a daemon run a missing number is a lost point, and every poll that
//!   answered must have its `bess_telemetry` point at the same timestamp;
//! - every telemetry point must have reached a persistent-session QoS 1
//!   subscriber as a state message, and every state message must be stored;
//! - the ledger must equal, within one counter step (1 Wh), that of a clean
//!   daemon polling the same simulated battery directly, without faults. The
//!   battery is idle when both start and when both stop, so both books
//!   cover all the energy that moved.
//!
//! A poll whose sample had not reached the spool when the daemon was killed
//! leaves no trace and is not counted: it was never collected.
//!
//! `SOAK_MINUTES` (default 2) sets the length, `SOAK_SEED` the faults' seed; `scripts/soak.sh --minutes N`
//! runs it on its own and ends with the tally line.
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SEED: u64 = 0x5EED_B355;
const DEVICES: [&str; 3] = ["pcs", "bms", "meter"];

/// A TCP forwarder whose replies can be held back: a gateway that stalls.
struct Stallable {
    port: u16,
    stalled: Arc<AtomicBool>,
    _rt: tokio::runtime::Runtime,
}

async fn forward(client: TcpStream, upstream: SocketAddr, stalled: Arc<AtomicBool>) {
    let Ok(up) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = up.into_split();
    let requests = async move {
        let mut buf = [0u8; 512];
        while let Ok(n @ 1..) = cr.read(&mut buf).await {
            if uw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let replies = async move {
        let mut buf = [0u8; 512];
        while let Ok(n @ 1..) = ur.read(&mut buf).await {
            while stalled.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::select! { _ = requests => {}, _ = replies => {} }
}

fn stallable(upstream: SocketAddr) -> Stallable {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let stalled = Arc::new(AtomicBool::new(false));
    let s = stalled.clone();
    rt.spawn(async move {
        while let Ok((c, _)) = listener.accept().await {
            tokio::spawn(forward(c, upstream, s.clone()));
        }
    });
    Stallable {
        port,
        stalled,
        _rt: rt,
    }
}

/// Minutes of the local day, split where they cross midnight.
fn minutes(from: u32, to: u32) -> Vec<(u32, u32)> {
    if to <= 1440 {
        vec![(from, to)]
    } else if from >= 1440 {
        vec![(from - 1440, to - 1440)]
    } else {
        vec![(from, 1440), (0, to - 1440)]
    }
}

fn soak_minutes() -> u32 {
    std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .filter(|m| *m >= 2)
        .unwrap_or(2)
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    RestartBroker,
    RestartDatabase,
    KillDaemon,
    Reload,
    StallGateway,
}

/// (timestamp ms, value) of `series` for one device of the lab site.
fn points(vm: &VictoriaMetrics, series: &str) -> HashMap<String, Vec<(i64, f64)>> {
    let mut out: HashMap<String, Vec<(i64, f64)>> = HashMap::new();
    for (labels, mut pts) in vm.export(series) {
        if labels["site"] != "lab" {
            continue;
        }
        let dev = labels["device"].as_str().unwrap_or_default().to_string();
        out.entry(dev).or_default().append(&mut pts);
    }
    for v in out.values_mut() {
        v.sort_by_key(|p| p.0);
    }
    out
}

fn books(cfg: &TestConfig) -> (f64, f64) {
    let r = lifetime_report(cfg);
    let kwh = |k: &str| {
        r["total"][k].as_f64().unwrap_or(f64::NAN) + r["unattributed"][k].as_f64().unwrap_or(0.0)
    };
    (kwh("charge_kwh"), kwh("discharge_kwh"))
}

/// What the sinks hold, counted: (losses by where they were found,
/// duplicates, polls). Telemetry against status run by run, then the
/// subscriber's messages against what was stored.
fn tally(
    vm: &VictoriaMetrics,
    received: &Received,
) -> (BTreeMap<&'static str, Vec<String>>, u64, u64) {
    let status_seq = points(vm, "bess_status_seq");
    let status_online = points(vm, "bess_status_online");
    let telemetry = points(vm, "bess_telemetry_seq");
    // Where each loss was found, for the report.
    let mut losses: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut duplicates = 0u64;
    let mut polls = 0u64;
    let mut stored: HashMap<String, BTreeSet<i64>> = HashMap::new();
    for dev in DEVICES {
        let seqs = status_seq.get(dev).cloned().unwrap_or_default();
        assert!(!seqs.is_empty(), "no status points of lab/{dev}");
        let online: HashMap<i64, f64> = status_online
            .get(dev)
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        let tel: Vec<i64> = telemetry
            .get(dev)
            .map(|v| v.iter().map(|p| p.0).collect())
            .unwrap_or_default();
        let tel_set: BTreeSet<i64> = tel.iter().copied().collect();
        duplicates += (tel.len() - tel_set.len()) as u64;
        let mut runs: Vec<Vec<(i64, u64)>> = Vec::new();
        let mut seen_ts = BTreeSet::new();
        for &(ts, seq) in &seqs {
            if !seen_ts.insert(ts) {
                duplicates += 1;
                continue;
            }
            let seq = seq as u64;
            match runs.last_mut() {
                Some(run) if run.last().is_some_and(|(_, s)| seq > *s) => run.push((ts, seq)),
                _ => runs.push(vec![(ts, seq)]),
            }
        }
        for run in &runs {
            let max = run.last().map(|p| p.1).unwrap_or(0);
            // Numbers from 1 to the last stored: each missing one was lost.
            let have: BTreeSet<u64> = run.iter().map(|p| p.1).collect();
            for missing in (1..=max).filter(|s| !have.contains(s)) {
                losses
                    .entry("status")
                    .or_default()
                    .push(format!("{dev} poll {missing} of the run from {}", run[0].0));
            }
            polls += max;
            for (ts, _) in run {
                if online.get(ts).copied() == Some(1.0) && !tel_set.contains(ts) {
                    losses
                        .entry("telemetry")
                        .or_default()
                        .push(format!("{dev} at {ts}"));
                }
            }
        }
        stored.insert(dev.to_string(), tel_set);
    }

    // The subscriber's messages against what was stored.
    let mut heard: HashMap<String, Vec<i64>> = HashMap::new();
    for (topic, payload, _) in received.lock().unwrap().iter() {
        let dev = topic.split('/').nth(2).unwrap_or_default().to_string();
        let v: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
        if let Some(ts) = v["ts"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            heard.entry(dev).or_default().push(ts.as_millisecond());
        }
    }
    for dev in DEVICES {
        let got = heard.remove(dev).unwrap_or_default();
        let unique: BTreeSet<i64> = got.iter().copied().collect();
        duplicates += (got.len() - unique.len()) as u64;
        let stored = &stored[dev];
        for ts in stored.difference(&unique) {
            losses
                .entry("mqtt")
                .or_default()
                .push(format!("{dev} at {ts}"));
        }
        for ts in unique.difference(stored) {
            losses
                .entry("influxdb")
                .or_default()
                .push(format!("{dev} at {ts}"));
        }
    }

    (losses, duplicates, polls)
}

#[test]
fn chaos_soak_loses_nothing_and_books_what_a_clean_run_books() {
    let n = soak_minutes();
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let mut rng = fastrand::Rng::with_seed(seed);

    // Idle until the next whole minute (at least 20 s away), then charging and
    // discharging, then idle again for the last minute of the soak.
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let local = jiff::Timestamp::now().to_zoned(tz);
    let now_min = local.hour() as u32 * 60 + local.minute() as u32;
    let first = now_min + if local.second() > 40 { 2 } else { 1 };
    let active = n - 1;
    let half = (active / 2).max(1);
    let schedule = bessmon::sim::physics::Schedule {
        charge: minutes(first, first + half),
        discharge: if active > half {
            minutes(first + half, first + active)
        } else {
            Vec::new()
        },
    };
    let idle_again = {
        let start_of_minute = local
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .unwrap()
            .timestamp();
        let m = (first + active - now_min) as i64;
        start_of_minute + jiff::SignedDuration::from_mins(m)
    };
    let sim = simulator_with(vec![bessmon::sim::SiteParams {
        schedule,
        tariff: None,
        ..bessmon::sim::SiteParams::standard(0)
    }]);
    let gateway = stallable(sim.sim.addrs[0]);
    let mut broker = Mosquitto::start();
    let mut vm = VictoriaMetrics::start();

    let site = |port: u16| sized_site_toml("1s", 2000.0, 1000.0, &sim_devices(port, "500ms"));
    let chaos_cfg = TestConfig::new(&format!(
        "{}\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nqos = 1\n\
         [influxdb]\nurl = \"http://127.0.0.1:{}\"\napi = \"v2\"\norg = \"ops\"\nbucket = \"bess\"\nflush_interval = \"200ms\"\n",
        site(gateway.port),
        broker.port,
        vm.port
    ));
    let clean_cfg = TestConfig::new(&site(sim.sim.addrs[0].port()));
    let (received, _sub) = subscribe(broker.port, "soak-subscriber", "bessmon/lab/+/state", None);
    let mut chaos = Daemon::start(&chaos_cfg.path);
    let clean = Daemon::start(&clean_cfg.path);
    chaos.wait_logs(&["lab/pcs online", "lab/bms online", "lab/meter online"]);
    clean.wait_logs(&["lab/pcs online", "lab/bms online", "lab/meter online"]);

    // Faults until the battery is idle again.
    let mut faults = 0;
    let mut kinds: BTreeMap<String, u32> = BTreeMap::new();
    let mut round: Vec<Fault> = Vec::new();
    let mut logs: Vec<String> = Vec::new();
    while jiff::Timestamp::now() < idle_again {
        std::thread::sleep(Duration::from_millis(rng.u64(3_000..9_000)));
        if jiff::Timestamp::now() >= idle_again {
            break;
        }
        // Every kind once per round of five, in a random order.
        if round.is_empty() {
            round = vec![
                Fault::RestartBroker,
                Fault::RestartDatabase,
                Fault::KillDaemon,
                Fault::Reload,
                Fault::StallGateway,
            ];
            rng.shuffle(&mut round);
        }
        let fault = round.pop().expect("refilled above");
        let down = Duration::from_millis(rng.u64(500..4_000));
        match fault {
            Fault::RestartBroker => {
                broker.stop();
                std::thread::sleep(down);
                broker.resume();
            }
            Fault::RestartDatabase => {
                vm.stop();
                std::thread::sleep(down);
                vm.resume();
            }
            Fault::KillDaemon => {
                logs.extend(chaos.kill_and_collect());
                std::thread::sleep(down);
                chaos = Daemon::start(&chaos_cfg.path);
            }
            Fault::Reload => {
                let pid = chaos.proc.0.id().to_string();
                let ok = std::process::Command::new("kill")
                    .args(["-HUP", &pid])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "SIGHUP to the daemon");
            }
            Fault::StallGateway => {
                gateway.stalled.store(true, Ordering::Relaxed);
                std::thread::sleep(down);
                gateway.stalled.store(false, Ordering::Relaxed);
            }
        }
        faults += 1;
        *kinds.entry(format!("{fault:?}")).or_default() += 1;
        eprintln!(
            "soak: fault {faults} {fault:?} for {down:?}, ended at {}",
            jiff::Timestamp::now().as_millisecond()
        );
    }
    // Both daemons read the idle battery at least twice more.
    let pcs_polls = |d: &Daemon| {
        d.metric("bessmon_polls_total{site=\"lab\",device=\"pcs\"}")
            .unwrap_or(0.0)
    };
    let (chaos_at, clean_at) = (pcs_polls(&chaos), pcs_polls(&clean));
    wait_for(
        "two more polls of the idle battery by both daemons",
        60,
        || pcs_polls(&chaos) >= chaos_at + 2.0 && pcs_polls(&clean) >= clean_at + 2.0,
    );

    // Everything spooled is delivered before the daemon stops.
    wait_for("the chaos daemon's spool to drain", 120, || {
        ["mqtt", "influxdb"]
            .iter()
            .map(|s| {
                chaos
                    .metric(&format!("bessmon_spool_entries{{sink=\"{s}\"}}"))
                    .unwrap_or(f64::NAN)
            })
            .sum::<f64>()
            == 0.0
    });
    let (code, last) = chaos.finish();
    logs.extend(last);
    assert_eq!(code, Some(0), "the chaos daemon stops cleanly");
    let (code, _) = clean.finish();
    assert_eq!(code, Some(0), "the clean daemon stops cleanly");

    // VictoriaMetrics makes the last writes searchable within seconds, even
    // after a forced flush: count again until nothing is missing or 30 s
    // have passed, and report what is still missing then.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut losses, duplicates, polls) = loop {
        let t = tally(&vm, &received);
        if t.0.is_empty() || Instant::now() >= deadline {
            break t;
        }
        std::thread::sleep(Duration::from_secs(1));
    };

    let (chaos_charge, chaos_discharge) = books(&chaos_cfg);
    let (clean_charge, clean_discharge) = books(&clean_cfg);
    let diff_wh =
        ((chaos_charge - clean_charge).abs() + (chaos_discharge - clean_discharge).abs()) * 1000.0;
    assert!(
        clean_charge > 1.0,
        "the clean run booked {clean_charge} kWh of charge: the battery did not move"
    );

    // Lines InfluxDB refused as bad data are kept apart, never lost silently;
    // in a soak nothing is bad, so each is a loss.
    let dead = chaos_cfg.dir.path().join("state/influxdb-dead-letter");
    for f in std::fs::read_dir(&dead).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap_or_default();
        for l in text.lines().filter(|l| l.contains("site=lab")) {
            losses
                .entry("dead-lettered")
                .or_default()
                .push(l.chars().take(120).collect());
        }
    }
    let lost: u64 = losses.values().map(|v| v.len() as u64).sum();
    if lost > 0 {
        let keep =
            std::env::temp_dir().join(format!("bessmon-soak-{seed}-{}.log", std::process::id()));
        let _ = std::fs::write(&keep, logs.join("\n"));
        eprintln!("soak: the chaos daemon's log is in {}", keep.display());
        for l in logs
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        {
            eprintln!("soak: daemon said: {l}");
        }
    }
    eprintln!(
        "soak: {n} min, seed {seed}, {polls} polls, faults {kinds:?}; charge {chaos_charge} kWh vs {clean_charge} kWh clean, discharge {chaos_discharge} vs {clean_discharge}; lost {losses:?}"
    );
    println!(
        "soak: faults={faults} lost={lost} duplicates={duplicates} ledger_diff_wh={}",
        diff_wh.round()
    );
    assert!(faults >= 3, "only {faults} faults were injected");
    assert_eq!(lost, 0, "points were lost");
    assert!(
        diff_wh <= 1.0,
        "the ledger differs from the clean run's by {diff_wh} Wh"
    );
}
