//! SunSpec end to end: `discover` against the simulator presenting SunSpec
//! devices writes profiles that poll and account (counters with WH_SF); a
//! profile follows its models when new firmware moves them; and against a
//! device image built by pysunspec2 (SunSpec's reference implementation,
//! from PyPI) from its own model definitions, every point bessmon maps reads
//! as pysunspec2's own client reads it.
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bessmon::account::accountant::observations;
use bessmon::account::energy::Measured;
use bessmon::acquire::decode::Value;
use bessmon::acquire::profile::{Profile, Role};
use bessmon::acquire::sunspec::generate;
use bessmon::acquire::Sample;
use bessmon::sim::{self, SimProfiles, SiteParams};
use support::*;

/// The test virtualenv's Python, where scripts/test.sh installs pysunspec2.
fn venv_python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test.sh, which installs pysunspec2 there",
        p.display()
    );
    p
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sunspec_image.py")
}

/// A simulator presenting `profiles`, counters far from zero.
fn simulator(
    rt: &tokio::runtime::Runtime,
    profiles: SimProfiles,
) -> (sim::Simulator, tokio_util::sync::CancellationToken) {
    let params = SiteParams {
        counter_offset_wh: 55_555_555,
        ..SiteParams::standard(0)
    };
    frozen_simulator(rt, params, profiles)
}

fn discover(port: u16, unit: u8, file: &Path) -> String {
    let port = port.to_string();
    discover_at(&["--host", "127.0.0.1", "--port", &port], unit, file)
}

/// `bessmon discover` of `unit` at the device `at` names, writing `file`.
fn discover_at(at: &[&str], unit: u8, file: &Path) -> String {
    let unit_arg = unit.to_string();
    let mut args = vec!["discover"];
    args.extend_from_slice(at);
    args.extend([
        "--unit",
        &unit_arg,
        "--write-profile",
        file.to_str().unwrap(),
    ]);
    let out = cli(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "discover unit {unit}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn role_value(s: &Sample, role: Role) -> f64 {
    let (i, p) = s
        .device
        .profile
        .point_with_role(role)
        .unwrap_or_else(|| panic!("{role:?} in {}", s.device.profile.id));
    let r = s.readings.iter().find(|r| r.point == i);
    match r.map(|r| &r.value) {
        Some(Value::Num(v)) => *v,
        other => panic!("{}: {other:?}; errors {:?}", p.name, s.errors),
    }
}

/// The kWh a counter role's observation books from, as accounting reads it.
fn counter_kwh(s: &Sample, role: Role) -> f64 {
    let mut obs = Vec::new();
    observations(s, &mut obs);
    let o = obs
        .iter()
        .find(|o| o.role == role)
        .unwrap_or_else(|| panic!("{role:?} observed in {obs:?}"));
    match o.reading {
        Measured::Counter {
            raw, mwh_per_raw, ..
        } => raw as f64 * mwh_per_raw / 1e6,
        Measured::Value(_) => panic!("{role:?} is a counter"),
    }
}

fn three_devices(port: u16, ids: [&str; 3]) -> String {
    let t = format!("{{ type = \"tcp\", host = \"127.0.0.1\", port = {port} }}");
    [("pcs", 1), ("bms", 2), ("meter", 3)]
        .iter()
        .zip(ids)
        .map(|((dev, unit), id)| device_toml(dev, id, *unit, "1s", &t))
        .collect()
}

#[test]
fn discover_writes_profiles_that_poll_and_account_the_simulators_sunspec_devices() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (simulator, cancel) = simulator(&rt, SimProfiles::sunspec());
    let port = simulator.addrs[0].port();
    let dir = tempfile::tempdir().unwrap();
    let pcs = discover(port, 1, &dir.path().join("acme-pcs.toml"));
    for line in ["   701    40122     153  der_measure_ac", "   103    40070"] {
        assert!(pcs.contains(line), "{line:?} in\n{pcs}");
    }
    assert!(
        pcs.contains("battery_power = der_measure_ac_w")
            && pcs.contains("charge_energy_total = der_measure_ac_totwhabs"),
        "{pcs}"
    );
    let bms = discover(port, 2, &dir.path().join("acme-bms.toml"));
    assert!(bms.contains("soc = battery_soc"), "{bms}");
    let meter = discover(port, 3, &dir.path().join("acme-meter.toml"));
    assert!(
        meter.contains("grid_import_energy_total = ac_meter_abcn_totwhimp"),
        "{meter}"
    );

    let cfg = TestConfig::with_profile_dir(
        &sized_site_toml(
            "1s",
            2000.0,
            1000.0,
            &three_devices(port, ["acme-pcs", "acme-bms", "acme-meter"]),
        ),
        dir.path(),
    );
    let state = simulator.sites[0].site.lock().unwrap().state.clone();
    let soc = simulator.sites[0].site.lock().unwrap().soc();
    rt.block_on(async {
        let mut polling = Polling::start(&cfg);
        let by = polling.collect_each(&["pcs", "bms", "meter"], 1).await;
        let (pcs, bms, meter) = (&by["pcs"][0], &by["bms"][0], &by["meter"][0]);
        for s in [pcs, bms, meter] {
            assert!(s.errors.is_empty(), "{:?}", s.errors);
        }
        // W_SF = 2: power in 100 W steps.
        assert!(
            (role_value(pcs, Role::BatteryPower) - state.power_kw).abs() <= 0.05,
            "{} vs {}",
            role_value(pcs, Role::BatteryPower),
            state.power_kw
        );
        assert!((role_value(meter, Role::GridPower) - state.grid_kw()).abs() <= 0.05);
        assert!((role_value(bms, Role::Soc) - soc * 100.0).abs() <= 0.05);
        // TotWh_SF = 1: counters in 10 Wh steps, booked from counts x 10^SF.
        for (s, role, wh) in [
            (pcs, Role::ChargeEnergyTotal, state.charge_wh),
            (pcs, Role::DischargeEnergyTotal, state.discharge_wh),
            (meter, Role::GridImportEnergyTotal, state.import_wh),
            (meter, Role::GridExportEnergyTotal, state.export_wh),
        ] {
            let kwh = counter_kwh(s, role);
            assert!(
                (kwh - wh / 1000.0).abs() <= 0.010_001 && wh > 50_000_000.0,
                "{role:?}: booked from {kwh} kWh, the simulator holds {wh} Wh"
            );
        }
        polling.stop().await;
    });
    cancel.cancel();
}

