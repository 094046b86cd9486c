//! SIGHUP: `bessmon run` re-reads its configuration and applies what changed
//! (pollers of changed devices restarted, others untouched, ledger kept), or
//! keeps running on the old one and says why.
mod support;

use std::sync::atomic::Ordering::Relaxed;

use serde_json::Value;
use support::*;

/// A site `id` polling the simulator site on `port`: the listed devices.
fn site(id: &str, port: u16, devices: &[&str]) -> String {
    let t = format!("{{ type = \"tcp\", host = \"127.0.0.1\", port = {port} }}");
    let devs: String = devices
        .iter()
        .map(|d| {
            let unit = match *d {
                "pcs" => 1,
                "bms" => 2,
                _ => 3,
            };
            device_toml(d, &format!("bessmon-sim-{d}"), unit, "1s", &t)
        })
        .collect();
    sized_site_toml("200ms", 2000.0, 1000.0, &devs)
        .replace("id = \"lab\"", &format!("id = \"{id}\""))
}

fn hup(d: &Daemon) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &d.proc.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP");
}

fn lifetime_kwh(port: u16, site: &str) -> f64 {
    let (code, body) = http(
        "GET",
        port,
        &format!("/api/v1/sites/{site}/savings?period=lifetime"),
        "",
        None,
    );
    assert_eq!(code, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    r["total"]["charge_kwh"].as_f64().unwrap() + r["total"]["discharge_kwh"].as_f64().unwrap()
}

#[test]
fn a_reload_applies_what_changed_and_a_bad_one_changes_nothing() {
    let sim = simulator(3);
    let port = |k: usize| sim.sim.addrs[k].port();
    let cfg =
        TestConfig::new(&(site("a", port(0), &["pcs", "bms"]) + &site("b", port(1), &["pcs"])));
    let mut d = Daemon::start(&cfg.path);
    let http_port = d.http_port();
    wait_for_requests(&sim.sim.sites[0], 10, "site a's polls");
    wait_for_requests(&sim.sim.sites[1], 10, "site b's polls");
    let a_before = lifetime_kwh(http_port, "a");

    // b gains its BMS, c arrives; a is not touched.
    cfg.rewrite(
        &(site("a", port(0), &["pcs", "bms"])
            + &site("b", port(1), &["pcs", "bms"])
            + &site("c", port(2), &["pcs"])),
    );
    hup(&d);
    let line = d.wait_log("reloaded");
    assert!(
        line.contains("1 sites added") && line.contains("2 devices added"),
        "{line}"
    );
    assert!(
        line.contains("links started 1, stopped 0, restarted 1"),
        "{line}"
    );
    wait_for_requests(&sim.sim.sites[2], 10, "the new site c's polls");
    wait_for_requests(&sim.sim.sites[1], 10, "site b's polls after its restart");
    assert_eq!(
        sim.sim.sites[0].connections.load(Relaxed),
        1,
        "site a's connection was left alone"
    );
    assert_eq!(
        sim.sim.sites[1].connections.load(Relaxed),
        2,
        "site b's link restarted once"
    );
    let (_, sites) = http("GET", http_port, "/api/v1/sites", "", None);
    let sites: Value = serde_json::from_str(&sites).unwrap();
    let ids: Vec<&str> = sites
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert!(
        lifetime_kwh(http_port, "a") >= a_before,
        "a's ledger carried on"
    );

    // An invalid file: every error logged, nothing changes, polling goes on.
    let good = std::fs::read_to_string(&cfg.path).unwrap();
    std::fs::write(
        &cfg.path,
        good.replacen("capacity_kwh = 2000", "capacity_kwh = -1", 1),
    )
    .unwrap();
    hup(&d);
    let errors = d.wait_logs(&[
        "capacity_kwh: -1 must be a positive number",
        "reload refused (1 errors)",
    ]);
    assert!(errors[0].contains("ERROR"), "{errors:?}");
    wait_for_requests(
        &sim.sim.sites[2],
        10,
        "site c's polls after the refused reload",
    );

    // What cannot change while running is named, and refused.
    std::fs::write(
        &cfg.path,
        good.replace("[daemon]\n", "[daemon]\nsample_queue = 100\n"),
    )
    .unwrap();
    hup(&d);
    let line = d.wait_log("reload refused");
    assert!(
        line.contains("[daemon]") && line.contains("restart to apply"),
        "{line}"
    );
    assert_eq!(sim.sim.sites[0].connections.load(Relaxed), 1);
    assert_eq!(d.terminate(), Some(0), "SIGHUP never stopped it");
}
