//! History in, ledger out: the CSV format `bessmon replay` reads, turned into
//! the same observations the daemon feeds its accounts.
//!
//! Columns: `timestamp`, then any of the role names (`battery_power`,
//! `charge_energy_total`, `discharge_energy_total`, `grid_power`,
//! `grid_import_energy_total`, `grid_export_energy_total`, `aux_energy_total`,
//! `soc`, ...). Powers in kW (battery discharge positive, grid import positive),
//! counters in kWh, an empty cell for a missing value. Timestamps in RFC 3339
//! with an offset, or local date-times (`2025-01-01 08:00:00`) read in the
//! tariff's time zone.
use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::demand::{Month, MonthPeak};
use super::energy::{Measured, Observation, SiteAccount, SiteSetup};
use super::ledger::Day;
use super::report::{Period, Report};
use crate::role::Role;

#[derive(Debug, thiserror::Error)]
#[error("{file}: line {line}: {message}")]
pub struct CsvError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The columns of a CSV history: which roles, in which order.
#[derive(Debug, Clone)]
pub struct Columns {
    pub roles: Vec<Role>,
}

impl Columns {
    pub fn has(&self, r: Role) -> bool {
        self.roles.contains(&r)
    }
}

pub fn parse_timestamp(s: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let dt: jiff::civil::DateTime = s
        .parse()
        .map_err(|_| format!("`{s}` is neither RFC 3339 nor a local YYYY-MM-DD HH:MM:SS"))?;
    tz.to_ambiguous_timestamp(dt)
        .earlier()
        .map_err(|e| format!("`{s}`: {e}"))
}

fn utf8(cell: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(cell).map_err(|_| "a cell is not UTF-8 text".into())
}

/// Streams a CSV history as observations; stops at the first bad line.
///
/// Read with the `csv` crate: quoted cells (a spreadsheet's export quotes
/// timestamps), CRLF line ends, a UTF-8 byte order mark and blank lines are
/// all taken as a CSV reader should.
pub struct CsvHistory<R> {
    file: String,
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    pub columns: Columns,
    tz: TimeZone,
}