#[test]
fn a_sunspec_profile_follows_its_models_when_new_firmware_moves_them() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The firmware the profile was written for: 1, 103, 701.
    let dir = tempfile::tempdir().unwrap();
    let old = generate::profile_toml(
        "acme-pcs",
        &sim::sunspec::chain_of(&[1, 103, 701]),
        &generate::Identity::default(),
    );
    std::fs::write(dir.path().join("acme-pcs.toml"), &old).unwrap();
    // The new firmware adds basic storage (124) before the inverter.
    let moved = generate::profile_toml(
        "acme-pcs-new",
        &sim::sunspec::chain_of(&[1, 124, 103, 701]),
        &generate::Identity::default(),
    );
    let moved = Arc::new(Profile::parse(Path::new("acme-pcs-new.toml"), &moved).unwrap());
    let mut served = SimProfiles::sunspec();
    served.pcs = moved;
    let (simulator, cancel) = simulator(&rt, served);
    let port = simulator.addrs[0].port();
    let power = simulator.sites[0].site.lock().unwrap().state.power_kw;
    assert!(power < -100.0, "charging: {power}");

    let text = read_device(port, 1, "acme-pcs", Some(dir.path()), &[]);
    assert!(
        text.contains("# SunSpec models 1, 124, 103, 701 from base 40000")
            && text.contains("the device's chain moves this profile's points"),
        "{text}"
    );

    // The daemon's pollers: the PCS is read at its new addresses; a device
    // that lacks the profile's models is named in the poll's error.
    let t = format!("{{ type = \"tcp\", host = \"127.0.0.1\", port = {port} }}");
    // A site takes each role from one device: the wrong one is a site of its own.
    let lab = sized_site_toml(
        "1s",
        2000.0,
        1000.0,
        &device_toml("pcs", "acme-pcs", 1, "1s", &t),
    );
    let other = sized_site_toml(
        "1s",
        2000.0,
        1000.0,
        &device_toml("wrong", "acme-pcs", 2, "1s", &t),
    )
    .replacen("id = \"lab\"", "id = \"other\"", 1);
    let cfg = TestConfig::with_profile_dir(&format!("{lab}\n{other}"), dir.path());
    rt.block_on(async {
        let mut polling = Polling::start(&cfg);
        let by = polling.collect_each(&["pcs", "wrong"], 1).await;
        let pcs = &by["pcs"][0];
        assert!(pcs.errors.is_empty(), "{:?}", pcs.errors);
        assert!(
            (role_value(pcs, Role::BatteryPower) - power).abs() <= 0.05,
            "read at the moved address: {} vs {power}",
            role_value(pcs, Role::BatteryPower)
        );
        let wrong = &by["wrong"][0];
        let e = wrong
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("SunSpec models 103, 701, which the device does not present (its models: 1, 802, 713)"),
            "{e}"
        );
        assert!(!wrong.online && wrong.readings.is_empty());
        polling.stop().await;
    });
    cancel.cancel();
}

