//! A ready profile from a device's SunSpec chain: every fixed point of every
//! model bessmon knows, at the address the device put it, with its scale
//! factor, SunSpec's "not implemented" patterns, and the roles accounting
//! needs. Where two models offer the same quantity (an inverter's W and a DER
//! measurement's W), the one that says more wins: 701 over 10x/11x for power
//! and energy (it counts both directions), 802 over 713 over 124 for SoC.
use std::fmt::Write;

use super::chain::Chain;
use super::model::{self, Model, ModelPoint};
use crate::role::Role;

/// The bundled generic SunSpec profiles (config/profiles/ID.toml) and the
/// models each needs; a test keeps the files what [`profile_toml`] writes.
pub const GENERIC: &[(&str, &[u16])] = &[
    ("sunspec-der-storage", &[1, 701, 713]),
    ("sunspec-inverter-storage", &[1, 103, 124]),
    ("sunspec-battery", &[1, 802]),
    ("sunspec-meter", &[1, 203]),
    ("sunspec-meter-float", &[1, 213]),
];

/// The role a model's point plays, and how strongly it claims it (lower wins).
fn role_of(model: u16, point: &str) -> Option<(Role, u8)> {
    let inverter = matches!(model, 101..=103 | 111..=113);
    let meter = matches!(model, 201..=204 | 211..=214);
    Some(match (model, point) {
        (701, "W") => (Role::BatteryPower, 0),
        (701, "TotWhInj") => (Role::DischargeEnergyTotal, 0),
        (701, "TotWhAbs") => (Role::ChargeEnergyTotal, 0),
        (701, "St") => (Role::Status, 1),
        (701, "Alrm") => (Role::Alarm, 1),
        (_, "W") if inverter => (Role::BatteryPower, 1),
        (_, "WH") if inverter => (Role::DischargeEnergyTotal, 1),
        (_, "St") if inverter => (Role::Status, 0),
        (_, "Evt1") if inverter => (Role::Alarm, 0),
        (802, "SoC") => (Role::Soc, 0),
        (802, "SoH") => (Role::Soh, 0),
        (802, "CellVMax") => (Role::CellVoltageMax, 0),
        (802, "CellVMin") => (Role::CellVoltageMin, 0),
        (713, "SoC") => (Role::Soc, 1),
        (713, "SoH") => (Role::Soh, 1),
        (124, "ChaState") => (Role::Soc, 2),
        (_, "W") if meter => (Role::GridPower, 0),
        (_, "TotWhImp") if meter => (Role::GridImportEnergyTotal, 0),
        (_, "TotWhExp") if meter => (Role::GridExportEnergyTotal, 0),
        _ => return None,
    })
}

/// The point's name in a profile: model name, then the SunSpec name.
pub fn point_name(m: &Model, p: &str) -> String {
    format!("{}_{}", m.name, p.to_ascii_lowercase())
}

/// Identity read from the common model (1), for the description.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub version: String,
}

/// The profile, as TOML text, for the first instance of each known model in
/// `chain`; models bessmon does not know are listed in the description.
pub fn profile_toml(id: &str, chain: &Chain, who: &Identity) -> String {
    let known: Vec<(&Model, u16)> = chain
        .models
        .iter()
        .enumerate()
        .filter(|(i, e)| chain.models[..*i].iter().all(|f| f.id != e.id))
        .filter_map(|(_, e)| model::model(e.id).map(|m| (m, e.address)))
        .collect();
    let unknown: Vec<String> = chain
        .models
        .iter()
        .filter(|e| model::model(e.id).is_none())
        .map(|e| e.id.to_string())
        .collect();
    let mut claims: Vec<(Role, u8, String)> = Vec::new();
    for (m, _) in &known {
        for p in &m.points {
            if let Some((role, rank)) = role_of(m.id, &p.name) {
                claims.push((role, rank, point_name(m, &p.name)));
            }
        }
    }
    let winner = |role: Role| {
        claims
            .iter()
            .filter(|c| c.0 == role)
            .min_by_key(|c| c.1)
            .map(|c| c.2.clone())
    };
    let mut out = String::new();
    let ids: Vec<String> = known.iter().map(|(m, _)| m.id.to_string()).collect();
    let generic = who.manufacturer.is_empty() && who.model.is_empty();
    let mut description = if generic {
        format!(
            "Generic SunSpec profile for any device presenting models {}: their addresses are read from the device's own chain when it connects, wherever its firmware puts them. For a device with other models, run `bessmon discover`.",
            ids.join(", ")
        )
    } else {
        format!(
            "SunSpec device {} {} (serial {}, version {}): models {} from base {}.",
            who.manufacturer,
            who.model,
            who.serial,
            who.version,
            ids.join(", "),
            chain.base
        )
    };
    if !unknown.is_empty() {
        let _ = write!(
            description,
            " Not mapped (unknown to bessmon): {}.",
            unknown.join(", ")
        );
    }
    let _ = writeln!(out, "id = {}", quote(id));
    let _ = writeln!(out, "description = {}", quote(&description));
    let _ = writeln!(
        out,
        "source = {}",
        quote(&format!(
            "{}; point layout from {}",
            if generic {
                "bessmon's generic SunSpec profile"
            } else {
                "written by bessmon discover from the device's own model chain"
            },
            model::catalogue().source
        ))
    );
    // The layout is the standard's; the device said where each model sits.
    out.push_str(
        "verified = \"document\"\nsunspec = true\nmax_registers_per_read = 125\nmax_gap = 16\n",
    );
    for (m, address) in known {
        for p in &m.points {
            write_point(&mut out, m, address, p, &winner);
        }
    }
    out
}

