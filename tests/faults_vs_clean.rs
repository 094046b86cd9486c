//! The daemon against a simulator showing every fault it can (dropped
//! connections, corrupted registers, a counter reset, a silent PCS across a
//! tariff boundary) beside a daemon reading a clean simulator of identical
//! physics on one clock: no band may read higher than the clean run's, and
//! what the faulty run lacks is what it reports as unattributed or
//! quarantined (less what a reset hides, at most one poll's energy).
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bessmon::clock::{Clock, SharedClock};
use bessmon::sim::physics::Schedule;
use bessmon::sim::{self, SiteParams};
use jiff::Timestamp;
use serde_json::Value;
use support::*;
use tokio_util::sync::CancellationToken;

/// One 200 ms poll at 1.5 x 1 MW, in mWh: the most energy a single poll can
/// hide (a reset) or a corrupted low word can pass for.
const ONE_POLL_MWH: i64 = 83_334;

fn wait_until(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !done() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mwh(v: &Value) -> i64 {
    (v.as_f64().unwrap_or(0.0) * 1e6).round() as i64
}

#[test]
fn faults_never_raise_a_band_and_what_they_cost_is_reported() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    // Seconds before the valley gives way to the flat band at 08:00.
    let start = jiff::civil::datetime(2025, 3, 10, 7, 59, 56, 0)
        .to_zoned(tz.clone())
        .unwrap()
        .timestamp();
    let clock = Arc::new(Freezable::at(start));
    let params = || SiteParams {
        schedule: Schedule {
            charge: vec![(0, 600)],
            discharge: vec![],
        },
        ..SiteParams::standard(0)
    };
    let cancel = CancellationToken::new();
    let shared: SharedClock = clock.clone();
    let simulator = rt
        .block_on(sim::start(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            0,
            vec![params(), params()],
            shared.clone(),
            cancel.clone(),
        ))
        .unwrap();
    let (clean, faulty) = (simulator.sites[0].clone(), simulator.sites[1].clone());
    // The clean run's readings are never far apart; the faulty run treats a
    // second without readings across a boundary as a gap.
    let config = |port: u16, gap: &str| {
        TestConfig::new(
            &sized_site_toml("200ms", 2000.0, 1000.0, &sim_devices(port, "150ms")).replacen(
                "\npoll_interval",
                &format!("\nmax_attribution_gap = \"{gap}\"\npoll_interval"),
                1,
            ),
        )
    };
    let (cfg_a, cfg_b) = (
        config(simulator.addrs[0].port(), "30s"),
        config(simulator.addrs[1].port(), "1s"),
    );
    faulty.faults.drop_every.store(23, Relaxed);
    faulty.faults.garbage_every.store(7, Relaxed);

    let stop = CancellationToken::new();
    let daemons: Vec<_> = [&cfg_a, &cfg_b]
        .into_iter()
        .map(|cfg| {
            let v = bessmon::cli::load_config(Some(&cfg.path))
                .unwrap_or_else(|f| panic!("{:?}", f.lines));
            let (clock, stop) = (shared.clone(), stop.clone());
            rt.spawn(async move { bessmon::daemon::run(&v, clock, stop, Default::default()).await })
        })
        .collect();
    wait_for_requests(&clean, 9, "the clean daemon's first polls");
    wait_for_requests(&faulty, 9, "the faulty daemon's first polls");

    clock.run();
    let at = |h: i8, m: i8, s: i8| {
        jiff::civil::datetime(2025, 3, 10, h, m, s, 0)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp()
    };
    let c = clock.clone();
    let reached = |t: Timestamp| {
        let c = c.clone();
        move || c.now() >= t
    };
    // The PCS falls silent from 07:59:58 to 08:00:02: four seconds across the boundary.
    wait_until("07:59:58", Duration::from_secs(10), reached(at(7, 59, 58)));
    faulty.faults.silent_unit.store(1, Relaxed);
    wait_until("08:00:02", Duration::from_secs(10), reached(at(8, 0, 2)));
    faulty.faults.silent_unit.store(0, Relaxed);
    wait_until("08:00:04", Duration::from_secs(10), reached(at(8, 0, 4)));
    faulty.faults.reset_counters.store(true, Relaxed);
    wait_until("08:00:09", Duration::from_secs(10), reached(at(8, 0, 9)));
    // Let both read the final values without garbage, then stop.
    faulty.faults.garbage_every.store(0, Relaxed);
    clock.freeze();
    wait_for_requests(&clean, 12, "the clean daemon to read the final values");
    wait_for_requests(&faulty, 12, "the faulty daemon to read the final values");
    stop.cancel();
    for d in daemons {
        rt.block_on(d).unwrap().unwrap();
    }
    cancel.cancel();

    let (a, b) = (lifetime_report(&cfg_a), lifetime_report(&cfg_b));
    let moved =
        (clean.site.lock().unwrap().state.charge_wh - params().counter_offset_wh as f64) as i64;
    assert!(moved > 1500, "the test moved real energy: {moved} Wh");
    assert!(
        mwh(&a["unattributed"]["charge_kwh"]) == 0,
        "the clean run attributes everything: {a}"
    );
    for band in ["valley", "flat"] {
        for kind in ["charge_kwh", "discharge_kwh"] {
            let (ca, cb) = (mwh(&a["bands"][band][kind]), mwh(&b["bands"][band][kind]));
            assert!(
                cb <= ca + ONE_POLL_MWH,
                "{band} {kind}: faulty {cb} mWh above clean {ca} mWh"
            );
        }
    }
    let unattributed = mwh(&b["unattributed"]["charge_kwh"]);
    assert!(
        unattributed > 0,
        "the silence across 08:00 is unattributed: {b}"
    );
    assert_eq!(b["unattributed"]["intervals"], 1, "{}", b["unattributed"]);
    let missing = mwh(&a["total"]["charge_kwh"]) - mwh(&b["total"]["charge_kwh"]);
    let reported = unattributed + mwh(&b["quarantined_kwh"]);
    // The reset hid what flowed between the last reading and the reset: unknown,
    // reported with its upper bound.
    let hidden_max = mwh(&b["unattributed"]["hidden_charge_max_kwh"]);
    assert_eq!(
        b["unattributed"]["hidden_intervals"], 1,
        "the reset's span is reported: {b}"
    );
    // Each undetectable corrupted word can pass for one poll's energy.
    let slack = 2 * ONE_POLL_MWH;
    assert!(
        missing >= reported - slack && missing <= reported + hidden_max + slack,
        "faulty run lacks {missing} mWh; reports {unattributed} unattributed, {} quarantined, up to {hidden_max} hidden",
        mwh(&b["quarantined_kwh"])
    );
    // The money bounds hold the clean run's figure.
    let savings_a = a["total"]["savings"].as_f64().unwrap();
    let range = &b["savings_range"];
    assert!(
        range[0].as_f64().unwrap() - 1e-9 <= savings_a
            && savings_a <= range[1].as_f64().unwrap() + 1e-9,
        "clean savings {savings_a} outside the faulty run's range {range}"
    );
    assert!(
        b["counter_gaps"].as_array().is_some_and(|g| !g.is_empty()),
        "the gap is reported: {b}"
    );
}
