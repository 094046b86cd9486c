//! Settling a month through the daemon: a simulated February in Chongqing,
//! the simulator's storage meter counting per rate on its own clock, the
//! daemon polling it on a clock the test steps from one tariff boundary to
//! the next (so every reading falls exactly on a boundary and nothing needs
//! splitting by time). The statement's per-rate energy must be the meter's,
//! the ledger must agree with it, the split must add up to the fen, and the
//! PDF must render. A second run drifts the meter's clock ten minutes and
//! expects the reconciliation to name it.
mod support;

use bessmon::sim::{SimSite, SiteParams};
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use support::stepped::{chongqing_params, local, Run};
use support::*;

fn json(out: std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `bessmon statement` for the lab site's February, with these arguments.
fn february(cfg: &TestConfig, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--site", "lab", "--period", "2025-02"];
    args.extend_from_slice(extra);
    cli_c("statement", &cfg.path, &args)
}

fn fen(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 100.0).round() as i64
}

/// The meter's register for a flow's rate, in Wh as the register shows it (0.01 kWh).
fn register_wh(sim: &SimSite, charge: bool, rate: usize) -> i64 {
    let s = sim.site.lock().unwrap();
    let wh = if charge {
        s.state.rate_charge_wh[rate]
    } else {
        s.state.rate_discharge_wh[rate]
    };
    (wh / 10.0) as i64 * 10
}

