//! The simulator as SunSpec devices: the PCS as a three-phase inverter (103)
//! with DER AC measurement (701), the BMS as a battery (802) with storage
//! capacity (713), the meter as a wye meter (203), each behind the common
//! model (1) from base 40000. The profiles are the ones `discover` would
//! write for such devices; the image gets SunSpec's framing (marker, model
//! headers, end marker) and scale factors chosen so a 1 MW site fits int16.
use std::sync::Arc;

use super::image::{SimValue, UnitImage};
use super::server::SimProfiles;
use crate::acquire::profile::{Point, Profile};
use crate::acquire::sunspec::{chain, generate, model, Chain};

pub const BASE: u16 = 40000;

/// A chain of `ids` from [`BASE`], each model as long as the standard says.
pub fn chain_of(ids: &[u16]) -> Chain {
    Chain::standard(BASE, ids)
}

fn profile(id: &str, ids: &[u16], what: &str) -> Arc<Profile> {
    let who = generate::Identity {
        manufacturer: "bessmon".into(),
        model: what.into(),
        serial: "SIM-0001".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let text = generate::profile_toml(id, &chain_of(ids), &who);
    let path = std::path::PathBuf::from(format!("{id}.toml"));
    Arc::new(
        Profile::parse(&path, &text)
            .unwrap_or_else(|e| panic!("generated SunSpec profile {id} is valid: {e:?}")),
    )
}

impl SimProfiles {
    /// PCS, BMS and meter as SunSpec devices.
    pub fn sunspec() -> SimProfiles {
        SimProfiles {
            pcs: profile("sunspec-sim-pcs", &[1, 103, 701], "sim-pcs"),
            bms: profile("sunspec-sim-bms", &[1, 802, 713], "sim-bms"),
            meter: profile("sunspec-sim-meter", &[1, 203], "sim-meter"),
            generic: false,
        }
    }
}

/// The exponent a simulated device sends in a scale-factor point: coarse
/// enough that a 1 MW, 2 MWh site fits int16 and uint16, fine enough to see.
pub fn scale_factor(p: &Point) -> i16 {
    let n = &*p.name;
    let ends = |s: &str| n.ends_with(s);
    if ends("_totwh_sf") || ends("_totvarh_sf") || ends("_totvah_sf") {
        1
    } else if ends("w_sf") || ends("va_sf") || ends("var_sf") || ends("wh_sf") || ends("max_sf") {
        2
    } else if ends("cellv_sf") {
        -3
    } else if ends("hz_sf") || ends("pf_sf") {
        -2
    } else if n.contains("_sf") {
        -1
    } else {
        0
    }
}

/// Values the simulator gives a SunSpec device beyond its roles: scale
/// factors and the common model's identity.
pub fn value(p: &Point, device: &str, serial: &str) -> Option<SimValue> {
    if p.is_scale_factor {
        return Some(SimValue::Num(scale_factor(p) as f64));
    }
    let (_, offset) = p.sunspec?;
    let text = |s: &str| Some(SimValue::Text(s.to_string()));
    match (p.sunspec?.0, offset) {
        (1, 2) => text("bessmon"),
        (1, 18) => text(device),
        (1, 42) => text(env!("CARGO_PKG_VERSION")),
        (1, 50) => text(serial),
        (1, 66) => Some(SimValue::Num(1.0)),
        _ => None,
    }
}

/// Writes the marker, each model's header and the end marker into `img`.
pub fn frame(profile: &Profile, img: &mut UnitImage) {
    let mut models: Vec<(u16, u16)> = Vec::new();
    for p in &profile.points {
        if let Some((id, offset)) = p.sunspec {
            let at = p.address - offset;
            if !models.iter().any(|m| m.0 == id) {
                models.push((id, at));
            }
        }
    }
    models.sort_by_key(|m| m.1);
    let Some(&(_, first)) = models.first() else {
        return;
    };
    let mut put = |a: u16, v: u16| {
        let a = a as usize;
        if img.holding.len() <= a {
            img.holding.resize(a + 1, 0);
        }
        img.holding[a] = v;
    };
    put(first - 2, chain::MARKER[0]);
    put(first - 1, chain::MARKER[1]);
    let mut end = first;
    for (id, at) in models {
        let length = model::model(id).map_or(0, |m| m.length);
        put(at, id);
        put(at + 1, length);
        end = at + 2 + length;
    }
    put(end, chain::END);
    put(end + 1, 0);
}
