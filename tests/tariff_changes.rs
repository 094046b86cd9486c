//! Tariffs that change over time, as an operator meets them: a site whose
//! province replaced its periods, monthly prices that run out, a holiday
//! calendar that ends, a price correction re-priced into the ledger, and a
//! site's history backfilled into it.
mod support;

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;
use support::*;

/// The lab site with its tariff given as `tariff` (TOML), tariffs found in `dir`.
fn config(tariff: &str, dir: Option<&Path>) -> TestConfig {
    config_at(5020, tariff, dir)
}

/// As `config`, its devices on a simulator at `port`, polled every 200 ms.
fn config_at(port: u16, tariff: &str, dir: Option<&Path>) -> TestConfig {
    let cfg = TestConfig::new(
        &sized_site_toml("200ms", 2000.0, 1000.0, &sim_devices(port, "1s")).replacen(
            "tariff = \"cn-chongqing-ci-2025-02\"",
            &format!("tariff = {tariff}"),
            1,
        ),
    );
    if let Some(dir) = dir {
        let text = std::fs::read_to_string(&cfg.path).unwrap().replacen(
            "tariff_dirs = []",
            &format!("tariff_dirs = [{:?}]", dir.display().to_string()),
            1,
        );
        std::fs::write(&cfg.path, text).unwrap();
    }
    cfg
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `bessmon replay` of the lab site from `csv`, as JSON.
fn replay_json(cfg: &TestConfig, csv: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "--site",
        "lab",
        "--csv",
        csv.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    ok_json(cli_c("replay", &cfg.path, &args))
}

fn ok_json(out: std::process::Output) -> Value {
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

const ZHEJIANG: &str = "[{ id = \"cn-zhejiang-ci-2024\", from = \"2024-01-01\" }, { id = \"cn-zhejiang-ci-2026\", from = \"2026-07-01\" }]";

/// Readings a minute apart over `days` (local dates), charging 100 kWh in
/// each day's 09:00-10:00 and discharging 90 kWh in its 19:00-20:00.
fn history(days: &[&str]) -> String {
    let mut s = String::from("timestamp,charge_energy_total,discharge_energy_total\n");
    let (mut c, mut d) = (1000.0f64, 500.0f64);
    for day in days {
        for m in 0..1440u32 {
            writeln!(s, "{day} {:02}:{:02}:00,{c:.4},{d:.4}", m / 60, m % 60).unwrap();
            match m / 60 {
                9 => c += 100.0 / 60.0,
                19 => d += 90.0 / 60.0,
                _ => {}
            }
        }
    }
    s
}

#[test]
fn a_site_moves_to_the_new_zhejiang_periods_on_their_date() {
    let cfg = config(ZHEJIANG, None);
    let show = |d: &str| {
        let out = cli(&[
            "tariff",
            "show",
            "-c",
            cfg.path.to_str().unwrap(),
            "--site",
            "lab",
            "--date",
            d,
        ]);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    let june = show("2026-06-30");
    assert!(
        june.contains("in force on 2026-06-30: cn-zhejiang-ci-2024"),
        "{june}"
    );
    assert!(june.contains("08:00  11:00  peak"), "{june}");
    let july = show("2026-07-01");
    assert!(
        july.contains("in force on 2026-07-01: cn-zhejiang-ci-2026"),
        "{july}"
    );
    assert!(july.contains("18:00  22:00  critical"), "{july}");
    // Spring Festival 2025 fell in January: the holiday bands, not winter's critical peak.
    let festival = show("2025-01-28");
    assert!(festival.contains("(Tuesday, holiday)"), "{festival}");
    assert!(festival.contains("10:00  14:00  deep_valley"), "{festival}");
    // The bare id still works, without a config.
    let bare = cli(&[
        "tariff",
        "show",
        "cn-zhejiang-ci-2026",
        "--date",
        "2026-07-01",
    ]);
    assert!(
        text(&bare).contains("18:00  22:00  critical"),
        "{}",
        text(&bare)
    );

    // The ledger prices each day by the file in force on it: 09:00-10:00
    // is peak on 30 June (2024 periods) and flat on 1 July (2026 periods).
    let csv = cfg.dir.path().join("h.csv");
    std::fs::write(&csv, history(&["2026-06-30", "2026-07-01"])).unwrap();
    let day = |d: &str| replay_json(&cfg, &csv, &["--period", d]);
    let r = day("2026-06-30");
    assert!(
        (r["bands"]["peak"]["charge_kwh"].as_f64().unwrap() - 100.0).abs() < 1e-6,
        "{r}"
    );
    let r = day("2026-07-01");
    assert!(
        (r["bands"]["flat"]["charge_kwh"].as_f64().unwrap() - 100.0).abs() < 1e-6,
        "{r}"
    );
    // 19:00-20:00 on 1 July is the new critical peak.
    assert!(
        (r["bands"]["critical"]["discharge_kwh"].as_f64().unwrap() - 90.0).abs() < 1e-6,
        "{r}"
    );
}

#[test]
fn a_dated_list_out_of_order_or_naming_nothing_is_refused_by_key() {
    let cfg = config(
        "[{ id = \"cn-zhejiang-ci-2024\", from = \"2024-01-01\" }, { id = \"cn-zhejiang-ci-2026\", from = \"2023-07-01\" }, { id = \"nope\", from = \"2027-01-01\" }, { id = \"cn-zhejiang-ci-2026\", from = \"July\" }]",
        None,
    );
    let out = cli_c("check", &cfg.path, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("sites[0] (lab).tariff[1].from: 2023-07-01 is not after the previous tariff's 2024-01-01"), "{t}");
    assert!(
        t.contains("sites[0] (lab).tariff[2].id: no tariff `nope`"),
        "{t}"
    );
    assert!(
        t.contains("sites[0] (lab).tariff[3].from: `July` is not a YYYY-MM-DD date"),
        "{t}"
    );
}

/// A tariff priced monthly whose last prices are October 2026's, with
/// holiday bands and holidays listed for 2025 only.
const MONTHLY: &str = r#"id = "cq-monthly"
name = "Chongqing, agency prices by month"
timezone = "Asia/Shanghai"
currency = "CNY"
source = "test"
prices_monthly = true
prices = { valley = 0.38, flat = 0.76, peak = 1.13 }
holidays = ["2025-10-01"]

[[price_changes]]
from = "2026-10-01"
prices = { valley = 0.39, flat = 0.77, peak = 1.14 }

[[seasons]]
months = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
day_types = ["weekday", "weekend"]
bands = [
  { start = "00:00", end = "08:00", band = "valley" },
  { start = "08:00", end = "11:00", band = "flat" },
  { start = "11:00", end = "24:00", band = "peak" },
]

[[seasons]]
months = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
day_types = ["holiday"]
bands = [{ start = "00:00", end = "24:00", band = "valley" }]
"#;

#[test]
fn missing_monthly_prices_and_holidays_are_said_in_check_log_metric_and_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cq-monthly.toml"), MONTHLY).unwrap();
    let sim = simulator(1);
    let cfg = config_at(sim.sim.addrs[0].port(), "\"cq-monthly\"", Some(dir.path()));
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .date();
    let month = format!("{:04}-{:02}", today.year(), today.month());
    assert!(
        month.as_str() > "2026-10",
        "this test assumes a month after October 2026"
    );
    let prices = format!("tariff `cq-monthly`: prices for {month} missing; using 2026-10's");
    let holidays = format!("lists no holidays for {}", today.year());

    let out = cli_c("check", &cfg.path, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&prices), "{}", text(&out));
    assert!(text(&out).contains(&holidays), "{}", text(&out));

    let mut d = Daemon::start(&cfg.path);
    d.wait_logs(&[&prices, &holidays]);
    wait_for("bessmon_tariff_warnings to say 2", 30, || {
        d.metric("bessmon_tariff_warnings{site=\"lab\",tariff=\"cq-monthly\"}") == Some(2.0)
    });
    for path in ["/api/v1/sites", "/api/v1/sites/lab"] {
        let (code, body) = http("GET", d.http_port(), path, "", None);
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(&prices), "{path}: {body}");
    }
    d.terminate();

    // A history of November 2026 is priced with October's prices, and says so.
    let csv = cfg.dir.path().join("nov.csv");
    std::fs::write(&csv, history(&["2026-11-03"])).unwrap();
    let r = replay_json(&cfg, &csv, &[]);
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        warnings.contains(&"tariff `cq-monthly`: prices for 2026-11 missing; using 2026-10's"),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("no holidays for 2026")),
        "{warnings:?}"
    );
}

