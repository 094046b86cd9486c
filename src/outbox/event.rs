//! What the daemon tells the outside world, before any sink shapes it: one
//! vocabulary for MQTT and InfluxDB, so both carry the same values.
use std::sync::Arc;

use jiff::Timestamp;

use crate::account::report::Report;

#[derive(Debug, Clone)]
pub enum Event {
    /// One poll's decoded values of a device that answered.
    DeviceState {
        site: Arc<str>,
        device: Arc<str>,
        at: Timestamp,
        /// The device's poll number since start.
        seq: u64,
        /// Numeric values by point name (flags as 0/1; text is not published here).
        values: Vec<(Arc<str>, f64)>,
        invalid: Vec<Arc<str>>,
    },
    /// Every poll: whether the device answered, how long the poll took, errors.
    PollStatus {
        site: Arc<str>,
        device: Arc<str>,
        at: Timestamp,
        online: bool,
        poll_ms: f64,
        errors: u32,
        /// The device's poll number since the daemon started: within a run,
        /// a gap in the stored numbers is a lost point.
        seq: u64,
    },
    /// A device went online or offline (and once at start).
    Availability {
        site: Arc<str>,
        device: Arc<str>,
        at: Timestamp,
        online: bool,
    },
    /// The band in force and when it ends (at start and at every change).
    Tariff {
        site: Arc<str>,
        at: Timestamp,
        band: String,
        price: f64,
        currency: String,
        until: Timestamp,
    },
    /// The site at a glance, named by role whatever the devices' profiles
    /// call their points: once per poll of the device that measures battery
    /// power (or SOC). Powers in kW, battery discharge and grid import
    /// positive.
    SiteState {
        site: Arc<str>,
        at: Timestamp,
        soc: Option<f64>,
        battery_power_kw: Option<f64>,
        grid_power_kw: Option<f64>,
        band: String,
        price: f64,
    },
    /// Savings so far: today (per band), this month and lifetime.
    Savings {
        site: Arc<str>,
        at: Timestamp,
        currency: String,
        today: Box<Report>,
        month: Box<Report>,
        lifetime: Box<Report>,
    },
}

impl Event {
    pub fn at(&self) -> Timestamp {
        match self {
            Event::DeviceState { at, .. }
            | Event::PollStatus { at, .. }
            | Event::Availability { at, .. }
            | Event::Tariff { at, .. }
            | Event::SiteState { at, .. }
            | Event::Savings { at, .. } => *at,
        }
    }
}