fn write_point(
    out: &mut String,
    m: &Model,
    address: u16,
    p: &ModelPoint,
    winner: &impl Fn(Role) -> Option<String>,
) {
    let Some((kind, missing)) = model::data_type(&p.kind) else {
        return;
    };
    let name = point_name(m, &p.name);
    let _ = write!(
        out,
        "\n[[points]]\nname = \"{name}\"\ntable = \"holding\"\naddress = {}\ntype = \"{kind}\"\nmodel = {}\nmodel_offset = {}\n",
        address as u32 + p.offset as u32,
        m.id,
        p.offset
    );
    if kind == "string" {
        let _ = writeln!(out, "length = {}", p.size);
    }
    // Power and energy are published in kW and kWh like every other profile's.
    let unit = p.units.as_deref().unwrap_or("");
    let (scale, unit) = match unit {
        "W" => (Some(0.001), Some("kW")),
        "Wh" | "WH" => (Some(0.001), Some("kWh")),
        "" => (None, None),
        u => (None, Some(u)),
    };
    let mut scale = scale.unwrap_or(1.0);
    if let Some(sf) = p.sf.as_deref() {
        match sf.parse::<i32>() {
            Ok(e) => scale *= 10f64.powi(e),
            Err(_) => {
                let _ = writeln!(out, "scale_factor = \"{}\"", point_name(m, sf));
            }
        }
    }
    if scale != 1.0 {
        let _ = writeln!(out, "scale = {scale}");
    }
    if let Some(u) = unit {
        let _ = writeln!(out, "unit = {}", quote(u));
    }
    if let Some((role, _)) = role_of(m.id, &p.name) {
        if winner(role).as_deref() == Some(name.as_str()) {
            let _ = writeln!(out, "role = \"{}\"", role.name());
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|x| x.to_string()).collect();
        let _ = writeln!(out, "missing = [{}]", list.join(", "));
    }
    if m.id == 1 {
        out.push_str("poll = \"slow\"\n");
    }
    if let Some(label) = &p.label {
        let _ = writeln!(out, "description = {}", quote(label));
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `BESSMON_BLESS=1 cargo test --lib generic` rewrites the files after a
    /// change to the catalogue or to how profiles are written.
    #[test]
    fn the_bundled_generic_profiles_are_what_generate_writes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
        for (id, ids) in GENERIC {
            let text = profile_toml(id, &Chain::standard(40000, ids), &Identity::default());
            let path = dir.join(format!("{id}.toml"));
            if std::env::var_os("BESSMON_BLESS").is_some() {
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let bundled = crate::bundled::profile(id).unwrap_or_default();
            assert!(
                bundled == text,
                "{} differs from what bessmon writes for models {ids:?}; BESSMON_BLESS=1 rewrites it",
                path.display()
            );
            let p = crate::acquire::profile::Profile::parse(&path, &text).unwrap();
            assert!(p.sunspec && p.points.iter().any(|q| q.role.is_some()));
        }
    }
}