#[test]
fn a_simulated_february_settles_from_the_meter_to_the_fen() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let first = date(2025, 2, 1);
    let run = Run::start(
        local(&tz, first, 0, 0),
        chongqing_params(),
        "[sites.contract]\nkind = \"share\"\nhost_share = 0.15\nhost = \"Host Co.\"\ninvestor = \"Investor Co.\"\n",
    );
    let rates = 4;
    let opening: Vec<(i64, i64)> = (0..rates)
        .map(|r| {
            (
                register_wh(&run.sim, true, r),
                register_wh(&run.sim, false, r),
            )
        })
        .collect();
    // Chongqing's February boundaries: 08, 11, 17, 20, 22 and midnight.
    let mut d = first;
    while d.month() == 2 {
        for h in [8, 11, 17, 20, 22] {
            run.step(local(&tz, d, h, 0));
        }
        d = d.tomorrow().unwrap();
        run.step(local(&tz, d, 0, 0));
    }
    let closing: Vec<(i64, i64)> = (0..rates)
        .map(|r| {
            (
                register_wh(&run.sim, true, r),
                register_wh(&run.sim, false, r),
            )
        })
        .collect();
    let cfg = run.finish();

    let s = json(february(&cfg, &["--format", "json"]));
    assert_eq!(s["energy_source"], "meter", "{}", s["energy_source_reason"]);
    let report = json(cli_c(
        "report",
        &cfg.path,
        &["--site", "lab", "--period", "2025-02", "--format", "json"],
    ));
    assert_eq!(
        report["quarantined_kwh"], 0.0,
        "no poll straddled a step: {report}"
    );
    assert_eq!(report["unattributed"]["charge_kwh"], 0.0, "{report}");
    let lines = s["bands"].as_array().unwrap();
    let (mut charged, mut discharged) = (0.0, 0.0);
    for l in lines {
        let rate = l["rate"].as_u64().unwrap() as usize - 1;
        let band = l["band"].as_str().unwrap();
        // The statement's energy is the meter's registers, exactly.
        let meter_c = (closing[rate].0 - opening[rate].0) as f64 / 1000.0;
        let meter_d = (closing[rate].1 - opening[rate].1) as f64 / 1000.0;
        assert!(
            (l["charge_kwh"].as_f64().unwrap() - meter_c).abs() < 1e-6,
            "{band}: {l} vs {meter_c}"
        );
        assert!(
            (l["discharge_kwh"].as_f64().unwrap() - meter_d).abs() < 1e-6,
            "{band}: {l} vs {meter_d}"
        );
        // And the ledger, booked from the PCS's own counters by the
        // tariff's clock, agrees to the meter's last digit.
        let ledger = |k: &str| report["bands"][band][k].as_f64().unwrap_or(0.0);
        assert!(
            (ledger("charge_kwh") - meter_c).abs() <= 0.02,
            "{band}: ledger {} meter {meter_c}",
            ledger("charge_kwh")
        );
        assert!(
            (ledger("discharge_kwh") - meter_d).abs() <= 0.02,
            "{band}: ledger {} meter {meter_d}",
            ledger("discharge_kwh")
        );
        charged += meter_c;
        discharged += meter_d;
        // Money per line: energy x price, to the fen.
        let price = l["price"].as_f64().unwrap();
        assert_eq!(
            fen(&l["discharge_value"]),
            (meter_d * price * 100.0).round() as i64,
            "{l}"
        );
    }
    assert!(
        charged > 28.0 * 2000.0,
        "a month of cycling: {charged} kWh charged"
    );
    assert!(discharged > 28.0 * 1500.0, "{discharged} kWh discharged");
    for band in ["valley", "flat", "peak"] {
        assert!(lines.iter().any(|l| l["band"] == band), "{band} has a line");
    }
    // The split adds up to the fen, and is the contract's.
    let total = fen(&s["total_savings"]);
    assert!(total > 0, "{s}");
    assert_eq!(fen(&s["host_amount"]) + fen(&s["investor_amount"]), total);
    assert_eq!(fen(&s["host_amount"]), (total as f64 * 0.15).round() as i64);
    assert_eq!(
        fen(&s["host_amount_excl_vat"]) + fen(&s["investor_amount_excl_vat"]),
        fen(&s["total_savings_excl_vat"])
    );
    assert_eq!(s["vat_rate"], 0.13);
    let line_sum: i64 = lines.iter().map(|l| fen(&l["savings"])).sum();
    assert_eq!(line_sum, total, "the total is the sum of the lines");
    assert_eq!(s["reconciliation"]["lines"].as_array().unwrap().len(), 8);
    assert!(
        s["reconciliation"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["flagged"] == false),
        "{}",
        s["reconciliation"]
    );
    let eff = s["schedule_efficiency"].as_f64().unwrap();
    assert!(eff > 0.3 && eff <= 1.05, "schedule efficiency {eff}");

    // The printable page, through Chromium to a PDF whose text says it all.
    require("chromium");
    let pdftotext = require("pdftotext");
    let pdf = cfg.dir.path().join("feb.pdf");
    let out = february(&cfg, &["--format", "pdf", "-o", pdf.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::process::Command::new(pdftotext)
        .args([pdf.to_str().unwrap(), "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    for want in [
        "settlement statement",
        "储能电费结算单",
        "2025-02",
        "Investor Co.",
        "Host Co.",
        &format!("{:.2}", total as f64 / 100.0),
        "Rounding",
    ] {
        assert!(text.contains(want), "the PDF lacks {want:?}:\n{text}");
    }
    // README's picture of the statement: BESSMON_STATEMENT_OUT=docs.
    if let Some(dir) = std::env::var_os("BESSMON_STATEMENT_OUT") {
        let html = std::path::Path::new(&dir).join("statement.html");
        let out = february(&cfg, &["-o", html.to_str().unwrap()]);
        assert!(out.status.success());
        let png = std::path::Path::new(&dir).join("statement.png");
        let shot = std::process::Command::new(require("chromium"))
            .args([
                "--headless",
                "--no-sandbox",
                "--hide-scrollbars",
                "--window-size=1100,1500",
            ])
            .arg(format!(
                "--screenshot={}",
                std::path::absolute(&png).unwrap().display()
            ))
            .arg(format!(
                "file://{}",
                std::path::absolute(&html).unwrap().display()
            ))
            .output()
            .unwrap();
        assert!(
            shot.status.success(),
            "{}",
            String::from_utf8_lossy(&shot.stderr)
        );
    }
    let csv = february(&cfg, &["--format", "csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert_eq!(
        csv.lines().filter(|l| l.contains(",meter,")).count(),
        lines.len() + 7,
        "{csv}"
    );
}

#[test]
fn a_meter_whose_clock_runs_ten_minutes_ahead_is_named() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let day = date(2025, 3, 10);
    let params = SiteParams {
        meter_clock_offset: SignedDuration::from_mins(10),
        ..chongqing_params()
    };
    let run = Run::start(local(&tz, day, 0, 0), params, "");
    // Minute steps across the end of the valley, where the battery charges.
    let mut steps: Vec<Timestamp> = (40..60).map(|m| local(&tz, day, 7, m)).collect();
    steps.extend([8, 11, 17, 20, 22].map(|h| local(&tz, day, h, 0)));
    steps.push(local(&tz, day.tomorrow().unwrap(), 0, 0));
    run.step(local(&tz, day, 7, 0));
    for t in steps {
        run.step(t);
    }
    let cfg = run.finish();
    let r = json(cli_c(
        "report",
        &cfg.path,
        &[
            "--site",
            "lab",
            "--period",
            "2025-03-10",
            "--format",
            "json",
        ],
    ));
    let rec = &r["reconciliation"];
    let clock = &rec["clock"];
    let offset = clock["median_offset_s"].as_i64().unwrap();
    assert!(
        (-600..=-540).contains(&offset),
        "the meter switches ~10 min early: {rec}"
    );
    assert_eq!(clock["flagged"], true, "{rec}");
    let line = |flow: &str, band: &str| {
        rec["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["flow"] == flow && l["band"] == band)
            .cloned()
            .unwrap_or_else(|| panic!("{flow} {band}: {rec}"))
    };
    // Ten minutes of valley charging counted as flat by the meter.
    let valley = line("charge", "valley");
    // The battery is nearly full by then and charging slowly: a few per cent.
    assert_eq!(valley["flagged"], true, "{valley}");
    assert!(
        valley["difference_kwh"].as_f64().unwrap() > 1.0,
        "ledger above meter in the valley: {valley}"
    );
    // And the evening charge's last ten minutes, counted as peak.
    let peak = line("charge", "peak");
    assert_eq!(peak["ledger_kwh"], 0.0, "{peak}");
    assert!(peak["difference_kwh"].as_f64().unwrap() < -1.0, "{peak}");
    assert_eq!(peak["flagged"], true, "{peak}");
    assert!(
        rec["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("clock")),
        "{rec}"
    );
    let table = cli_c(
        "report",
        &cfg.path,
        &["--site", "lab", "--period", "2025-03-10"],
    );
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("FLAGGED"), "{table}");
}
