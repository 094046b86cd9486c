//! A configured site as accounting and the sinks see it: its battery, its
//! tariff, its timing and its devices, validated by config.
use std::sync::Arc;
use std::time::Duration;

use super::contract::Contract;
use super::tariff::Tariff;
use crate::acquire::spec::DeviceSpec;

#[derive(Debug, PartialEq)]
pub struct SiteSpec {
    pub id: Arc<str>,
    pub name: String,
    pub tariff: Arc<Tariff>,
    pub max_grid_kw: f64,
    pub grid_capacity_kw: Option<f64>,
    pub max_attribution_gap: Duration,
    pub capacity_kwh: f64,
    pub rated_power_kw: f64,
    pub poll_interval: Duration,
    pub devices: Vec<Arc<DeviceSpec>>,
    pub settle: Settle,
}

impl SiteSpec {
    pub fn terms(&self) -> super::optimum::Terms {
        super::optimum::Terms {
            battery: super::optimum::Battery {
                capacity_kwh: self.capacity_kwh,
                rated_kw: self.rated_power_kw,
                usable_kwh: self.settle.usable_kwh,
                round_trip_efficiency: self.settle.round_trip_efficiency,
                max_cycles_per_day: self.settle.max_cycles_per_day,
            },
            meter_rates: self.settle.meter_rates.clone(),
            reconcile_tolerance: self.settle.reconcile_tolerance,
            memo: Default::default(),
        }
    }
}

/// How a site's money is settled and judged: what its best day could earn,
/// how its storage meter numbers rates, and its contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    pub usable_kwh: f64,
    pub round_trip_efficiency: Option<f64>,
    pub max_cycles_per_day: f64,
    pub reconcile_tolerance: f64,
    /// Band name per meter rate, rate 1 first.
    pub meter_rates: Vec<String>,
    pub contract: Option<Contract>,
}
