//! `bessmon read` catches the classic commissioning mistakes against a live
//! (simulated) device: a counter read with its words swapped, and power
//! beyond the converter's rating.
mod support;

use support::*;

fn read(port: u16, profile: &str, dir: &std::path::Path, extra: &[&str]) -> String {
    let port = port.to_string();
    let mut args = vec![
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--unit",
        "1",
        "--profile",
        profile,
        "--profile-dir",
    ];
    let dir = dir.to_str().unwrap();
    args.push(dir);
    args.extend_from_slice(extra);
    let out = cli(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
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
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
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
