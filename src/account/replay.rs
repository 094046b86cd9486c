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
use std::io::BufRead;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::energy::{Measured, Observation};
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

/// Streams a CSV history as observations; stops at the first bad line.
pub struct CsvHistory<R> {
    file: String,
    lines: std::io::Lines<R>,
    line: usize,
    pub columns: Columns,
    tz: TimeZone,
}

impl<R: BufRead> CsvHistory<R> {
    pub fn new(file: &str, reader: R, tz: TimeZone) -> Result<Self, CsvError> {
        let mut lines = reader.lines();
        let fail = |line, message: String| CsvError {
            file: file.to_string(),
            line,
            message,
        };
        let header = match lines.next() {
            Some(Ok(h)) => h,
            Some(Err(e)) => return Err(fail(1, e.to_string())),
            None => return Err(fail(1, "empty file: expected a header line".into())),
        };
        let mut cols = header
            .trim_start_matches('\u{feff}')
            .split(',')
            .map(str::trim);
        if cols.next() != Some("timestamp") {
            return Err(fail(1, "the first column must be `timestamp`".into()));
        }
        let mut roles = Vec::new();
        for c in cols {
            match Role::from_name(c) {
                Some(r) if roles.contains(&r) => {
                    return Err(fail(1, format!("column `{c}` appears twice")))
                }
                Some(r) => roles.push(r),
                None => {
                    return Err(fail(
                        1,
                        format!("`{c}` is not a role name (see README: replay)"),
                    ))
                }
            }
        }
        if roles.is_empty() {
            return Err(fail(1, "no value columns".into()));
        }
        Ok(CsvHistory {
            file: file.to_string(),
            lines,
            line: 1,
            columns: Columns { roles },
            tz,
        })
    }

    /// The next row's observations, `None` at the end.
    pub fn next_row(&mut self, out: &mut Vec<Observation>) -> Result<bool, CsvError> {
        out.clear();
        loop {
            let Some(line) = self.lines.next() else {
                return Ok(false);
            };
            self.line += 1;
            let fail = |message: String| CsvError {
                file: self.file.clone(),
                line: self.line,
                message,
            };
            let line = line.map_err(|e| fail(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut cells = line.split(',');
            let at = parse_timestamp(cells.next().unwrap_or("").trim(), &self.tz).map_err(fail)?;
            let mut n = 0;
            for (i, cell) in cells.enumerate() {
                let Some(&role) = self.columns.roles.get(i) else {
                    return Err(fail(format!(
                        "more cells than the header's {} columns",
                        self.columns.roles.len() + 1
                    )));
                };
                n += 1;
                let cell = cell.trim();
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
                        },
                        None => continue,
                    }
                } else {
                    Measured::Value(v)
                };
                out.push(Observation { at, role, reading });
            }
            if n != self.columns.roles.len() {
                return Err(fail(format!(
                    "{} cells, the header has {}",
                    n + 1,
                    self.columns.roles.len() + 1
                )));
            }
            return Ok(true);
        }
    }
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
                mwh_per_raw: 1.0
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
}
