//! The demand charge: a price per kW of the month's highest average import
//! over fixed windows (15 minutes in most of China), windows that must tile
//! the day so every one starts at the same wall-clock minutes.
use jiff::civil::Date;

use super::file::{DemandFile, PriceChangeFile};
use crate::duration::parse_duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// The price before the first dated change.
    pub price_per_kw_month: f64,
    pub window: std::time::Duration,
    /// Later prices by the first local date they apply to, sorted.
    pub changes: Vec<(Date, f64)>,
}

impl Demand {
    /// The price in force on a local date.
    pub fn price_on(&self, date: Date) -> f64 {
        match self.changes.partition_point(|(from, _)| *from <= date) {
            0 => self.price_per_kw_month,
            i => self.changes[i - 1].1,
        }
    }
}

fn bad_price(p: f64) -> bool {
    !p.is_finite() || p < 0.0
}

pub(super) fn check(
    d: &DemandFile,
    changes: &[PriceChangeFile],
    e: &mut impl FnMut(&str, String),
) -> Demand {
    let window = parse_duration(&d.window).unwrap_or_else(|m| {
        e("demand_charge.window", m);
        std::time::Duration::from_secs(900)
    });
    if window.as_secs() == 0 || 86400 % window.as_secs() != 0 || window.subsec_nanos() != 0 {
        e(
            "demand_charge.window",
            format!("{} must divide a day into whole windows", d.window),
        );
    }
    if bad_price(d.price_per_kw_month) {
        e(
            "demand_charge.price_per_kw_month",
            format!("{} is not a price", d.price_per_kw_month),
        );
    }
    let mut dated = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let (Some(p), Ok(from)) = (c.demand_price_per_kw_month, c.from.parse::<Date>()) else {
            // A bad date is reported with the energy prices.
            continue;
        };
        if bad_price(p) {
            e(
                &format!("price_changes[{i}].demand_price_per_kw_month"),
                format!("{p} is not a price"),
            );
        }
        dated.push((from, p));
    }
    dated.sort_by_key(|(d, _)| *d);
    Demand {
        price_per_kw_month: d.price_per_kw_month,
        window,
        changes: dated,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn checked(text: &str) -> (Demand, Vec<String>) {
        let d: DemandFile = toml::from_str(text).unwrap();
        let mut errs = Vec::new();
        let demand = check(&d, &[], &mut |k, m| errs.push(format!("{k}: {m}")));
        (demand, errs)
    }

    #[test]
    fn windows_must_tile_the_day() {
        let (d, errs) = checked("price_per_kw_month = 32");
        assert!(errs.is_empty());
        assert_eq!(d.window, Duration::from_secs(900), "15 minutes unless told");
        for bad in ["7m", "0s", "1500ms"] {
            let (_, errs) = checked(&format!("price_per_kw_month = 32\nwindow = \"{bad}\""));
            assert_eq!(
                errs,
                [format!(
                    "demand_charge.window: {bad} must divide a day into whole windows"
                )]
            );
        }
        let (_, errs) = checked("price_per_kw_month = -1");
        assert_eq!(
            errs,
            ["demand_charge.price_per_kw_month: -1 is not a price"]
        );
    }
}
