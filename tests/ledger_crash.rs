//! The ledger survives SIGKILL: a daemon killed mid-run and restarted books the
//! same energy, to the watt-hour, as one that ran through, over the same counters.
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bessmon::sim::physics::Schedule;
use bessmon::sim::{self, SiteParams};
use jiff::Timestamp;
use support::*;
use tokio_util::sync::CancellationToken;

fn start_daemon(cfg: &TestConfig) -> Daemon {
    let d = Daemon::start(&cfg.path);
    // Polling: all three devices answered.
    d.wait_logs(&["lab/pcs online", "lab/bms online", "lab/meter online"]);
    d
}

fn mwh(v: &serde_json::Value, key: &str) -> i64 {
    (v["total"][key].as_f64().unwrap() * 1e6).round() as i64
}

/// Two identical simulated sites charging at full power (1 MW, about 278 Wh a
/// second) on a shared clock, and a daemon config for each.
struct ChargingPair {
    _rt: tokio::runtime::Runtime,
    _simulator: bessmon::sim::Simulator,
    clock: Arc<Freezable>,
    cancel: CancellationToken,
    sa: Arc<bessmon::sim::SimSite>,
    sb: Arc<bessmon::sim::SimSite>,
    start_wh: f64,
    cfg_a: TestConfig,
    cfg_b: TestConfig,
}

fn charging_pair() -> ChargingPair {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let clock = Arc::new(Freezable::at(Timestamp::now()));
    // Charge for the next half hour of local time.
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
    ChargingPair {
        cfg_a: config(simulator.addrs[0].port()),
        cfg_b: config(simulator.addrs[1].port()),
        _rt: rt,
        _simulator: simulator,
        clock,
        cancel,
        sa,
        sb,
        start_wh,
    }
}

/// Freezes the counters, lets both daemons read the final values, stops them
/// with SIGTERM and checks they exit 0.
fn freeze_and_stop(p: &ChargingPair, a: Daemon, b: Daemon) {
    p.clock.freeze();
    wait_for_requests(&p.sa, 12, "daemon A to read the final values");
    wait_for_requests(&p.sb, 12, "daemon B to read the final values");
    for mut d in [a, b] {
        assert_eq!(d.terminate(), Some(0));
    }
}

#[test]
fn sigkill_and_restart_lose_and_double_count_nothing() {
    let p = charging_pair();
    let ChargingPair {
        clock,
        sa,
        sb,
        start_wh,
        cfg_a,
        cfg_b,
        ..
    } = &p;
    let start_wh = *start_wh;
    let a = start_daemon(cfg_a);
    let b = start_daemon(cfg_b);

    // Let the counters run; kill B without warning part-way, restart it, run on.
    clock.run();
    wait_for_requests(sb, 30, "B's polls before the kill");
    let Daemon {
        proc: mut b_proc, ..
    } = b;
    b_proc.0.kill().unwrap(); // SIGKILL
    b_proc.0.wait().unwrap();
    wait_for_requests(sa, 30, "the counters running on while B is down");
    let b = start_daemon(cfg_b);
    wait_for_requests(sb, 30, "B's polls after its restart");

    // Stop the counters; make sure both daemons have read the final values.
    freeze_and_stop(&p, a, b);

    // The registers hold whole Wh; the two sites' physics agree to far better than that.
    let end_wh = sa.site.lock().unwrap().state.charge_wh;
    assert_eq!(
        end_wh.floor(),
        sb.site.lock().unwrap().state.charge_wh.floor()
    );
    let (ra, rb) = (lifetime_report(cfg_a), lifetime_report(cfg_b));
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
    p.cancel.cancel();
}

/// A simulator whose every reply carries one random word (a noisy RS-485 line,
/// a gateway mixing up buffers): the daemon keeps running and books what a
/// clean daemon reading the same physics books, give or take one undetectable
/// glitch (a low word that lands within a poll's plausible energy).
#[test]
fn garbage_registers_are_neither_booked_nor_fatal() {
    let p = charging_pair();
    p.sb.faults.garbage_every.store(1, Relaxed);
    let a = start_daemon(&p.cfg_a);
    let b = start_daemon(&p.cfg_b);
    p.clock.run();
    // Run long enough for many polls (5 a second, about 20 requests a second
    // for the three devices) with garbage in every reply: about 6 s, 1.7 kWh.
    wait_for_requests(&p.sb, 200, "200 requests with garbage");
    freeze_and_stop(&p, a, b);

    let moved_wh =
        p.sa.site.lock().unwrap().state.charge_wh.floor() as i64 - p.start_wh.floor() as i64;
    let (ra, rb) = (lifetime_report(&p.cfg_a), lifetime_report(&p.cfg_b));
    assert_eq!(
        mwh(&ra, "charge_kwh"),
        moved_wh * 1000,
        "the clean daemon is exact"
    );
    // One 200 ms poll at 1.5 x 1 MW is 83 Wh: a glitch inside that is indistinguishable from flow.
    let tolerance = 200_000;
    for key in ["charge_kwh", "discharge_kwh"] {
        let (ca, cb) = (mwh(&ra, key), mwh(&rb, key));
        assert!(
            (ca - cb).abs() <= tolerance,
            "{key}: clean {ca} mWh, with garbage {cb} mWh"
        );
    }
    // Far more energy than the tolerance, or the comparison above proves nothing.
    assert!(moved_wh > 800, "the test moved real energy: {moved_wh} Wh");
    p.cancel.cancel();
}
