//! The shared vocabulary: what a point means for the site (its role) and
//! which way a battery power register counts. Profiles assign roles;
//! accounting, the sinks and the HTTP state read by them.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    BatteryPower,
    ChargeEnergyTotal,
    DischargeEnergyTotal,
    Soc,
    Soh,
    GridPower,
    GridImportEnergyTotal,
    GridExportEnergyTotal,
    SiteLoadPower,
    AuxEnergyTotal,
    CellVoltageMax,
    CellVoltageMin,
    CellTempMax,
    CellTempMin,
    Status,
    Alarm,
}

impl Role {
    pub const ALL: [Role; 16] = [
        Role::BatteryPower,
        Role::ChargeEnergyTotal,
        Role::DischargeEnergyTotal,
        Role::Soc,
        Role::Soh,
        Role::GridPower,
        Role::GridImportEnergyTotal,
        Role::GridExportEnergyTotal,
        Role::SiteLoadPower,
        Role::AuxEnergyTotal,
        Role::CellVoltageMax,
        Role::CellVoltageMin,
        Role::CellTempMax,
        Role::CellTempMin,
        Role::Status,
        Role::Alarm,
    ];

    /// The snake_case name used in profiles, CSV headers and payloads.
    pub fn name(self) -> &'static str {
        match self {
            Role::BatteryPower => "battery_power",
            Role::ChargeEnergyTotal => "charge_energy_total",
            Role::DischargeEnergyTotal => "discharge_energy_total",
            Role::Soc => "soc",
            Role::Soh => "soh",
            Role::GridPower => "grid_power",
            Role::GridImportEnergyTotal => "grid_import_energy_total",
            Role::GridExportEnergyTotal => "grid_export_energy_total",
            Role::SiteLoadPower => "site_load_power",
            Role::AuxEnergyTotal => "aux_energy_total",
            Role::CellVoltageMax => "cell_voltage_max",
            Role::CellVoltageMin => "cell_voltage_min",
            Role::CellTempMax => "cell_temp_max",
            Role::CellTempMin => "cell_temp_min",
            Role::Status => "status",
            Role::Alarm => "alarm",
        }
    }

    pub fn from_name(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }

    /// Roles that describe the site as a whole, so one device must provide each;
    /// status, alarms and cell extremes belong to each device.
    pub fn is_site_quantity(self) -> bool {
        !matches!(
            self,
            Role::Status
                | Role::Alarm
                | Role::CellVoltageMax
                | Role::CellVoltageMin
                | Role::CellTempMax
                | Role::CellTempMin
        )
    }

    pub fn is_counter(self) -> bool {
        matches!(
            self,
            Role::ChargeEnergyTotal
                | Role::DischargeEnergyTotal
                | Role::GridImportEnergyTotal
                | Role::GridExportEnergyTotal
                | Role::AuxEnergyTotal
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sign {
    DischargePositive,
    ChargePositive,
}

impl Sign {
    /// A battery power reading in bessmon's convention: discharge positive.
    pub fn discharge_positive(self, v: f64) -> f64 {
        match self {
            Sign::DischargePositive => v,
            Sign::ChargePositive => -v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn battery_power_is_read_discharge_positive() {
        assert_eq!(Sign::DischargePositive.discharge_positive(250.0), 250.0);
        assert_eq!(Sign::ChargePositive.discharge_positive(250.0), -250.0);
    }

    #[test]
    fn names_round_trip_and_index_the_array() {
        for (i, r) in Role::ALL.iter().enumerate() {
            assert_eq!(Role::from_name(r.name()), Some(*r));
            assert_eq!(*r as usize, i, "ALL lists roles in declaration order");
        }
        assert_eq!(Role::from_name("battery"), None);
    }
}
