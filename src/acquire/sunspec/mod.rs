//! SunSpec: devices that describe their own register map. `chain` finds the
//! models a device presents, `model` is the catalogue of model layouts,
//! `generate` writes a profile from a chain, and [`resolve`] moves a
//! `sunspec = true` profile's points to where this device's chain puts them.
pub mod chain;
pub mod generate;
pub mod model;

pub use chain::{walk, Chain, Entry, Registers};

use std::time::Duration;

use tokio_modbus::client::Context;

use super::decode::Reply;
use super::planner::{self, Request};
use super::profile::{Profile, Table};
use super::transport::{self, CallError};

/// A device on an open connection, read for its chain. After a timeout or a
/// broken reply the connection must be dropped (`must_drop`), as for any poll.
pub struct OverModbus<'a> {
    pub ctx: &'a mut Context,
    pub unit: u8,
    pub timeout: Duration,
    pub must_drop: bool,
}

impl Registers for OverModbus<'_> {
    async fn read(&mut self, start: u16, count: u16) -> Result<Vec<u16>, String> {
        if self.must_drop {
            return Err("connection dropped after an earlier failure".into());
        }
        let req = Request {
            table: Table::Holding,
            start,
            count,
            points: Vec::new(),
        };
        match transport::read(self.ctx, self.unit, &req, self.timeout).await {
            Ok(Reply::Words(w)) => Ok(w),
            Ok(Reply::Bits(_)) => Err("bits in reply to a register read".into()),
            Err(CallError::Timeout) => {
                self.must_drop = true;
                Err(format!("no reply within {:?}", self.timeout))
            }
            Err(CallError::Exception(code)) => Err(transport::exception_text(code)),
            Err(CallError::Transport(m)) => {
                self.must_drop = true;
                Err(m)
            }
        }
    }
}

/// The profile with every point at its model's address in `chain`, or None
/// when the addresses written in the profile are already right. An error
/// names the model the device lacks, or the point its model is too short for.
pub fn resolve(profile: &Profile, chain: &Chain) -> Result<Option<Profile>, String> {
    let mut lacking: Vec<String> = Vec::new();
    for (id, _) in profile.points.iter().filter_map(|p| p.sunspec) {
        if chain.first(id).is_none() && !lacking.contains(&id.to_string()) {
            lacking.push(id.to_string());
        }
    }
    if !lacking.is_empty() {
        return Err(format!(
            "profile {} needs SunSpec model{} {}, which the device does not present (its models: {})",
            profile.id,
            if lacking.len() > 1 { "s" } else { "" },
            lacking.join(", "),
            chain.ids()
        ));
    }
    let mut moved = profile.clone();
    let mut changed = false;
    for p in &mut moved.points {
        let Some((id, offset)) = p.sunspec else {
            continue;
        };
        let Some(entry) = chain.first(id) else {
            continue;
        };
        if offset as u32 + p.width as u32 > entry.length as u32 + 2 {
            return Err(format!(
                "point {} (model {id}, offset {offset}) lies beyond the device's model {id}, which is {} registers long",
                p.name, entry.length
            ));
        }
        let address = entry.address as u32 + offset as u32;
        let address = u16::try_from(address)
            .ok()
            .filter(|a| *a as u32 + p.width as u32 <= 65536)
            .ok_or_else(|| format!("point {} would lie past address 65535", p.name))?;
        if p.address != address {
            p.address = address;
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    moved.plan = planner::plan(&moved)
        .map_err(|e| format!("profile {} at the device's addresses: {e}", profile.id))?;
    Ok(Some(moved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquire::profile::Role;

    fn chain(models: &[(u16, u16, u16)]) -> Chain {
        Chain {
            base: 40000,
            models: models
                .iter()
                .map(|&(id, address, length)| Entry {
                    id,
                    address,
                    length,
                })
                .collect(),
        }
    }

    #[test]
    fn a_generated_profile_follows_its_models_when_firmware_moves_them() {
        let found = chain(&[(1, 40002, 66), (203, 40070, 105)]);
        let who = generate::Identity {
            manufacturer: "ACME".into(),
            model: "M1".into(),
            serial: "7".into(),
            version: "1.0".into(),
        };
        let text = generate::profile_toml("acme-m1", &found, &who);
        let p = Profile::parse(std::path::Path::new("acme-m1.toml"), &text)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert!(p.sunspec);
        let (_, w) = p.point_with_role(Role::GridPower).unwrap();
        assert_eq!((w.address, w.sunspec), (40070 + 18, Some((203, 18))));
        let (_, imp) = p.point_with_role(Role::GridImportEnergyTotal).unwrap();
        assert_eq!(imp.address, 40070 + 46);
        assert_eq!(
            p.points[imp.scale_factor.unwrap()].name.as_ref(),
            "ac_meter_abcn_totwh_sf"
        );
        // Same chain: nothing to do.
        assert_eq!(resolve(&p, &found), Ok(None));
        // New firmware put a 40-register model before the meter.
        let moved = chain(&[(1, 40002, 66), (64, 40070, 38), (203, 40110, 105)]);
        let r = resolve(&p, &moved).unwrap().unwrap();
        let (_, w) = r.point_with_role(Role::GridPower).unwrap();
        assert_eq!(w.address, 40110 + 18);
        assert!(r.plan.requests(true).all(|q| q.start >= 40002));
        // A device without the meter model is named as such.
        let e = resolve(&p, &chain(&[(1, 40002, 66)])).unwrap_err();
        assert!(
            e.contains("model 203") && e.contains("its models: 1"),
            "{e}"
        );
        // A model shorter than the standard's.
        let e = resolve(&p, &chain(&[(1, 40002, 66), (203, 40070, 20)])).unwrap_err();
        assert!(e.contains("beyond the device's model 203"), "{e}");
    }

    #[test]
    fn roles_go_to_the_model_that_says_most() {
        let found = chain(&[
            (1, 40002, 66),
            (103, 40070, 50),
            (701, 40122, 153),
            (713, 40277, 7),
            (802, 40286, 62),
        ]);
        let text = generate::profile_toml("pcs", &found, &generate::Identity::default());
        let p = Profile::parse(std::path::Path::new("pcs.toml"), &text)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let owner = |r: Role| p.point_with_role(r).unwrap().1.name.to_string();
        assert_eq!(owner(Role::BatteryPower), "der_measure_ac_w");
        assert_eq!(owner(Role::ChargeEnergyTotal), "der_measure_ac_totwhabs");
        assert_eq!(owner(Role::DischargeEnergyTotal), "der_measure_ac_totwhinj");
        assert_eq!(owner(Role::Soc), "battery_soc");
        assert_eq!(owner(Role::Soh), "battery_soh");
        // The inverter's own W is still read, as a plain point.
        assert!(p
            .point("inverter_three_phase_w")
            .is_some_and(|(_, q)| q.role.is_none()));
        // Every scale factor is read in the same request as its value.
        for r in p.plan.requests(true) {
            for &i in &r.points {
                if let Some(j) = p.points[i].scale_factor {
                    assert!(
                        r.points.contains(&j),
                        "{} without its scale factor",
                        p.points[i].name
                    );
                }
            }
        }
    }
}
