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
    /// A settlement meter's energy per tariff rate (尖峰平谷), in its own
    /// time-of-use clock: rate 1 first, mapped to bands by `meter_rates`.
    ChargeEnergyRate1,
    ChargeEnergyRate2,
    ChargeEnergyRate3,
    ChargeEnergyRate4,
    DischargeEnergyRate1,
    DischargeEnergyRate2,
    DischargeEnergyRate3,
    DischargeEnergyRate4,
    GridImportEnergyRate1,
    GridImportEnergyRate2,
    GridImportEnergyRate3,
    GridImportEnergyRate4,
    GridExportEnergyRate1,
    GridExportEnergyRate2,
    GridExportEnergyRate3,
    GridExportEnergyRate4,
}

impl Role {
    pub const ALL: [Role; 32] = [
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
        Role::ChargeEnergyRate1,
        Role::ChargeEnergyRate2,
        Role::ChargeEnergyRate3,
        Role::ChargeEnergyRate4,
        Role::DischargeEnergyRate1,
        Role::DischargeEnergyRate2,
        Role::DischargeEnergyRate3,
        Role::DischargeEnergyRate4,
        Role::GridImportEnergyRate1,
        Role::GridImportEnergyRate2,
        Role::GridImportEnergyRate3,
        Role::GridImportEnergyRate4,
        Role::GridExportEnergyRate1,
        Role::GridExportEnergyRate2,
        Role::GridExportEnergyRate3,
        Role::GridExportEnergyRate4,
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
            Role::ChargeEnergyRate1 => "charge_energy_rate1",
            Role::ChargeEnergyRate2 => "charge_energy_rate2",
            Role::ChargeEnergyRate3 => "charge_energy_rate3",
            Role::ChargeEnergyRate4 => "charge_energy_rate4",
            Role::DischargeEnergyRate1 => "discharge_energy_rate1",
            Role::DischargeEnergyRate2 => "discharge_energy_rate2",
            Role::DischargeEnergyRate3 => "discharge_energy_rate3",
            Role::DischargeEnergyRate4 => "discharge_energy_rate4",
            Role::GridImportEnergyRate1 => "grid_import_energy_rate1",
            Role::GridImportEnergyRate2 => "grid_import_energy_rate2",
            Role::GridImportEnergyRate3 => "grid_import_energy_rate3",
            Role::GridImportEnergyRate4 => "grid_import_energy_rate4",
            Role::GridExportEnergyRate1 => "grid_export_energy_rate1",
            Role::GridExportEnergyRate2 => "grid_export_energy_rate2",
            Role::GridExportEnergyRate3 => "grid_export_energy_rate3",
            Role::GridExportEnergyRate4 => "grid_export_energy_rate4",
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
        ) || self.meter_rate().is_some()
    }

    /// For a per-rate meter register: which flow it counts and its rate
    /// index (0 for rate 1).
    pub fn meter_rate(self) -> Option<(RateFlow, usize)> {
        let i = self as usize;
        let first = Role::ChargeEnergyRate1 as usize;
        (i >= first).then(|| {
            let k = i - first;
            (RateFlow::ALL[k / 4], k % 4)
        })
    }
}

/// The usual numbering of a Chinese multi-rate meter's rates: 1 尖 (critical
/// peak), 2 峰 (peak), 3 平 (flat), 4 谷 (valley): the band each counts.
pub fn default_meter_rates() -> Vec<String> {
    ["critical", "peak", "flat", "valley"]
        .map(String::from)
        .to_vec()
}

/// What a settlement meter's per-rate register counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateFlow {
    /// Forward active energy at the storage meter: into the battery.
    Charge,
    /// Reverse active energy at the storage meter: out of the battery.
    Discharge,
    GridImport,
    GridExport,
}

impl RateFlow {
    pub const ALL: [RateFlow; 4] = [
        RateFlow::Charge,
        RateFlow::Discharge,
        RateFlow::GridImport,
        RateFlow::GridExport,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RateFlow::Charge => "charge",
            RateFlow::Discharge => "discharge",
            RateFlow::GridImport => "grid_import",
            RateFlow::GridExport => "grid_export",
        }
    }

    /// The role of rate `rate` (0 for rate 1) of this flow.
    pub fn role(self, rate: usize) -> Role {
        Role::ALL[Role::ChargeEnergyRate1 as usize + 4 * self as usize + rate.min(3)]
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
        assert_eq!(
            Role::from_name("discharge_energy_rate4").and_then(Role::meter_rate),
            Some((RateFlow::Discharge, 3))
        );
        assert_eq!(RateFlow::GridImport.role(0), Role::GridImportEnergyRate1);
        assert!(Role::GridExportEnergyRate2.is_counter());
        assert_eq!(Role::Alarm.meter_rate(), None);
    }
}