/// Values for the reference image: a PCS with inverter and DER models, a
/// battery, and a meter, each with some points left "not implemented".
fn reference_spec() -> serde_json::Value {
    serde_json::json!({
        "unit": 1,
        "models": [
            {"id": 1, "values": {"Mn": "ACME Energy", "Md": "PCS-1000", "SN": "A1B2C3", "Vr": "2.4.1", "DA": 1}},
            {"id": 103, "values": {
                "A": 1234, "AphA": 411, "AphB": 412, "AphC": 411, "A_SF": -1,
                "PhVphA": 2301, "PhVphB": 2299, "PhVphC": 2302, "V_SF": -1,
                "W": -4321, "W_SF": 2, "Hz": 5001, "Hz_SF": -2,
                "WH": 3456789, "WH_SF": 1, "DCV": 7654, "DCV_SF": -1,
                "TmpCab": 351, "Tmp_SF": -1, "St": 4, "Evt1": 5
            }},
            {"id": 701, "values": {
                "ACType": 2, "St": 1, "InvSt": 2, "ConnSt": 1, "Alrm": 0,
                "W": -4321, "W_SF": 2, "VA": 4400, "VA_SF": 2, "PF": -98, "PF_SF": -2,
                "A": 1250, "A_SF": -1, "LLV": 4001, "LNV": 2310, "V_SF": -1,
                "Hz": 50010, "Hz_SF": -3,
                "TotWhInj": 123_456_789_012_u64, "TotWhAbs": 234_567_890_123_u64, "TotWh_SF": 0,
                "TmpCab": 361, "Tmp_SF": -1
            }},
            {"id": 802, "values": {
                "AHRtg": 2800, "AHRtg_SF": 0, "WHRtg": 20000, "WHRtg_SF": 2,
                "WChaRteMax": 10000, "WDisChaRteMax": 10000, "WChaDisChaMax_SF": 2,
                "SoC": 505, "SoC_SF": -1, "SoH": 985, "SoH_SF": -1, "NCyc": 321,
                "CellVMax": 3345, "CellVMin": 3301, "CellV_SF": -3,
                "V": 7650, "V_SF": -1, "A": -5600, "A_SF": -1, "W": -4300, "W_SF": 2
            }},
            {"id": 713, "values": {"WHRtg": 20000, "WHAvail": 9900, "WH_SF": 2, "SoC": 495, "SoH": 980, "Pct_SF": -1}},
            {"id": 203, "values": {
                "A": 1400, "A_SF": -1, "PhVphA": 2305, "V_SF": -1, "Hz": 5000, "Hz_SF": -2,
                "W": 9101, "WphA": 3030, "WphB": 3040, "WphC": 3031, "W_SF": 2,
                "TotWhExp": 6543, "TotWhImp": 12345678, "TotWh_SF": 1
            }}
        ]
    })
}

