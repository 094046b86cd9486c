//! A site's ledger as one file, to move it between instances (a site that
//! changed shards): every day, every demand month and the counter state, as
//! the store holds them, so the report on the new instance is the report on
//! the old one to the Wh and the day, and counters resume where they were.
use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::demand::MonthPeak;
use super::energy::SiteState;
use super::ledger::Day;
use super::store::Loaded;

/// The format's name and version, checked on import.
pub const FORMAT: &str = "bessmon-ledger/1";

#[derive(Debug, Serialize, Deserialize)]
pub struct LedgerFile {
    pub format: String,
    pub site: String,
    pub exported_at: String,
    pub days: BTreeMap<Date, Day>,
    /// By "YYYY-MM".
    pub months: BTreeMap<String, MonthPeak>,
    pub state: Option<SiteState>,
}

impl LedgerFile {
    pub fn from_loaded(site: &str, loaded: Loaded, at: jiff::Timestamp) -> LedgerFile {
        LedgerFile {
            format: FORMAT.into(),
            site: site.into(),
            exported_at: crate::timefmt::rfc3339(at),
            days: loaded.days,
            months: loaded
                .months
                .into_iter()
                .map(|((y, m), p)| (format!("{y:04}-{m:02}"), p))
                .collect(),
            state: loaded.state,
        }
    }

    /// Checked back into what the store holds.
    pub fn into_loaded(self) -> Result<(String, Loaded), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format `{}` is not {FORMAT}: written by another bessmon version?",
                self.format
            ));
        }
        let mut months = BTreeMap::new();
        for (k, p) in self.months {
            let month = k
                .split_once('-')
                .and_then(|(y, m)| Some((y.parse().ok()?, m.parse().ok()?)))
                .filter(|(_, m): &(i16, i8)| (1..=12).contains(m))
                .ok_or_else(|| format!("months: `{k}` is not YYYY-MM"))?;
            months.insert(month, p);
        }
        Ok((
            self.site,
            Loaded {
                days: self.days,
                months,
                state: self.state,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_round_trips_exactly() {
        let mut loaded = Loaded::default();
        let mut day = Day::default();
        day.bands.insert(
            "valley".into(),
            super::super::ledger::BandDay {
                charge_mwh: 1_234_567_891,
                price: 0.379188,
                ..Default::default()
            },
        );
        loaded
            .days
            .insert(jiff::civil::date(2026, 11, 30), day.clone());
        loaded.months.insert((2026, 11), MonthPeak::default());
        let at: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let text = serde_json::to_string(&LedgerFile::from_loaded("lab", loaded, at)).unwrap();
        let back: LedgerFile = serde_json::from_str(&text).unwrap();
        let (site, l) = back.into_loaded().unwrap();
        assert_eq!(site, "lab");
        assert_eq!(l.days[&jiff::civil::date(2026, 11, 30)], day);
        assert!(l.months.contains_key(&(2026, 11)));
        let bad = text.replace(FORMAT, "bessmon-ledger/9");
        let e = serde_json::from_str::<LedgerFile>(&bad)
            .unwrap()
            .into_loaded()
            .unwrap_err();
        assert!(e.contains("bessmon-ledger/9"), "{e}");
    }
}