impl<R: std::io::Read> CsvHistory<R> {
    pub fn new(file: &str, reader: R, tz: TimeZone) -> Result<Self, CsvError> {
        let fail = |line, message: String| CsvError {
            file: file.to_string(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            // Rows end at LF; a CR before it is trimmed as whitespace. With
            // CRLF as one terminator the reader would date a row from the
            // CR before it, one line early in every error.
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(reader);
        let mut header = csv::StringRecord::new();
        match reader.read_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err(fail(1, "empty file: expected a header line".into())),
            Err(e) => return Err(fail(1, e.to_string())),
        }
        let line = header.position().map_or(1, |p| p.line() as usize);
        let mut cols = header.iter();
        if cols.next() != Some("timestamp") {
            return Err(fail(line, "the first column must be `timestamp`".into()));
        }
        let mut roles = Vec::new();
        for c in cols {
            match Role::from_name(c) {
                Some(r) if roles.contains(&r) => {
                    return Err(fail(line, format!("column `{c}` appears twice")))
                }
                Some(r) => roles.push(r),
                None => {
                    return Err(fail(
                        line,
                        format!("`{c}` is not a role name (see README: replay)"),
                    ))
                }
            }
        }
        if roles.is_empty() {
            return Err(fail(line, "no value columns".into()));
        }
        Ok(CsvHistory {
            file: file.to_string(),
            reader,
            record: csv::ByteRecord::new(),
            columns: Columns { roles },
            tz,
        })
    }

    /// The next row's observations, `None` at the end.
    pub fn next_row(&mut self, out: &mut Vec<Observation>) -> Result<bool, CsvError> {
        out.clear();
        let mut read = self.reader.read_byte_record(&mut self.record);
        // A blank line (perhaps just a CR) is no row.
        while matches!(read, Ok(true)) && self.record.iter().all(<[u8]>::is_empty) {
            read = self.reader.read_byte_record(&mut self.record);
        }
        let line = match (&read, self.record.position()) {
            (Err(e), _) => e.position().map_or(0, |p| p.line() as usize),
            (_, Some(p)) => p.line() as usize,
            (_, None) => 0,
        };
        let fail = |message: String| CsvError {
            file: self.file.clone(),
            line,
            message,
        };
        if !read.map_err(|e| fail(e.to_string()))? {
            return Ok(false);
        }
        let columns = self.columns.roles.len() + 1;
        if self.record.len() != columns {
            return Err(fail(format!(
                "{} cells, the header has {columns}",
                self.record.len()
            )));
        }
        let at = parse_timestamp(utf8(&self.record[0]).map_err(fail)?, &self.tz).map_err(fail)?;
        for (cell, &role) in self.record.iter().skip(1).zip(&self.columns.roles) {
            let cell = utf8(cell).map_err(fail)?;
            let v = if cell.is_empty() {
                None
            } else {
                let v: f64 = cell
                    .parse()
                    .map_err(|_| fail(format!("{} `{cell}` is not a number", role.name())))?;
                if !v.is_finite() {
                    return Err(fail(format!("`{cell}` is not a finite number")));
                }
                Some(v)
            };
            let reading = if role.is_counter() {
                match v {
                    Some(kwh) if kwh < 0.0 => {
                        return Err(fail(format!("a counter cannot be negative: {cell}")))
                    }
                    // kWh to whole mWh: counters telescope, so rounding never accumulates.
                    Some(kwh) => Measured::Counter {
                        raw: (kwh * 1e6).round() as u64,
                        bits: 64,
                        mwh_per_raw: 1.0,
                        step: 1,
                    },
                    None => continue,
                }
            } else {
                Measured::Value(v)
            };
            out.push(Observation { at, role, reading });
        }
        Ok(true)
    }
}

/// Runs a CSV history through a fresh account for `setup`'s site; what the
/// account has to say (gaps, glitches) goes to `say` as it happens.
pub fn replay<R: std::io::Read>(
    setup: SiteSetup,
    name: &str,
    reader: R,
    period: Period,
    say: impl FnMut(&str),
) -> Result<Report, CsvError> {
    let mut account = replay_account(setup, name, reader, say)?;
    Ok(account.report(period))
}

/// A history's days and demand months.
pub type Books = (BTreeMap<Date, Day>, BTreeMap<Month, MonthPeak>);

/// The books a CSV history makes: its days and demand months, to backfill
/// a site's ledger with (`replay --into-ledger`).
pub fn replay_books<R: std::io::Read>(
    setup: SiteSetup,
    name: &str,
    reader: R,
    say: impl FnMut(&str),
) -> Result<Books, CsvError> {
    let mut account = replay_account(setup, name, reader, say)?;
    account.ledger.flush();
    Ok((
        std::mem::take(&mut account.ledger.days),
        account.demand.months.clone(),
    ))
}

fn replay_account<R: std::io::Read>(
    setup: SiteSetup,
    name: &str,
    reader: R,
    mut say: impl FnMut(&str),
) -> Result<SiteAccount, CsvError> {
    let mut history = CsvHistory::new(name, reader, setup.tariff.tz.clone())?;
    let mut setup = setup;
    setup.battery_counters = history.columns.has(Role::ChargeEnergyTotal)
        && history.columns.has(Role::DischargeEnergyTotal);
    setup.import_counter = history.columns.has(Role::GridImportEnergyTotal);
    setup.battery_power = history.columns.has(Role::BatteryPower);
    setup.sources = history
        .columns
        .roles
        .iter()
        .map(|r| (*r, std::sync::Arc::from("csv")))
        .collect();
    let mut account = SiteAccount::new(
        setup,
        Default::default(),
        Default::default(),
        Default::default(),
    );
    let mut row = Vec::new();
    while history.next_row(&mut row)? {
        account.observe_all(&row);
        for m in account.messages.drain(..) {
            say(&m);
        }
    }
    // Settle the demand windows still open so their peaks count.
    account.finish();
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_and_names_bad_lines() {
        let csv = "timestamp,battery_power,charge_energy_total\n2025-01-01 00:00:00,-100.5,10.5\n2025-01-01T00:00:01+08:00,,10.6\n2025-01-01 00:00:02,abc,1\n";
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let mut h = CsvHistory::new("h.csv", csv.as_bytes(), tz).unwrap();
        let mut out = Vec::new();
        assert!(h.next_row(&mut out).unwrap());
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].at,
            "2024-12-31T16:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            out[1].reading,
            Measured::Counter {
                raw: 10_500_000,
                bits: 64,
                mwh_per_raw: 1.0,
                step: 1,
            }
        );
        assert!(h.next_row(&mut out).unwrap());
        assert_eq!(out[0].reading, Measured::Value(None));
        let e = h.next_row(&mut out).unwrap_err();
        assert_eq!(e.line, 4);
        assert!(
            e.to_string()
                .starts_with("h.csv: line 4: battery_power `abc`"),
            "{e}"
        );
        let e = CsvHistory::new("h.csv", "time,x\n".as_bytes(), TimeZone::UTC)
            .err()
            .unwrap();
        assert!(e.to_string().contains("first column must be `timestamp`"));
    }

    #[test]
    fn quoted_cells_crlf_a_byte_order_mark_and_blank_lines_are_read() {
        let csv = "\u{feff}timestamp,\"battery_power\"\r\n\r\n\"2025-01-01 00:00:00\",\"-5\"\r\n\n2025-01-01 00:00:01,7\r\n\r\n2025-01-01 00:00:02,7,8\r\n";
        let mut h = CsvHistory::new("h.csv", csv.as_bytes(), TimeZone::UTC).unwrap();
        let mut out = Vec::new();
        assert!(h.next_row(&mut out).unwrap());
        assert_eq!(out[0].reading, Measured::Value(Some(-5.0)));
        assert_eq!(
            out[0].at,
            "2025-01-01T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(h.next_row(&mut out).unwrap());
        assert_eq!(out[0].reading, Measured::Value(Some(7.0)));
        let e = h.next_row(&mut out).unwrap_err();
        assert_eq!(e.to_string(), "h.csv: line 7: 3 cells, the header has 2");
        assert!(!h.next_row(&mut out).unwrap(), "the end after the bad line");
    }
}
