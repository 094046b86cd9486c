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
