//! `bessmon read` catches the classic commissioning mistakes against a live
//! (simulated) device: a counter read with its words swapped, and power
//! beyond the converter's rating.
mod support;

use support::*;

fn read(port: u16, profile: &str, dir: &std::path::Path, extra: &[&str]) -> String {
    read_device(port, 1, profile, Some(dir), extra)
}

fn line<'a>(text: &'a str, point: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(point))
        .unwrap_or_else(|| panic!("no {point} in\n{text}"))
}

#[test]
fn swapped_words_and_power_beyond_the_rating_are_flagged() {
    let sim = charging_site();
    let port = sim.sim.addrs[0].port();
    let dir = tempfile::tempdir().unwrap();
    // The PCS's map with the charge counter's words declared the wrong way round.
    let text = bessmon::bundled::profile("bessmon-sim-pcs")
        .unwrap()
        .replace("id = \"bessmon-sim-pcs\"", "id = \"wrong-pcs\"")
        .replacen(
            "address = 0x0010\ntype = \"u32\"\n",
            "address = 0x0010\ntype = \"u32\"\norder = \"CDAB\"\n",
            1,
        );
    assert!(
        text.contains("order = \"CDAB\""),
        "the test edits the counter"
    );
    std::fs::write(dir.path().join("wrong-pcs.toml"), text).unwrap();

    // The battery charges, so the counter moves between two reads a second apart.
    let wrong = read(
        port,
        "wrong-pcs",
        dir.path(),
        &["--repeat", "2", "--interval", "1s"],
    );
    assert!(
        line(&wrong, "charge_energy_total").contains("word order looks swapped"),
        "{wrong}"
    );
    assert!(wrong.contains("1 point(s) flagged"), "{wrong}");

    let right = read(
        port,
        "bessmon-sim-pcs",
        dir.path(),
        &["--repeat", "2", "--interval", "1s"],
    );
    assert!(
        !right.contains("flagged"),
        "the right map reads clean:\n{right}"
    );

    // A 1 MW converter read as if it were rated 100 kW.
    let small = read(port, "bessmon-sim-pcs", dir.path(), &["--rated-kw", "100"]);
    assert!(
        line(&small, "active_power").contains("beyond 1.5 x the rated 100 kW"),
        "{small}"
    );
}

/// `bessmon simulate` three seconds before 17:00 in Chongqing, on the wall
/// clock's pace: the battery discharges through the peak, then charges in
/// the flat band, so power changes and both counters move while watched.
fn simulator_before_five_pm() -> (Proc, u16) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin())
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--start",
            "2025-03-10T16:59:57+08:00",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its first line gives the address; a simulator that never says it fails the test.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the simulator's address within 30 s");
    let port = line
        .rsplit_once("127.0.0.1:")
        .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (Proc(child), port)
}

/// The PCS and meter of a simulator at `port`, the PCS read with `pcs_profile`.
fn commission(pcs_profile: &str, dir: &std::path::Path) -> (Option<i32>, String) {
    let (sim, port) = simulator_before_five_pm();
    let t = format!("{{ type = \"tcp\", host = \"127.0.0.1\", port = {port} }}");
    let cfg = TestConfig::with_profile_dir(
        &sized_site_toml(
            "200ms",
            2000.0,
            1000.0,
            &(device_toml("pcs", pcs_profile, 1, "500ms", &t)
                + &device_toml("meter", "bessmon-sim-meter", 3, "500ms", &t)),
        ),
        dir,
    );
    let out = cli_c("commission", &cfg.path, &["--site", "lab", "--watch", "7s"]);
    sim.terminate();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn commission_names_a_wrong_sign_and_swapped_counters() {
    let dir = tempfile::tempdir().unwrap();
    let pcs = bessmon::bundled::profile("bessmon-sim-pcs").unwrap();
    let wrong_sign = pcs
        .replace("id = \"bessmon-sim-pcs\"", "id = \"wrong-sign\"")
        .replacen(
            "sign = \"discharge_positive\"",
            "sign = \"charge_positive\"",
            1,
        );
    let swapped = pcs
        .replace("id = \"bessmon-sim-pcs\"", "id = \"swapped\"")
        .replacen("role = \"charge_energy_total\"", "role = \"X\"", 1)
        .replacen(
            "role = \"discharge_energy_total\"",
            "role = \"charge_energy_total\"",
            1,
        )
        .replacen("role = \"X\"", "role = \"discharge_energy_total\"", 1);
    assert!(wrong_sign.contains("charge_positive") && swapped != pcs);
    std::fs::write(dir.path().join("wrong-sign.toml"), wrong_sign).unwrap();
    std::fs::write(dir.path().join("swapped.toml"), swapped).unwrap();

    let runs: Vec<_> = ["bessmon-sim-pcs", "wrong-sign", "swapped"]
        .into_iter()
        .map(|p| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || commission(p, &dir))
        })
        .collect();
    let mut results = runs.into_iter().map(|h| h.join().unwrap());
    let verdict = |text: &str, role: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(role))
            .unwrap_or_else(|| panic!("no {role} verdict in\n{text}"))
            .to_string()
    };

    let (code, right) = results.next().unwrap();
    assert_eq!(code, Some(0), "{right}");
    assert!(
        verdict(&right, "battery_power sign").contains(" ok "),
        "{right}"
    );
    assert!(
        verdict(&right, "charge_energy_total").contains(" ok "),
        "{right}"
    );
    assert!(
        verdict(&right, "discharge_energy_total").contains(" ok "),
        "{right}"
    );
    assert!(right.contains("pcs"), "round trips per device:\n{right}");

    let (code, sign) = results.next().unwrap();
    assert_eq!(code, Some(1), "{sign}");
    let line = verdict(&sign, "battery_power sign");
    assert!(
        line.contains("WRONG") && line.contains("flip the point's sign"),
        "{sign}"
    );

    let (code, swap) = results.next().unwrap();
    assert_eq!(code, Some(1), "{swap}");
    let line = verdict(&swap, "charge_energy_total");
    assert!(line.contains("WRONG") && line.contains("swapped"), "{swap}");
}

