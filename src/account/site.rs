//! A configured site as accounting and the sinks see it: its battery, its
//! tariff, its timing and its devices, validated by config.
use std::sync::Arc;
use std::time::Duration;

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
}
