//! The state directory's disk fills up (a 16 MiB tmpfs mounted by the test,
//! where the machine allows mounting): the daemon keeps polling, says so
//! loudly, loses no committed ledger data, and once space returns, commits
//! and delivers again, its books equal to those of a daemon whose disk never
//! filled.
mod support;

use support::*;

fn charge_kwh(cfg: &TestConfig) -> f64 {
    let r = lifetime_report(cfg);
    r["total"]["charge_kwh"].as_f64().unwrap() + r["unattributed"]["charge_kwh"].as_f64().unwrap()
}

#[test]
fn a_full_disk_stops_nothing_loses_nothing_committed_and_heals() {
    let sim = charging_site();
    let broker = Mosquitto::start();
    let cfg = TestConfig::new(&format!(
        "{}\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n",
        sized_site_toml(
            "500ms",
            2000.0,
            1000.0,
            &sim_devices(sim.sim.addrs[0].port(), "1s")
        ),
        broker.port
    ));
    let state = cfg.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let _fs = Tmpfs::mount(&state, "16m");
    let clean = sim_site_config(&sim);
    let clean_daemon = Daemon::start(&clean.path);
    let d = Daemon::start(&cfg.path);
    d.wait_logs(&["lab/pcs online"]);
    clean_daemon.wait_logs(&["lab/pcs online"]);
    let commits = |d: &Daemon| {
        d.metric("bessmon_ledger_commit_failures_total")
            .unwrap_or(0.0)
    };
    let polls = |d: &Daemon| {
        d.metric("bessmon_polls_total{site=\"lab\",device=\"pcs\"}")
            .unwrap_or(0.0)
    };
    let delivered = |d: &Daemon| {
        d.metric("bessmon_sink_written_total{sink=\"mqtt\"}")
            .unwrap_or(0.0)
    };
    wait_for("the first messages delivered", 30, || delivered(&d) > 5.0);

    // Fill the disk to the last byte.
    let filler = state.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 << 10];
    loop {
        use std::io::Write;
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
    let full_at = polls(&d);
    // Loudly: an error in the log, and the failures counted.
    let line = d.wait_log("No space left");
    assert!(line.contains("ERROR"), "logged as an error: {line}");
    wait_for("a ledger commit failure counted", 30, || commits(&d) >= 1.0);
    // Polling goes on.
    wait_for("ten more polls on a full disk", 30, || {
        polls(&d) >= full_at + 10.0
    });
    let (code, body) = http("GET", d.http_port(), "/healthz", "", None);
    assert_eq!(
        code, 200,
        "a full disk is not ill health, restarting would not free space: {body}"
    );

    // Space returns: commits and deliveries resume.
    drop(f);
    std::fs::remove_file(&filler).unwrap();
    let sent = delivered(&d);
    wait_for("deliveries resumed", 60, || delivered(&d) > sent + 5.0);
    // Both files were reopened (the ledger's at its next commit); the last
    // commit, at shutdown, succeeds (the exit code says so).
    d.wait_logs(&[
        "spool.redb: reopened after an I/O error",
        "ledger.redb: reopened after an I/O error",
    ]);
    let (code, _) = d.finish();
    assert_eq!(code, Some(0));
    let (code, _) = clean_daemon.finish();
    assert_eq!(code, Some(0));
    let (full, clean_books) = (charge_kwh(&cfg), charge_kwh(&clean));
    assert!(clean_books > 0.5, "the battery charged: {clean_books} kWh");
    // The two daemons stopped a moment apart while charging at 1 MW.
    assert!(
        (full - clean_books).abs() < 0.5,
        "books after a full disk {full} kWh, without {clean_books} kWh"
    );
}
