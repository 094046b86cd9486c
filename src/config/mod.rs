//! Configuration: the raw shape of `bessmon.toml` (this file), how it is read and
//! layered with `BESSMON__` environment overrides (`load`), and the checks that
//! turn it into a [`validate::Validated`] model with every error reported at once.
//!
//! Durations and sizes stay strings here: serde would stop at the first bad one,
//! while validation names every bad key. Each section's checks live beside
//! this file (`daemon`, `mqtt`, `influx`, `sites`) and produce typed settings;
//! the running parts take only those.
pub mod daemon;
pub mod diff;
pub mod influx;
pub mod load;
pub mod mqtt;
pub mod secret;
pub mod shard;
pub mod sites;
pub mod validate;

use std::path::PathBuf;

use serde::Deserialize;

pub use crate::acquire::spec::Transport;
pub use crate::validation::ValidationError;
pub use daemon::DaemonSettings;
pub use influx::{InfluxApi, InfluxAuth, InfluxSettings};
pub use load::{load, ConfigSource};
pub use mqtt::{MqttSettings, MqttTls, Qos};
pub use validate::Validated;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub daemon: Daemon,
    pub mqtt: Option<Mqtt>,
    pub influxdb: Option<Influx>,
    #[serde(default)]
    pub spool: Spool,
    #[serde(default)]
    pub sites: Vec<Site>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Daemon {
    pub instance: String,
    pub state_dir: PathBuf,
    pub http_listen: String,
    pub http_token_file: Option<PathBuf>,
    /// Serve `/metrics` without the token (for scrapers that cannot send one).
    pub metrics_public: bool,
    pub profile_dirs: Vec<PathBuf>,
    pub tariff_dirs: Vec<PathBuf>,
    /// Capacity of the channel from pollers to accounting, in samples.
    pub sample_queue: usize,
}

impl Default for Daemon {
    fn default() -> Self {
        Self {
            instance: "bessmon-01".into(),
            state_dir: "/var/lib/bessmon".into(),
            http_listen: "127.0.0.1:9810".into(),
            http_token_file: None,
            metrics_public: false,
            profile_dirs: vec!["/etc/bessmon/profiles".into()],
            tariff_dirs: vec!["/etc/bessmon/tariffs".into()],
            sample_queue: 4096,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mqtt {
    #[serde(default = "default_mqtt_url")]
    pub url: String,
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// How often each site's savings are published (they also go out at every band change).
    #[serde(default = "default_savings_interval")]
    pub savings_interval: String,
    pub homeassistant: Option<HomeAssistant>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeAssistant {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
}

fn default_discovery_prefix() -> String {
    "homeassistant".into()
}

fn default_savings_interval() -> String {
    "10s".into()
}

fn default_mqtt_url() -> String {
    "mqtt://127.0.0.1:1883".into()
}
fn default_prefix() -> String {
    "bessmon".into()
}
fn default_qos() -> u8 {
    1
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Influx {
    #[serde(default = "default_influx_url")]
    pub url: String,
    #[serde(default = "default_influx_api")]
    pub api: String,
    pub org: Option<String>,
    pub bucket: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Compress request bodies.
    #[serde(default = "default_true")]
    pub gzip: bool,
    /// Lines per write, at most.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long to gather lines before a write.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: String,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
    #[serde(default = "default_request_timeout")]
    pub request_timeout: String,
    /// What the dead-letter folder may hold; the oldest files go first.
    #[serde(default = "default_dead_letter_max_bytes")]
    pub dead_letter_max_bytes: String,
}

fn default_dead_letter_max_bytes() -> String {
    "64MiB".into()
}

fn default_true() -> bool {
    true
}
fn default_batch_size() -> usize {
    5000
}
fn default_flush_interval() -> String {
    "1s".into()
}
fn default_connect_timeout() -> String {
    "5s".into()
}
fn default_request_timeout() -> String {
    "30s".into()
}

fn default_influx_url() -> String {
    "http://127.0.0.1:8086".into()
}
fn default_influx_api() -> String {
    "v2".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Spool {
    pub max_bytes: String,
    pub max_age: String,
}

impl Default for Spool {
    fn default() -> Self {
        Self {
            max_bytes: "1GiB".into(),
            max_age: "30d".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub tariff: TariffChoice,
    pub capacity_kwh: f64,
    pub rated_power_kw: f64,
    #[serde(default = "default_poll_interval")]
    pub poll_interval: String,
    /// Plausibility limit for grid meter counters when neither
    /// `grid_capacity_kw` nor measured grid power says better (default 4 x rated_power_kw).
    #[serde(default)]
    pub max_grid_kw: Option<f64>,
    /// The grid connection's contracted or transformer capacity, in kW.
    #[serde(default)]
    pub grid_capacity_kw: Option<f64>,
    /// Counter readings further apart than this are not split by time across
    /// tariff bands (default 3 x poll_interval, at least 1 minute).
    #[serde(default)]
    pub max_attribution_gap: Option<String>,
    /// Slow points are read on every `slow_every`-th poll.
    #[serde(default = "default_slow_every")]
    pub slow_every: u32,
    /// Energy the EMS may cycle, for the day's optimum (default capacity_kwh).
    #[serde(default)]
    pub usable_kwh: Option<f64>,
    /// Round-trip efficiency for the optimum when a day's own cannot be
    /// measured (nothing charged); a measured day uses its own.
    #[serde(default)]
    pub round_trip_efficiency: Option<f64>,
    #[serde(default = "default_max_cycles")]
    pub max_cycles_per_day: f64,
    /// How far ledger and meter may differ per band before it is flagged.
    #[serde(default = "default_reconcile_tolerance")]
    pub reconcile_tolerance: f64,
    /// The tariff band each rate register of the storage meter counts, rate 1 first.
    /// Unset: the usual 尖峰平谷 order (`role::default_meter_rates`).
    #[serde(default)]
    pub meter_rates: Option<Vec<String>>,
    #[serde(default)]
    pub contract: Option<crate::account::contract::ContractFile>,
    #[serde(default)]
    pub devices: Vec<Device>,
}

fn default_max_cycles() -> f64 {
    2.0
}
fn default_reconcile_tolerance() -> f64 {
    0.01
}

/// A site's tariff: a bare id, or ids each in force from a local date.
#[derive(Debug, Clone, PartialEq)]
pub enum TariffChoice {
    One(String),
    Dated(Vec<DatedTariff>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatedTariff {
    pub id: String,
    pub from: String,
}

impl TariffChoice {
    /// How the choice reads in messages and as the merged tariff's id.
    pub fn label(&self) -> String {
        match self {
            TariffChoice::One(id) => id.clone(),
            TariffChoice::Dated(v) => v
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
                .join("+"),
        }
    }
}

impl<'de> Deserialize<'de> for TariffChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TariffChoice;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a tariff id, or a list of { id = \"...\", from = \"YYYY-MM-DD\" }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TariffChoice::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element::<DatedTariff>()? {
                    out.push(x);
                }
                Ok(TariffChoice::Dated(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn default_poll_interval() -> String {
    "1s".into()
}
fn default_slow_every() -> u32 {
    10
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub id: String,
    pub profile: String,
    pub unit: u8,
    pub transport: Transport,
    /// Per-request reply timeout (default: half the site's poll interval, at
    /// most 1 s, so the defaults never disagree).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Current and voltage transformer ratios of this installation (1500/5 A
    /// is 300): they scale the profile's points marked `transformer`.
    #[serde(default)]
    pub ct_ratio: Option<f64>,
    #[serde(default)]
    pub pt_ratio: Option<f64>,
}
