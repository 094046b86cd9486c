//! Every bundled device profile, served by the simulator from its physics and
//! read back with `bessmon read`: each role's value must be what the
//! simulator holds, to the register's own resolution (an f32's spacing at its
//! magnitude, an integer's scale). A profile whose type, word order, scale or
//! address disagrees with how the simulator encodes it fails here.
mod support;

use std::sync::Arc;

use bessmon::acquire::profile::{DataType, Point, Profile, ProfileCatalog};
use bessmon::role::{RateFlow, Role};
use bessmon::sim::{self, SimProfiles, SiteParams};
use support::*;

/// Bundled profiles that are not the simulator's own, and the unit each plays.
fn bundled_device_profiles() -> Vec<(String, u8)> {
    let dirs: [std::path::PathBuf; 0] = [];
    let catalog = ProfileCatalog::new(&dirs);
    let mut out = Vec::new();
    for (id, _) in bessmon::bundled::PROFILES {
        if id.starts_with("bessmon-sim-") {
            continue;
        }
        let p = catalog.load(id).unwrap().unwrap();
        let roles: Vec<Role> = p.points.iter().filter_map(|p| p.role).collect();
        let unit = if roles.contains(&Role::Soc) && !roles.contains(&Role::BatteryPower) {
            sim::UNIT_BMS
        } else if roles.contains(&Role::BatteryPower) {
            sim::UNIT_PCS
        } else {
            sim::UNIT_METER
        };
        out.push((id.to_string(), unit));
    }
    out
}

/// What one read of a point can differ from the truth by: an f32 rounds to
/// its spacing; an integer register truncates to its scale.
fn resolution(profile: &Profile, p: &Point, truth: f64) -> f64 {
    // A SunSpec device sends the scale factor the simulator chose for it.
    let sf = p.scale_factor.map_or(1.0, |j| {
        10f64.powi(sim::sunspec::scale_factor(&profile.points[j]) as i32)
    });
    match p.kind {
        DataType::F32 => {
            let raw = (truth / p.scale) as f32;
            (f32::from_bits(raw.abs().to_bits() + 1) - raw.abs()) as f64 * p.scale.abs() * 2.0
        }
        DataType::F64 => 1e-9 * truth.abs().max(1.0),
        _ => p.scale.abs() * sf * 1.000_001,
    }
}

fn value(text: &str, point: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(point))
        .unwrap_or_else(|| panic!("no {point} in\n{text}"));
    line.split_whitespace()
        .rev()
        .find_map(|w| w.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no value for {point} in\n{text}"))
}

#[test]
fn every_bundled_profile_reads_back_what_the_simulator_holds() {
    let profiles = bundled_device_profiles();
    assert!(
        profiles.len() >= 4,
        "the bundled meters at least: {profiles:?}"
    );
    let dirs: [std::path::PathBuf; 0] = [];
    let catalog = ProfileCatalog::new(&dirs);
    for (id, unit) in profiles {
        let profile: Arc<Profile> = catalog.load(&id).unwrap().unwrap();
        let mut served = SimProfiles::bundled();
        match unit {
            sim::UNIT_PCS => served.pcs = profile.clone(),
            sim::UNIT_BMS => served.bms = profile.clone(),
            _ => served.meter = profile.clone(),
        }
        // Charging in the valley, with counters far from zero so an f32's
        // coarse spacing and a 32-bit register both show.
        let rt = tokio::runtime::Runtime::new().unwrap();
        let params = SiteParams {
            counter_offset_wh: 123_456_789,
            ..SiteParams::standard(0)
        };
        let (simulator, cancel) = frozen_simulator(&rt, params, served);
        let state = simulator.sites[0].site.lock().unwrap().state.clone();
        let soc = simulator.sites[0].site.lock().unwrap().soc();
        let text = read_device(simulator.addrs[0].port(), unit, &id, None, &[]);
        let mut checked = 0;
        for p in &profile.points {
            let Some(role) = p.role else { continue };
            let truth = match role {
                Role::GridPower => state.grid_kw(),
                Role::BatteryPower => state.power_kw,
                Role::GridImportEnergyTotal => state.import_wh / 1000.0,
                Role::GridExportEnergyTotal => state.export_wh / 1000.0,
                Role::ChargeEnergyTotal => state.charge_wh / 1000.0,
                Role::DischargeEnergyTotal => state.discharge_wh / 1000.0,
                Role::Soc => soc * 100.0,
                Role::Soh => 98.5,
                Role::CellVoltageMax => 3.21 + 0.15 * soc,
                Role::CellVoltageMin => 3.19 + 0.15 * soc,
                r => match r.meter_rate() {
                    Some((RateFlow::Charge, i)) => state.rate_charge_wh[i] / 1000.0,
                    Some((RateFlow::Discharge, i)) => state.rate_discharge_wh[i] / 1000.0,
                    // The simulator's meter keeps no per-rate grid registers.
                    _ => continue,
                },
            };
            let read = value(&text, &p.name);
            let tol = resolution(&profile, p, truth);
            assert!(
                (read - truth).abs() <= tol,
                "{id} {}: read {read}, the simulator holds {truth} (resolution {tol})\n{text}",
                p.name
            );
            checked += 1;
        }
        assert!(checked >= 1, "{id}: no role point compared");
        assert!(
            state.import_wh > 100_000_000.0 || state.charge_wh > 100_000_000.0,
            "counters far from zero: {state:?}"
        );
        cancel.cancel();
    }
}
