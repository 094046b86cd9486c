//! The ledger's home on disk: a redb file in `daemon.state_dir`.
//!
//! Days, demand months and each site's counter state are written in one
//! transaction, so after a crash (even SIGKILL) the counters resume from
//! exactly the readings the ledger last booked: no energy is lost or counted
//! twice. The file is opened in redb's single-writer mode so `bessmon report`
//! can read it while the daemon runs.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use redb::{
    Builder, ConcurrencyMode, Database, ReadOnlyDatabase, ReadableDatabase, TableDefinition,
};

use super::demand::{Month, MonthPeak};
use super::energy::{Changes, SiteState};
use super::ledger::Day;

const DAYS: TableDefinition<&str, &[u8]> = TableDefinition::new("ledger_days");
const MONTHS: TableDefinition<&str, &[u8]> = TableDefinition::new("demand_months");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("site_state");

pub const FILE: &str = "ledger.redb";

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct StoreError {
    pub path: PathBuf,
    pub message: String,
}

/// What a site had when the daemon last stopped (or crashed).
#[derive(Debug, Default)]
pub struct Loaded {
    pub days: BTreeMap<Date, Day>,
    pub months: BTreeMap<Month, MonthPeak>,
    pub state: Option<SiteState>,
}

pub struct Store {
    /// `None` after an I/O error until it is reopened: redb refuses every
    /// operation on a database that saw one ("Previous I/O error"), so a
    /// disk that filled up and was freed again needs a fresh open.
    db: Option<Database>,
    path: PathBuf,
    broken: bool,
}

fn open_db(path: &Path) -> Result<Database, StoreError> {
    // The ledger is small (a row per site and day); redb's 1 GiB default
    // cache would only let RSS grow with the years of history kept.
    Builder::new()
        .set_cache_size(16 << 20)
        .set_concurrency_mode(ConcurrencyMode::SingleWriter)
        .create(path)
        .map_err(|e| err(path, e))
}

fn err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn day_key(site: &str, d: Date) -> String {
    format!("{site}/{d}")
}

fn month_key(site: &str, (y, m): Month) -> String {
    format!("{site}/{y:04}-{m:02}")
}

/// All keys of a site sort between `site/` and `site0` ('0' follows '/').
fn site_range(site: &str) -> (String, String) {
    (format!("{site}/"), format!("{site}0"))
}

