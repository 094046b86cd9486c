//! A tariff file as written, before any check: serde's view of the TOML.
use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TariffFile {
    pub id: String,
    pub name: String,
    pub timezone: String,
    pub currency: String,
    pub source: String,
    #[serde(default)]
    pub notes: Option<String>,
    pub prices: BTreeMap<String, f64>,
    pub demand_charge: Option<DemandFile>,
    #[serde(default)]
    pub holidays: Vec<String>,
    #[serde(default)]
    pub workdays: Vec<String>,
    #[serde(default)]
    pub price_changes: Vec<PriceChangeFile>,
    #[serde(default)]
    pub seasons: Vec<SeasonFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DemandFile {
    pub price_per_kw_month: f64,
    #[serde(default = "default_window")]
    pub window: String,
}

fn default_window() -> String {
    "15m".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PriceChangeFile {
    pub from: String,
    pub prices: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeasonFile {
    pub months: Vec<u8>,
    #[serde(default = "default_day_types")]
    pub day_types: Vec<String>,
    pub bands: Vec<BandFile>,
}

fn default_day_types() -> Vec<String> {
    vec!["all".into()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BandFile {
    pub start: String,
    pub end: String,
    pub band: String,
}