/// The reference device's register map, built by pysunspec2, for pymodbus_server.py.
fn reference_image(dir: &Path) -> serde_json::Value {
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, reference_spec().to_string()).unwrap();
    let built = std::process::Command::new(venv_python())
        .arg(script())
        .args(["build", spec_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    serde_json::from_slice(&built.stdout).unwrap()
}

#[test]
fn discover_finds_a_sunspec_device_on_a_serial_line() {
    let dir = tempfile::tempdir().unwrap();
    let pty = PtyPair::start();
    let mut map = reference_image(dir.path());
    map["mode"] = "rtu".into();
    map["serial"] = pty.a.display().to_string().into();
    map["baud"] = 38400.into();
    let _server = PyModbus::start(map);
    let file = dir.path().join("rtu-device.toml");
    let text = discover_at(
        &["--serial", pty.b.to_str().unwrap(), "--baud", "38400"],
        1,
        &file,
    );
    assert!(
        text.contains("SunSpec marker at 40000; ACME Energy PCS-1000")
            && text.contains("   802 ")
            && text.contains("battery_power = der_measure_ac_w"),
        "{text}"
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("id = \"rtu-device\"") && written.contains("sunspec = true"));
}

#[test]
fn pysunspec2_reads_every_point_bessmon_maps_as_bessmon_does() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let server = PyModbus::start(reference_image(dir.path()));

    let text = discover(server.port, 1, &dir.path().join("reference.toml"));
    assert!(
        text.contains("ACME Energy PCS-1000 serial A1B2C3 version 2.4.1"),
        "{text}"
    );

    let read = std::process::Command::new(&py)
        .arg(script())
        .args(["read", &server.port.to_string(), "1"])
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let reference: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();

    let t = format!(
        "{{ type = \"tcp\", host = \"127.0.0.1\", port = {} }}",
        server.port
    );
    let cfg = TestConfig::with_profile_dir(
        &sized_site_toml(
            "1s",
            2000.0,
            1000.0,
            &device_toml("dev", "reference", 1, "2s", &t),
        ),
        dir.path(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sample = rt.block_on(async {
        let mut polling = Polling::start(&cfg);
        let s = polling.next_of("dev").await;
        polling.stop().await;
        s
    });
    assert!(sample.errors.is_empty(), "{:?}", sample.errors);
    let profile = sample.device.profile.clone();
    let (mut compared, mut absent) = (0, 0);
    for (i, p) in profile.points.iter().enumerate() {
        let (model, _) = p
            .sunspec
            .expect("every point of a SunSpec profile names its model");
        let m = bessmon::acquire::sunspec::model::model(model).unwrap();
        let sunspec_name = m
            .points
            .iter()
            .find(|q| generate::point_name(m, &q.name) == *p.name)
            .map(|q| q.name.clone())
            .unwrap();
        let theirs = &reference[model.to_string()][&sunspec_name];
        let ours = sample
            .readings
            .iter()
            .find(|r| r.point == i)
            .map(|r| &r.value);
        let what = format!("model {model} {sunspec_name}: bessmon {ours:?}, pysunspec2 {theirs}");
        match (ours, theirs) {
            (None, serde_json::Value::Null) => absent += 1,
            (Some(Value::Text(a)), serde_json::Value::Null) if a.trim().is_empty() => absent += 1,
            (Some(Value::Text(a)), serde_json::Value::String(b)) => {
                assert_eq!(a.trim(), b.trim(), "{what}")
            }
            (Some(Value::Num(a)), serde_json::Value::Number(b)) => {
                // bessmon publishes W and Wh as kW and kWh.
                let per = match p.unit.as_deref() {
                    Some("kW") | Some("kWh") => 1000.0,
                    _ => 1.0,
                };
                let b = b.as_f64().unwrap();
                assert!((a * per - b).abs() <= 1e-9 * b.abs().max(1.0), "{what}");
                compared += 1;
            }
            _ => panic!("{what}"),
        }
    }
    assert!(compared >= 60, "{compared} points compared");
    assert!(absent >= 20, "{absent} not-implemented points agreed on");
    // And the roles a site needs came out of the reference device.
    for role in [
        Role::BatteryPower,
        Role::ChargeEnergyTotal,
        Role::DischargeEnergyTotal,
        Role::Soc,
        Role::GridPower,
        Role::GridImportEnergyTotal,
    ] {
        assert!(profile.point_with_role(role).is_some(), "{role:?}");
    }
    assert!((counter_kwh(&sample, Role::ChargeEnergyTotal) - 234_567_890.123).abs() < 1e-6);
}

/// A device polled with `close_after_poll` opens a connection every poll; its
/// chain is walked once, not at every poll (only a lost connection may mean
/// new firmware).
#[test]
fn a_chain_is_walked_once_though_every_poll_opens_a_connection() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (simulator, cancel) = simulator(&rt, SimProfiles::sunspec());
    let site = simulator.sites[0].clone();
    let dir = tempfile::tempdir().unwrap();
    discover(
        simulator.addrs[0].port(),
        1,
        &dir.path().join("acme-pcs.toml"),
    );
    let t = format!(
        "{{ type = \"tcp\", host = \"127.0.0.1\", port = {}, close_after_poll = true }}",
        simulator.addrs[0].port()
    );
    let cfg = TestConfig::with_profile_dir(
        &sized_site_toml(
            "200ms",
            2000.0,
            1000.0,
            &device_toml("pcs", "acme-pcs", 1, "1s", &t),
        ),
        dir.path(),
    );
    let before = site.requests.load(std::sync::atomic::Ordering::Relaxed);
    let connections = site.connections.load(std::sync::atomic::Ordering::Relaxed);
    let (polls, per_poll) = rt.block_on(async {
        let mut polling = Polling::start(&cfg);
        let by = polling.collect_until("pcs", 5).await;
        polling.stop().await;
        let last = by["pcs"].last().unwrap().clone();
        assert!(last.errors.is_empty(), "{:?}", last.errors);
        (last.seq, last.requests as u64)
    });
    let made = site.requests.load(std::sync::atomic::Ordering::Relaxed) - before;
    let opened = site.connections.load(std::sync::atomic::Ordering::Relaxed) - connections;
    // The walk: the marker, three model headers and the end marker.
    let walk = 5;
    assert!(
        opened >= polls,
        "a connection per poll: {opened} for {polls} polls"
    );
    // One poll may have been under way when the pollers stopped.
    assert!(
        made <= walk + (polls + 1) * per_poll,
        "{made} requests for {polls} polls of {per_poll}: the chain was walked again"
    );
    assert!(made >= walk + polls * per_poll, "{made} requests");
    cancel.cancel();
}
