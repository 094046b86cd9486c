//! `tariff show`, `replay` and `report` as an operator runs them.
mod support;

use std::fmt::Write as _;
use std::process::Command;

use support::*;

fn sim_site(rated: f64) -> TestConfig {
    TestConfig::new(&sized_site_toml(
        "1s",
        2000.0,
        rated,
        &sim_devices(5020, "500ms"),
    ))
}

/// One day of the oracle's two cycles (a critical-peak month), a reading a minute.
fn oracle_day_csv() -> String {
    let mut s = String::from("timestamp,charge_energy_total,discharge_energy_total,soc\n");
    let (mut c, mut d) = (5000.0f64, 4000.0f64);
    let inn = 2000.0 / 0.9;
    for m in 0..=1440u32 {
        let (h, mi) = (m / 60, m % 60);
        let ts = if m == 1440 {
            "2025-07-16 00:00:00".to_string()
        } else {
            format!("2025-07-15 {h:02}:{mi:02}:00")
        };
        writeln!(s, "{ts},{c:.6},{d:.6},50").unwrap();
        match m {
            0..480 => c += inn / 480.0,
            720..840 => d += 2000.0 / 120.0,
            1020..1200 => c += inn / 180.0,
            1200..1320 => d += 2000.0 / 120.0,
            _ => {}
        }
    }
    s
}

fn replay(cfg: &TestConfig, csv: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["replay", "-c"])
        .arg(&cfg.path)
        .args(["--site", "lab", "--csv"])
        .arg(csv)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn tariff_show_prints_bands_and_the_length_of_dst_days() {
    let out = Command::new(bin())
        .args([
            "tariff",
            "show",
            "eu-berlin-two-rate-example",
            "--date",
            "2026-03-29",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("2026-03-29 (Sunday, weekend): 23 h"),
        "{text}"
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/tariffs/cn-chongqing-ci-2025-02.toml");
    let out = Command::new(bin())
        .args(["tariff", "show"])
        .arg(&path)
        .args(["--date", "2025-08-01"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(": 24 h"), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.len() > 12 && l.as_bytes()[2] == b':')
        .collect();
    assert_eq!(rows.len(), 8, "{text}");
    assert!(
        rows[3].starts_with("12:00  14:00  critical") && rows[3].ends_with("1.330806"),
        "{}",
        rows[3]
    );
    let out = Command::new(bin())
        .args(["tariff", "show", "no-such-tariff", "--date", "2025-08-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn replay_prices_a_csv_history_like_the_daemon() {
    let cfg = sim_site(1000.0);
    let csv = cfg.dir.path().join("history.csv");
    std::fs::write(&csv, oracle_day_csv()).unwrap();
    let out = replay(&cfg, &csv, &["--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Critical-month day of the oracle: 1,818.972 + 572.118 CNY.
    let savings = r["total"]["savings"].as_f64().unwrap();
    assert!((savings - 2391.0904).abs() < 0.001, "{savings}");
    assert_eq!(r["currency"], "CNY");
    assert!((r["bands"]["critical"]["discharge_kwh"].as_f64().unwrap() - 2000.0).abs() < 1e-6);

    // What-if: the same history under a tariff without a critical peak.
    let flat = cfg.dir.path().join("no-critical.toml");
    let text = bessmon::bundled::tariff("cn-chongqing-ci-2025-02")
        .unwrap()
        .replace("critical = 1.330806", "critical = 1.133067")
        .replace("id = \"cn-chongqing-ci-2025-02\"", "id = \"no-critical\"");
    std::fs::write(&flat, text).unwrap();
    let out = replay(
        &cfg,
        &csv,
        &["--format", "csv", "--tariff", flat.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total = text.lines().find(|l| l.contains(",total,")).unwrap();
    let savings: f64 = total.split(',').nth(7).unwrap().parse().unwrap();
    assert!((savings - 1995.6124).abs() < 0.001, "{total}");
}

#[test]
fn replay_quarantines_what_the_site_could_not_have_done() {
    // The same history on a site rated 100 kW: 1,000 kW discharges are implausible.
    let cfg = sim_site(100.0);
    let csv = cfg.dir.path().join("history.csv");
    std::fs::write(&csv, oracle_day_csv()).unwrap();
    let out = replay(&cfg, &csv, &["--format", "json"]);
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["quarantined_kwh"].as_f64().unwrap() > 0.0, "{r}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("quarantined"));
}

#[test]
fn bad_input_is_named_and_exits_1() {
    let cfg = sim_site(1000.0);
    let csv = cfg.dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "timestamp,discharge_energy_total\n2025-07-15 00:00:00,1\n2025-07-15 00:01:00,x\n",
    )
    .unwrap();
    let out = replay(&cfg, &csv, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv: line 3: discharge_energy_total `x` is not a number"),
        "{err}"
    );

    let out = cli_c("report", &cfg.path, &["--site", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--site nowhere"));
    let out = cli_c(
        "report",
        &cfg.path,
        &["--site", "lab", "--period", "last-week"],
    );
    assert_eq!(out.status.code(), Some(1));
    // No ledger yet: a runtime condition, said plainly.
    let out = cli_c("report", &cfg.path, &["--site", "lab"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ledger here yet"));
}