/// The same tariff with November's prices published (valley at `valley`).
fn with_november(valley: f64) -> String {
    format!(
        "{MONTHLY}\n[[price_changes]]\nfrom = \"2026-11-01\"\nprices = {{ valley = {valley}, flat = 0.77, peak = 1.14 }}\n"
    )
    .replace("holidays = [\"2025-10-01\"]", "holidays = [\"2025-10-01\", \"2026-10-01\"]")
}

#[test]
fn history_backfilled_into_the_ledger_is_repriced_after_a_correction() {
    let dir = tempfile::tempdir().unwrap();
    let tariff = dir.path().join("cq-monthly.toml");
    std::fs::write(&tariff, with_november(0.40)).unwrap();
    let cfg = config("\"cq-monthly\"", Some(dir.path()));
    let csv = cfg.dir.path().join("nov.csv");
    std::fs::write(&csv, history(&["2026-11-02", "2026-11-03", "2026-11-04"])).unwrap();
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "--site",
            "lab",
            "--csv",
            csv.to_str().unwrap(),
            "--into-ledger",
        ];
        args.extend_from_slice(extra);
        cli_c("replay", &cfg.path, &args)
    };
    let out = replay(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("3 days (2026-11-02 to 2026-11-04) written"),
        "{}",
        text(&out)
    );
    let report = || {
        ok_json(cli_c(
            "report",
            &cfg.path,
            &["--site", "lab", "--period", "2026-11", "--format", "json"],
        ))
    };
    let before = report();
    assert_eq!(before["days"], 3);
    // 09:00-10:00 is flat, 19:00-20:00 peak: 3 x (90 x 1.14 - 100 x 0.77).
    let s = before["total"]["savings"].as_f64().unwrap();
    assert!(
        (s - 3.0 * (90.0 * 1.14 - 100.0 * 0.77)).abs() < 1e-6,
        "{before}"
    );
    assert!(
        before["warnings"].as_array().unwrap().is_empty(),
        "{before}"
    );

    // The history is already in: refused unless replaced.
    let again = replay(&[]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        text(&again).contains(
            "already has 3 of these days (2026-11-02 to 2026-11-04); --replace overwrites them"
        ),
        "{}",
        text(&again)
    );
    let replaced = replay(&["--replace"]);
    assert!(replaced.status.success(), "{}", text(&replaced));
    assert!(
        text(&replaced).contains("3 of them replacing"),
        "{}",
        text(&replaced)
    );

    // November's flat price is corrected from 0.77 to 0.75.
    std::fs::write(
        &tariff,
        with_november(0.40).replace(
            "flat = 0.77, peak = 1.14 }\n",
            "flat = 0.75, peak = 1.14 }\n",
        ),
    )
    .unwrap();
    let dry = cli_c(
        "reprice",
        &cfg.path,
        &["--site", "lab", "--period", "2026-11", "--dry-run"],
    );
    assert!(
        text(&dry).contains("dry run: nothing written"),
        "{}",
        text(&dry)
    );
    assert_eq!(report()["total"]["savings"], before["total"]["savings"]);
    let out = cli_c(
        "reprice",
        &cfg.path,
        &["--site", "lab", "--period", "2026-11"],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("3 re-priced"), "{t}");
    assert!(t.contains("2026-11-02 flat"), "{t}");
    assert!(t.contains("0.77       0.75"), "{t}");
    let after = report();
    let gained = after["total"]["savings"].as_f64().unwrap() - s;
    assert!(
        (gained - 3.0 * 100.0 * 0.02).abs() < 1e-6,
        "cheaper charging: {gained}"
    );
    // The statement says the ledger was revised, and how.
    let st = ok_json(cli_c(
        "statement",
        &cfg.path,
        &["--site", "lab", "--period", "2026-11", "--format", "json"],
    ));
    assert_eq!(st["energy_source"], "ledger");
    let notes = st["notes"].to_string();
    assert!(
        notes.contains("re-priced with tariff `cq-monthly`: flat 0.77 -> 0.75"),
        "{notes}"
    );
    assert!(
        notes.contains("backfilled") || notes.contains("replaced"),
        "{notes}"
    );
}

#[test]
fn the_demand_price_in_force_follows_its_date() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two-part.toml");
    std::fs::write(
        &file,
        "id = \"two-part\"\nname = \"t\"\ntimezone = \"Asia/Shanghai\"\ncurrency = \"CNY\"\nsource = \"test\"\n\
         prices = { flat = 0.7 }\ndemand_charge = { price_per_kw_month = 32 }\n\
         [[price_changes]]\nfrom = \"2026-03-01\"\nprices = { flat = 0.71 }\ndemand_price_per_kw_month = 28.8\n\
         [[seasons]]\nmonths = [1,2,3,4,5,6,7,8,9,10,11,12]\nbands = [{ start = \"00:00\", end = \"24:00\", band = \"flat\" }]\n",
    )
    .unwrap();
    let show = |d: &str| {
        text(&cli(&[
            "tariff",
            "show",
            file.to_str().unwrap(),
            "--date",
            d,
        ]))
    };
    assert!(
        show("2026-02-28").contains("demand charge 32 CNY/kW-month"),
        "{}",
        show("2026-02-28")
    );
    // A month takes the price in force on its first day.
    assert!(
        show("2026-03-15").contains("demand charge 28.8 CNY/kW-month"),
        "{}",
        show("2026-03-15")
    );
}