fn load_from<T: ReadableDatabase>(db: &T, path: &Path, site: &str) -> Result<Loaded, StoreError> {
    let txn = db.begin_read().map_err(|e| err(path, e))?;
    let mut out = Loaded::default();
    let (lo, hi) = site_range(site);
    match txn.open_table(DAYS) {
        Ok(t) => {
            for item in t
                .range(lo.as_str()..hi.as_str())
                .map_err(|e| err(path, e))?
            {
                let (k, v) = item.map_err(|e| err(path, e))?;
                let date: Date = k.value()[lo.len()..]
                    .parse()
                    .map_err(|e| err(path, format!("bad key {}: {e}", k.value())))?;
                let day: Day = serde_json::from_slice(v.value())
                    .map_err(|e| err(path, format!("day {}: {e}", k.value())))?;
                out.days.insert(date, day);
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(out),
        Err(e) => return Err(err(path, e)),
    }
    if let Ok(t) = txn.open_table(MONTHS) {
        for item in t
            .range(lo.as_str()..hi.as_str())
            .map_err(|e| err(path, e))?
        {
            let (k, v) = item.map_err(|e| err(path, e))?;
            let key = &k.value()[lo.len()..];
            let (y, m) = key
                .split_once('-')
                .ok_or_else(|| err(path, format!("bad key {}", k.value())))?;
            let month = (y.parse().unwrap_or(0), m.parse().unwrap_or(0));
            let peak: MonthPeak = serde_json::from_slice(v.value()).map_err(|e| err(path, e))?;
            out.months.insert(month, peak);
        }
    }
    if let Ok(t) = txn.open_table(STATE) {
        if let Some(v) = t.get(site).map_err(|e| err(path, e))? {
            out.state = Some(
                serde_json::from_slice(v.value())
                    .map_err(|e| err(path, format!("state of {site}: {e}")))?,
            );
        }
    }
    Ok(out)
}

impl Store {
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| err(state_dir, format!("cannot create the state directory: {e}")))?;
        let path = state_dir.join(FILE);
        let db = open_db(&path)?;
        Ok(Store {
            db: Some(db),
            path,
            broken: false,
        })
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db.as_ref().ok_or_else(|| {
            err(
                &self.path,
                "closed after an I/O error; reopened at the next commit",
            )
        })
    }

    pub fn load(&self, site: &str) -> Result<Loaded, StoreError> {
        load_from(self.db()?, &self.path, site)
    }

    /// Writes every site's changes in one transaction. After a failure the
    /// file is reopened before the next attempt.
    pub fn commit(&mut self, changes: &[Changes]) -> Result<(), StoreError> {
        if self.broken {
            // The old handle first: redb locks the file while it is open.
            self.db = None;
            self.db = Some(open_db(&self.path)?);
            self.broken = false;
            tracing::info!(
                "ledger {}: reopened after an I/O error",
                self.path.display()
            );
        }
        let r = self.write(changes);
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    fn write(&self, changes: &[Changes]) -> Result<(), StoreError> {
        let p = &self.path;
        let txn = self.db()?.begin_write().map_err(|e| err(p, e))?;
        {
            let mut days = txn.open_table(DAYS).map_err(|e| err(p, e))?;
            let mut months = txn.open_table(MONTHS).map_err(|e| err(p, e))?;
            let mut state = txn.open_table(STATE).map_err(|e| err(p, e))?;
            for c in changes {
                for (d, day) in &c.days {
                    let v = serde_json::to_vec(day).map_err(|e| err(p, e))?;
                    days.insert(day_key(&c.site, *d).as_str(), v.as_slice())
                        .map_err(|e| err(p, e))?;
                }
                for (m, peak) in &c.months {
                    let v = serde_json::to_vec(peak).map_err(|e| err(p, e))?;
                    months
                        .insert(month_key(&c.site, *m).as_str(), v.as_slice())
                        .map_err(|e| err(p, e))?;
                }
                let v = serde_json::to_vec(&c.state).map_err(|e| err(p, e))?;
                state
                    .insert(&*c.site, v.as_slice())
                    .map_err(|e| err(p, e))?;
            }
        }
        txn.commit().map_err(|e| err(p, e))
    }
}

impl Store {
    /// Whether `site` has anything in this ledger.
    pub fn has(&self, site: &str) -> Result<bool, StoreError> {
        let l = self.load(site)?;
        Ok(l.state.is_some() || !l.days.is_empty() || !l.months.is_empty())
    }

    /// Writes a site's whole ledger, replacing whatever it had here, in one
    /// transaction.
    pub fn replace(&self, site: &str, loaded: &Loaded) -> Result<(), StoreError> {
        let p = &self.path;
        let txn = self.db()?.begin_write().map_err(|e| err(p, e))?;
        {
            let (lo, hi) = site_range(site);
            let mut days = txn.open_table(DAYS).map_err(|e| err(p, e))?;
            let mut months = txn.open_table(MONTHS).map_err(|e| err(p, e))?;
            let mut state = txn.open_table(STATE).map_err(|e| err(p, e))?;
            days.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(|e| err(p, e))?;
            months
                .retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(|e| err(p, e))?;
            state.remove(site).map_err(|e| err(p, e))?;
            for (d, day) in &loaded.days {
                let v = serde_json::to_vec(day).map_err(|e| err(p, e))?;
                days.insert(day_key(site, *d).as_str(), v.as_slice())
                    .map_err(|e| err(p, e))?;
            }
            for (m, peak) in &loaded.months {
                let v = serde_json::to_vec(peak).map_err(|e| err(p, e))?;
                months
                    .insert(month_key(site, *m).as_str(), v.as_slice())
                    .map_err(|e| err(p, e))?;
            }
            if let Some(s) = &loaded.state {
                let v = serde_json::to_vec(s).map_err(|e| err(p, e))?;
                state.insert(site, v.as_slice()).map_err(|e| err(p, e))?;
            }
        }
        txn.commit().map_err(|e| err(p, e))
    }
}

impl Store {
    /// Writes these days and months of a site over whatever the ledger has
    /// for the same keys, leaving everything else (and the counters' state)
    /// alone: re-pricing and backfilling.
    pub fn put(
        &self,
        site: &str,
        days: &BTreeMap<Date, Day>,
        months: &BTreeMap<Month, MonthPeak>,
    ) -> Result<(), StoreError> {
        let p = &self.path;
        let txn = self.db()?.begin_write().map_err(|e| err(p, e))?;
        {
            let mut t = txn.open_table(DAYS).map_err(|e| err(p, e))?;
            for (d, day) in days {
                let v = serde_json::to_vec(day).map_err(|e| err(p, e))?;
                t.insert(day_key(site, *d).as_str(), v.as_slice())
                    .map_err(|e| err(p, e))?;
            }
            let mut t = txn.open_table(MONTHS).map_err(|e| err(p, e))?;
            for (m, peak) in months {
                let v = serde_json::to_vec(peak).map_err(|e| err(p, e))?;
                t.insert(month_key(site, *m).as_str(), v.as_slice())
                    .map_err(|e| err(p, e))?;
            }
        }
        txn.commit().map_err(|e| err(p, e))
    }
}

/// Reads a site's ledger, also while a daemon holds the file for writing.
pub fn read_only(state_dir: &Path, site: &str) -> Result<Loaded, StoreError> {
    let path = state_dir.join(FILE);
    if !path.exists() {
        return Err(err(
            &path,
            "no ledger here yet (has the daemon run with this state_dir?)",
        ));
    }
    let db: ReadOnlyDatabase = Builder::new()
        .set_concurrency_mode(ConcurrencyMode::SingleWriter)
        .open_read_only(&path)
        .map_err(|e| err(&path, e))?;
    load_from(&db, &path, site)
}
