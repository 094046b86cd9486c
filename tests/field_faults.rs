//! The faults every real site has, replayed through `bessmon replay` as an
//! operator would, each against the true figures of its history
//! (tests/data/field/generate.py writes the histories).
mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::*;

/// The Chongqing lab site polled every minute: the attribution gap is 3 minutes.
fn site(extra: &str) -> TestConfig {
    let toml = sized_site_toml("1m", 2000.0, 1000.0, &sim_devices(5020, "500ms")).replacen(
        "\npoll_interval",
        &format!("\n{extra}poll_interval"),
        1,
    );
    TestConfig::new(&toml)
}

fn replay(cfg: &TestConfig, csv: &str, extra: &[&str]) -> (Value, String, Output) {
    let out = Command::new(bin())
        .args(["replay", "-c"])
        .arg(&cfg.path)
        .args(["--site", "lab", "--csv"])
        .arg(data_dir().join("field").join(csv))
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{csv}: {stderr}");
    let json = if extra.contains(&"json") {
        serde_json::from_slice(&out.stdout).unwrap()
    } else {
        Value::Null
    };
    (json, stderr, out)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// A Chongqing tariff with a demand charge, so demand shows.
fn with_demand(cfg: &TestConfig) -> String {
    let text = bessmon::bundled::tariff("cn-chongqing-ci-2025-02")
        .unwrap()
        .replacen(
            "\n[[seasons]]",
            "\ndemand_charge = { price_per_kw_month = 30.0 }\n\n[[seasons]]",
            1,
        );
    let path = cfg.dir.path().join("cn-chongqing-ci-2025-02.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn an_outage_across_bands_is_unattributed_with_bounds_not_spread() {
    let cfg = site("");
    for csv in ["case1-outage.csv", "case1-outage-two-gaps.csv"] {
        let (r, _, _) = replay(&cfg, csv, &["--format", "json"]);
        let b = &r["bands"];
        assert!(close(f(&b["valley"]["charge_kwh"]), 1750.0), "{csv}: {b}");
        assert!(close(f(&b["peak"]["discharge_kwh"]), 500.0), "{csv}: {b}");
        for band in ["flat", "critical"] {
            assert!(
                b.get(band).is_none(),
                "{csv}: nothing is spread into {band}: {b}"
            );
        }
        assert!(close(f(&b["valley"]["discharge_kwh"]), 0.0), "{csv}: {b}");
        let u = &r["unattributed"];
        assert!(close(f(&u["charge_kwh"]), 250.0), "{csv}: {u}");
        assert!(close(f(&u["discharge_kwh"]), 500.0), "{csv}: {u}");
        assert_eq!(u["intervals"], 1, "{csv}: {u}");
        assert!(
            close(f(&r["total"]["savings"]), -97.0455),
            "{csv}: {}",
            r["total"]
        );
        let range = &r["savings_range"];
        assert!(close(f(&range[0]), -190.71825), "{csv}: {range}");
        assert!(close(f(&range[1]), 374.691), "{csv}: {range}");
        let i = &r["unattributed_intervals"][0];
        assert_eq!(i["from"], "2025-03-10T07:00:00+08:00");
        assert_eq!(i["to"], "2025-03-10T12:00:00+08:00");
        // Efficiency counts all energy: its amount is known, only its band is not.
        assert!(
            close(f(&r["round_trip_efficiency"]), 1000.0 / 2000.0),
            "{r}"
        );
        // The gap is reported per device and day.
        let gaps = r["counter_gaps"].as_array().unwrap();
        assert!(
            gaps.iter().any(|g| g["counter"] == "charge_energy_total"
                && g["device"] == "csv"
                && close(f(&g["longest_s"]), 5.0 * 3600.0)),
            "{csv}: {gaps:?}"
        );
    }
    // The table says how much is unattributed and why, money rounded to the fen.
    let (_, _, out) = replay(&cfg, "case1-outage.csv", &["--period", "2025-03-10"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("unattributed         charge 250.000 kWh, discharge 500.000 kWh"),
        "{table}"
    );
    assert!(table.contains("attribution gap"), "{table}");
    assert!(
        table.contains("savings range        -190.72 to 374.69 CNY"),
        "{table}"
    );
}

#[test]
fn an_idle_counter_that_jumps_is_quarantined_not_booked() {
    let cfg = site("");
    // 100 kWh in a minute: beyond 1 MW. 20 kWh in a minute: within 1 MW, but the
    // battery's power read zero throughout.
    for (csv, jump) in [
        ("case2-idle-jump.csv", 100.0),
        ("case2-idle-creep.csv", 20.0),
    ] {
        let (r, stderr, _) = replay(&cfg, csv, &["--format", "json"]);
        assert!(close(f(&r["total"]["discharge_kwh"]), 0.0), "{csv}: {r}");
        assert!(close(f(&r["quarantined_kwh"]), jump), "{csv}: {r}");
        assert!(stderr.contains("quarantined"), "{csv}: {stderr}");
        assert!(!stderr.contains("glitch"), "{csv}: {stderr}");
    }
}

#[test]
fn a_site_importing_beyond_the_default_limit_is_measured_not_held_back() {
    // Measured grid power vouches for the import counter.
    let cfg = site("");
    let tariff = with_demand(&cfg);
    let (r, stderr, _) = replay(
        &cfg,
        "case3-large-site.csv",
        &["--format", "json", "--tariff", &tariff],
    );
    let d = &r["demand"][0];
    assert_eq!(d["available"], true, "{d} {stderr}");
    assert!(close(f(&d["max_kw"]), 8000.0), "{d}");
    assert_eq!(d["measured_windows"], 8, "{d}");
    assert_eq!(r["held_back"], 0, "{r}");

    // Without grid power or a capacity nothing vouches for it: held back, said loudly.
    let (r, stderr, _) = replay(
        &cfg,
        "case3-large-site-no-power.csv",
        &["--format", "json", "--tariff", &tariff],
    );
    assert!(f(&r["held_back"]) >= 1.0, "{r}");
    assert!(stderr.contains("held back for five minutes"), "{stderr}");
    let d = &r["demand"][0];
    assert_eq!(d["available"], false, "{d}");
    assert!(close(f(&r["demand_savings"]), 0.0));

    // The connection's capacity makes it plausible.
    let cfg = site("grid_capacity_kw = 10000\n");
    let tariff = with_demand(&cfg);
    let (r, stderr, _) = replay(
        &cfg,
        "case3-large-site-no-power.csv",
        &["--format", "json", "--tariff", &tariff],
    );
    let d = &r["demand"][0];
    assert!(close(f(&d["max_kw"]), 8000.0), "{d} {stderr}");
    assert_eq!(r["held_back"], 0);
}

#[test]
fn a_site_without_grid_measurement_gets_no_demand_savings() {
    let cfg = site("");
    let (r, _, _) = replay(
        &cfg,
        "case5-no-grid.csv",
        &["--format", "json", "--tariff", "eu-berlin-two-rate-example"],
    );
    assert!(close(f(&r["total"]["discharge_kwh"]), 1000.0), "{r}");
    assert!(close(f(&r["demand_savings"]), 0.0), "{r}");
    let d = &r["demand"][0];
    assert_eq!(d["available"], false, "{d}");
    assert!(d["max_kw"].is_null(), "{d}");
    assert!(d["reason"].as_str().unwrap().contains("grid import"), "{d}");
    let (_, _, out) = replay(
        &cfg,
        "case5-no-grid.csv",
        &["--tariff", "eu-berlin-two-rate-example"],
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("unavailable: no demand window"), "{table}");
}
