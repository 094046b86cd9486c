//! Which season's day plan applies to each month and day type: exactly one,
//! a season naming the day type beating one that says "all".
use std::sync::Arc;

use super::calendar::DayType;
use super::day::DayPlan;
use super::file::TariffFile;

/// Checks each season's months and day types.
pub(super) fn check(f: &TariffFile, e: &mut impl FnMut(&str, String)) {
    for (si, s) in f.seasons.iter().enumerate() {
        let key = format!("seasons[{si}]");
        for &m in &s.months {
            if !(1..=12).contains(&m) {
                e(&format!("{key}.months"), format!("{m} is not a month"));
            }
        }
        for d in &s.day_types {
            if !matches!(d.as_str(), "all" | "weekday" | "weekend" | "holiday") {
                e(
                    &format!("{key}.day_types"),
                    format!("`{d}` is not all, weekday, weekend or holiday"),
                );
            }
        }
    }
}

/// `plans[month - 1][day type]` from each season's plan (None where that
/// season's bands were wrong, already reported).
pub(super) fn plans(
    f: &TariffFile,
    season_plans: &[Option<Arc<DayPlan>>],
    e: &mut impl FnMut(&str, String),
) -> Vec<[Arc<DayPlan>; 3]> {
    let mut plans = Vec::with_capacity(12);
    let placeholder = Arc::new(DayPlan {
        starts: vec![0],
        bands: vec![0],
    });
    for month in 1..=12u8 {
        let mut row: [Arc<DayPlan>; 3] = [
            placeholder.clone(),
            placeholder.clone(),
            placeholder.clone(),
        ];
        for dt in DayType::ALL {
            let matching = |name: &str| -> Vec<usize> {
                f.seasons
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| {
                        s.months.contains(&month) && s.day_types.iter().any(|d| d == name)
                    })
                    .map(|(i, _)| i)
                    .collect()
            };
            let specific = matching(dt.as_str());
            let chosen = if specific.is_empty() {
                matching("all")
            } else {
                specific
            };
            match chosen[..] {
                [] => e(
                    "seasons",
                    format!("month {month}, day type {}: no season applies", dt.as_str()),
                ),
                [i] => {
                    if let Some(p) = &season_plans[i] {
                        row[dt as usize] = p.clone();
                    }
                }
                [i, j, ..] => e(
                    "seasons",
                    format!(
                        "month {month}, day type {}: both seasons[{i}] and seasons[{j}] apply",
                        dt.as_str()
                    ),
                ),
            }
        }
        plans.push(row);
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(seasons: &[(&str, &str)]) -> TariffFile {
        let mut text = "id = \"t\"\nname = \"t\"\ntimezone = \"UTC\"\ncurrency = \"CNY\"\nsource = \"s\"\nprices = {}\n".to_string();
        for (months, day_types) in seasons {
            text +=
                &format!("[[seasons]]\nmonths = {months}\nday_types = {day_types}\nbands = []\n");
        }
        toml::from_str(&text).unwrap()
    }

    fn plan(start: u16) -> Option<Arc<DayPlan>> {
        Some(Arc::new(DayPlan {
            starts: vec![start],
            bands: vec![0],
        }))
    }

    #[test]
    fn a_named_day_type_beats_all() {
        let all_year = "[1,2,3,4,5,6,7,8,9,10,11,12]";
        let f = file(&[
            (all_year, "[\"all\"]"),
            ("[7, 8]", "[\"weekend\", \"holiday\"]"),
        ]);
        let mut errs = Vec::new();
        let p = plans(&f, &[plan(0), plan(1)], &mut |k, m| {
            errs.push(format!("{k}: {m}"))
        });
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(p[6][DayType::Weekday as usize].starts, [0]);
        assert_eq!(p[6][DayType::Weekend as usize].starts, [1]);
        assert_eq!(
            p[8][DayType::Holiday as usize].starts,
            [0],
            "September is not summer"
        );
    }

    #[test]
    fn a_month_with_no_season_or_two_is_named() {
        let f = file(&[
            ("[1, 2]", "[\"all\"]"),
            ("[2]", "[\"all\"]"),
            ("[13]", "[\"workday\"]"),
        ]);
        let mut errs = Vec::new();
        check(&f, &mut |k, m| errs.push(format!("{k}: {m}")));
        plans(&f, &[plan(0), plan(0), plan(0)], &mut |k, m| {
            errs.push(format!("{k}: {m}"))
        });
        assert_eq!(errs[0], "seasons[2].months: 13 is not a month");
        assert_eq!(
            errs[1],
            "seasons[2].day_types: `workday` is not all, weekday, weekend or holiday"
        );
        assert!(errs.contains(
            &"seasons: month 2, day type weekend: both seasons[0] and seasons[1] apply".to_string()
        ));
        assert!(errs.contains(&"seasons: month 3, day type weekday: no season applies".to_string()));
    }
}
