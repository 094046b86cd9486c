//! The ledger survives SIGKILL: a daemon killed mid-run and restarted books the
//! same energy, to the watt-hour, as one that ran through, over the same counters.
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bessmon::clock::Clock;
use bessmon::sim::physics::Schedule;
use bessmon::sim::{self, SiteParams};
use jiff::Timestamp;
use support::*;
use tokio_util::sync::CancellationToken;

/// Simulated time that stands still or runs at real speed, never jumping: a jump
/// would look (correctly) like an implausible counter spike to the daemons.
#[derive(Debug)]
struct Freezable(Mutex<(Timestamp, Option<std::time::Instant>)>);

impl Clock for Freezable {
    fn now(&self) -> Timestamp {
        let (base, running) = *self.0.lock().unwrap();
        match running {
            Some(since) => base + jiff::SignedDuration::try_from(since.elapsed()).unwrap(),
            None => base,
        }
    }
}

impl Freezable {
    fn run(&self) {
        let now = self.now();
        *self.0.lock().unwrap() = (now, Some(std::time::Instant::now()));
    }
    fn freeze(&self) {
        let now = self.now();
        *self.0.lock().unwrap() = (now, None);
    }
}

fn start_daemon(cfg: &TestConfig) -> Daemon {
    let d = Daemon::start(&cfg.path);
    // Polling: all three devices answered.
    d.wait_logs(&["lab/pcs online", "lab/bms online", "lab/meter online"]);
    d
}

fn wait_for_requests(site: &bessmon::sim::SimSite, more: u64) {
    let target = site.requests.load(Relaxed) + more;
    while site.requests.load(Relaxed) < target {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lifetime(cfg: &TestConfig) -> serde_json::Value {
    let out = cli_c(
        "report",
        &cfg.path,
        &["--site", "lab", "--period", "lifetime", "--format", "json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn mwh(v: &serde_json::Value, key: &str) -> i64 {
    (v["total"][key].as_f64().unwrap() * 1e6).round() as i64
}

#[test]
fn sigkill_and_restart_lose_and_double_count_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let clock = Arc::new(Freezable(Mutex::new((Timestamp::now(), None))));
    // Charge at full power for the next half hour of local time: 1 MW, about 278 Wh a second.
    let local = Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap());
    let minute = local.hour() as u32 * 60 + local.minute() as u32;
    let params = || SiteParams {
        schedule: Schedule {
            charge: vec![(0, (minute + 30).min(1440))],
            discharge: vec![],
        },
        ..SiteParams::standard(0)
    };
    let cancel = CancellationToken::new();
    let simulator = rt
        .block_on(sim::start(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            0,
            vec![params(), params()],
            clock.clone(),
            cancel.clone(),
        ))
        .unwrap();
    let (sa, sb) = (simulator.sites[0].clone(), simulator.sites[1].clone());
    let start_wh = sa.site.lock().unwrap().state.charge_wh;
    assert_eq!(
        start_wh,
        sb.site.lock().unwrap().state.charge_wh,
        "two identical sites"
    );

    let config = |port: u16| {
        TestConfig::new(&sized_site_toml(
            "200ms",
            2000.0,
            1000.0,
            &sim_devices(port, "500ms"),
        ))
    };
    let (cfg_a, cfg_b) = (
        config(simulator.addrs[0].port()),
        config(simulator.addrs[1].port()),
    );
    let a = start_daemon(&cfg_a);
    let b = start_daemon(&cfg_b);

    // Let the counters run; kill B without warning part-way, restart it, run on.
    clock.run();
    std::thread::sleep(Duration::from_secs(2));
    let Daemon {
        proc: mut b_proc, ..
    } = b;
    b_proc.0.kill().unwrap(); // SIGKILL
    b_proc.0.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let b = start_daemon(&cfg_b);
    std::thread::sleep(Duration::from_secs(2));

    // Stop the counters; make sure both daemons have read the final values.
    clock.freeze();
    wait_for_requests(&sa, 12);
    wait_for_requests(&sb, 12);
    for d in [&a, &b] {
        assert!(Command::new("kill")
            .args(["-TERM", &d.proc.0.id().to_string()])
            .status()
            .unwrap()
            .success());
    }
    let (mut a, mut b) = (a, b);
    assert_eq!(a.proc.0.wait().unwrap().code(), Some(0));
    assert_eq!(b.proc.0.wait().unwrap().code(), Some(0));

    // The registers hold whole Wh; the two sites' physics agree to far better than that.
    let end_wh = sa.site.lock().unwrap().state.charge_wh;
    assert_eq!(
        end_wh.floor(),
        sb.site.lock().unwrap().state.charge_wh.floor()
    );
    let (ra, rb) = (lifetime(&cfg_a), lifetime(&cfg_b));
    let (ca, cb) = (mwh(&ra, "charge_kwh"), mwh(&rb, "charge_kwh"));
    assert_eq!(
        ca, cb,
        "interrupted and uninterrupted ledgers agree to the mWh"
    );
    assert_eq!(mwh(&ra, "discharge_kwh"), mwh(&rb, "discharge_kwh"));
    // And both equal what the counters moved (whole Wh as the registers show them).
    let moved_wh = end_wh.floor() as i64 - start_wh.floor() as i64;
    assert_eq!(
        ca,
        moved_wh * 1000,
        "ledger {ca} mWh vs counters {moved_wh} Wh"
    );
    assert!(moved_wh > 500, "the test moved real energy: {moved_wh} Wh");
    cancel.cancel();
}
