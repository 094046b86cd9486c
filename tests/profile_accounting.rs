//! A day of accounting through each bundled device profile equals the same
//! day through the simulator's own profiles: the simulator serves the bundled
//! map from the same physics, the daemon polls it on a clock stepped from one
//! Chongqing boundary to the next, and the day's per-band energy and savings
//! must come out the same, to the resolution of the profile's registers.
mod support;

use std::collections::HashSet;

use bessmon::acquire::profile::{Profile, ProfileCatalog, Role};
use bessmon::sim::{self, SimProfiles, SiteParams};
use jiff::civil::date;
use serde_json::Value;
use support::stepped::{chongqing_params, local, Run};
use support::*;

fn chongqing() -> SiteParams {
    SiteParams {
        counter_offset_wh: 77_777_777,
        ..chongqing_params()
    }
}

fn roles(p: &Profile) -> HashSet<Role> {
    p.points.iter().filter_map(|q| q.role).collect()
}

/// One day, 2025-02-11, polled at every boundary, through these profiles.
/// Each simulator device is configured with the profile it serves; one whose
/// roles a swapped-in profile also provides is left out (a site takes each
/// role from one device).
fn day_through(profiles: SimProfiles) -> Value {
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let day = date(2025, 2, 11);
    let units = [
        ("pcs", sim::UNIT_PCS, profiles.pcs.clone()),
        ("bms", sim::UNIT_BMS, profiles.bms.clone()),
        ("meter", sim::UNIT_METER, profiles.meter.clone()),
    ];
    let swapped: Vec<HashSet<Role>> = units
        .iter()
        .filter(|u| !u.2.id.starts_with("bessmon-sim-"))
        .map(|u| roles(&u.2))
        .collect();
    let devices = move |port: u16| {
        let t = format!("{{ type = \"tcp\", host = \"127.0.0.1\", port = {port} }}");
        units
            .iter()
            .filter(|(_, _, p)| {
                let own = p.id.starts_with("bessmon-sim-");
                !own || swapped.iter().all(|s| s.is_disjoint(&roles(p)))
            })
            .map(|(id, unit, p)| device_toml(id, &p.id, *unit, "150ms", &t))
            .collect::<String>()
    };
    let run = Run::start_with(local(&tz, day, 0, 0), chongqing(), "", profiles, devices);
    for h in [8, 11, 17, 20, 22] {
        run.step(local(&tz, day, h, 0));
    }
    run.step(local(&tz, day.tomorrow().unwrap(), 0, 0));
    let cfg = run.finish();
    let out = cli_c(
        "report",
        &cfg.path,
        &[
            "--site",
            "lab",
            "--period",
            "2025-02-11",
            "--format",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kwh(report: &Value, band: &str, flow: &str) -> f64 {
    report["bands"][band][flow].as_f64().unwrap_or(0.0)
}

#[test]
fn a_day_through_each_bundled_profile_equals_the_day_through_the_simulators_own() {
    let catalog = ProfileCatalog::new(&[] as &[std::path::PathBuf]);
    let own = day_through(SimProfiles::bundled());
    let savings = own["net_savings"].as_f64().unwrap();
    assert!(savings > 500.0, "a day of arbitrage: {own}");
    let bands = ["valley", "flat", "peak"];
    let mut tried = 0;
    for (id, _) in bessmon::bundled::PROFILES {
        if id.starts_with("bessmon-sim-") {
            continue;
        }
        let p = catalog.load(id).unwrap().unwrap();
        let r = roles(&p);
        let mut served = SimProfiles::bundled();
        // The unit whose roles it takes. A converter that counts only one
        // direction (sunspec-inverter-storage: WH is discharge only) books
        // from power, which readings hours apart cannot integrate: it is
        // read back in tests/bundled_profiles.rs, not accounted here.
        let counters =
            r.contains(&Role::ChargeEnergyTotal) == r.contains(&Role::DischargeEnergyTotal);
        if r.contains(&Role::BatteryPower) {
            if !counters {
                continue;
            }
            served.pcs = p.clone();
        } else if r.contains(&Role::Soc) {
            served.bms = p.clone();
        } else {
            served.meter = p.clone();
        }
        tried += 1;
        let theirs = day_through(served);
        // Battery counters in 10 Wh steps (SunSpec TotWh_SF = 1) against the
        // simulator's 1 Wh: each band's energy is a difference of two readings.
        let tol = if r.contains(&Role::ChargeEnergyTotal) {
            0.02
        } else {
            1e-9
        };
        for band in bands {
            for flow in ["charge_kwh", "discharge_kwh"] {
                let (a, b) = (kwh(&own, band, flow), kwh(&theirs, band, flow));
                assert!(
                    (a - b).abs() <= tol,
                    "{id} {band} {flow}: {b} against the simulator's own {a}"
                );
            }
        }
        let theirs_savings = theirs["net_savings"].as_f64().unwrap();
        assert!(
            (theirs_savings - savings).abs() <= tol * 2.0 * 1.5 * bands.len() as f64 + 0.005,
            "{id}: savings {theirs_savings} against {savings}"
        );
        assert_eq!(theirs["quarantined_kwh"], 0.0, "{id}: {theirs}");
    }
    assert!(tried >= 8, "{tried} bundled profiles accounted");
}