/// A meter and a PCS of other makes' shapes: input registers, watts as
/// i32, counters in Wh with their words swapped, power counted charge-positive.
const ALT_METER: &str = r#"id = "alt-meter"
source = "a test's own map"
verified = "unverified"
[[points]]
name = "p_total"
table = "input"
address = 100
type = "i32"
scale = 0.001
unit = "kW"
role = "grid_power"
[[points]]
name = "e_imp"
table = "input"
address = 110
type = "u32"
order = "CDAB"
scale = 0.001
unit = "kWh"
role = "grid_import_energy_total"
[[points]]
name = "e_exp"
table = "input"
address = 112
type = "u64"
scale = 0.001
unit = "kWh"
role = "grid_export_energy_total"
"#;

const ALT_PCS: &str = r#"id = "alt-pcs"
source = "a test's own map"
verified = "unverified"
[[points]]
name = "p_bat"
table = "holding"
address = 0
type = "f32"
order = "DCBA"
unit = "kW"
role = "battery_power"
sign = "charge_positive"
[[points]]
name = "soc_x10"
table = "holding"
address = 2
type = "u16"
scale = 0.1
unit = "%"
role = "soc"
"#;

fn value(text: &str, point: &str) -> f64 {
    line(text, point)
        .split_whitespace()
        .rev()
        .find_map(|w| w.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no value for {point} in\n{text}"))
}

#[test]
fn the_simulator_serves_any_profile_from_its_physics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alt-meter.toml"), ALT_METER).unwrap();
    std::fs::write(dir.path().join("alt-pcs.toml"), ALT_PCS).unwrap();
    let load = |id: &str| {
        bessmon::acquire::profile::ProfileCatalog::new(&[dir.path().to_path_buf()])
            .load(id)
            .unwrap()
            .unwrap()
    };
    let mut profiles = bessmon::sim::SimProfiles::bundled();
    profiles.meter = load("alt-meter");
    profiles.pcs = load("alt-pcs");
    // Frozen at 07:00 in Shanghai, 40 kWh past a 32-bit wrap of Wh: charging.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let params = bessmon::sim::SiteParams {
        counter_offset_wh: (1u64 << 32) + 40_000,
        ..bessmon::sim::SiteParams::standard(0)
    };
    let (sim, cancel) = frozen_simulator(&rt, params, profiles);
    let port = sim.addrs[0].port();
    let (grid_kw, import_wh, export_wh, power_kw, soc) = {
        let s = sim.sites[0].site.lock().unwrap();
        (
            s.state.grid_kw(),
            s.state.import_wh,
            s.state.export_wh,
            s.state.power_kw,
            s.soc(),
        )
    };
    assert!(
        power_kw < -100.0,
        "the simulated battery charges at 07:00: {power_kw}"
    );

    let meter = read_device(port, 3, "alt-meter", Some(dir.path()), &[]);
    assert!(
        (value(&meter, "p_total") - grid_kw).abs() <= 0.001,
        "{meter} vs {grid_kw}"
    );
    // The u32 import counter wraps at 2^32 Wh, as a device's would.
    let wrapped = ((import_wh as u64) % (1u64 << 32)) as f64 / 1000.0;
    assert!(
        (value(&meter, "e_imp") - wrapped).abs() <= 0.001,
        "{meter} vs {wrapped}"
    );
    assert!(
        (value(&meter, "e_exp") - export_wh / 1000.0).abs() <= 0.001,
        "{meter}"
    );

    let pcs = read_device(port, 1, "alt-pcs", Some(dir.path()), &[]);
    // Charge-positive on the wire: the simulator's -power, to f32's precision.
    assert!(
        (value(&pcs, "p_bat") + power_kw).abs() < 0.01,
        "{pcs} vs {power_kw}"
    );
    assert!(
        (value(&pcs, "soc_x10") - (soc * 1000.0).round() / 10.0).abs() < 1e-9,
        "{pcs}"
    );
    cancel.cancel();

    // A site that uses a map nobody has checked is told so by `check`.
    let cfg = TestConfig::with_profile_dir(
        &sized_site_toml(
            "1s",
            2000.0,
            1000.0,
            &device_toml(
                "meter",
                "alt-meter",
                3,
                "500ms",
                "{ type = \"tcp\", host = \"127.0.0.1\", port = 5020 }",
            ),
        ),
        dir.path(),
    );
    let out = cli_c("check", &cfg.path, &[]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("profile `alt-meter` is unverified (a test's own map)"),
        "{text}"
    );
}
