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
    /// Prices are republished every month (China's agency purchase prices),
    /// so a month without its own `price_changes` entry is worth a warning.
    #[serde(default)]
    pub prices_monthly: bool,
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
    /// A new demand price from the same date; the previous one goes on otherwise.
    #[serde(default)]
    pub demand_price_per_kw_month: Option<f64>,
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

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "id = \"t\"\nname = \"t\"\ntimezone = \"Asia/Shanghai\"\ncurrency = \"CNY\"\nsource = \"s\"\nprices = { flat = 0.76 }\n";

    #[test]
    fn defaults_fill_what_a_short_tariff_leaves_out() {
        let f: TariffFile = toml::from_str(&format!(
            "{HEAD}demand_charge = {{ price_per_kw_month = 32 }}\n[[seasons]]\nmonths = [1]\nbands = []"
        ))
        .unwrap();
        assert_eq!(f.demand_charge.unwrap().window, "15m");
        assert_eq!(f.seasons[0].day_types, ["all"]);
        assert!(f.holidays.is_empty() && f.workdays.is_empty() && f.price_changes.is_empty());
    }

    #[test]
    fn an_unknown_key_is_refused_not_ignored() {
        let e = toml::from_str::<TariffFile>(&format!("{HEAD}holiday = []")).unwrap_err();
        assert!(e.message().contains("holiday"), "{e}");
    }
}
