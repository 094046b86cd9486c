//! Which kind of day a date is: weekday or weekend by the week, unless the
//! tariff lists it as a public holiday or as a worked weekend day (调休,
//! when China moves a weekend's work to make a holiday longer).
use std::collections::BTreeSet;

use jiff::civil::{Date, Weekday};

use super::file::TariffFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DayType {
    Weekday,
    Weekend,
    Holiday,
}

impl DayType {
    pub const ALL: [DayType; 3] = [DayType::Weekday, DayType::Weekend, DayType::Holiday];

    pub fn as_str(self) -> &'static str {
        match self {
            DayType::Weekday => "weekday",
            DayType::Weekend => "weekend",
            DayType::Holiday => "holiday",
        }
    }
}

/// The holiday and worked-day lists, parsed; problems go to `e` by key.
pub(super) fn dates(
    f: &TariffFile,
    e: &mut impl FnMut(&str, String),
) -> (BTreeSet<Date>, BTreeSet<Date>) {
    let mut holidays = BTreeSet::new();
    for (i, h) in f.holidays.iter().enumerate() {
        match h.parse::<Date>() {
            Ok(d) => {
                holidays.insert(d);
            }
            Err(_) => e(
                &format!("holidays[{i}]"),
                format!("`{h}` is not a YYYY-MM-DD date"),
            ),
        }
    }
    let mut workdays = BTreeSet::new();
    for (i, w) in f.workdays.iter().enumerate() {
        match w.parse::<Date>() {
            Ok(d) if holidays.contains(&d) => e(
                &format!("workdays[{i}]"),
                format!("{d} is listed as a holiday too"),
            ),
            Ok(d) => {
                workdays.insert(d);
            }
            Err(_) => e(
                &format!("workdays[{i}]"),
                format!("`{w}` is not a YYYY-MM-DD date"),
            ),
        }
    }
    (holidays, workdays)
}

pub(super) fn day_type(
    holidays: &BTreeSet<Date>,
    workdays: &BTreeSet<Date>,
    date: Date,
) -> DayType {
    if holidays.contains(&date) {
        DayType::Holiday
    } else if workdays.contains(&date) {
        DayType::Weekday
    } else if matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
        DayType::Weekend
    } else {
        DayType::Weekday
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn file(holidays: &[&str], workdays: &[&str]) -> TariffFile {
        let list = |v: &[&str]| format!("{v:?}");
        toml::from_str(&format!(
            "id = \"t\"\nname = \"t\"\ntimezone = \"UTC\"\ncurrency = \"CNY\"\nsource = \"s\"\nprices = {{}}\nholidays = {}\nworkdays = {}",
            list(holidays),
            list(workdays)
        ))
        .unwrap()
    }

    #[test]
    fn a_holiday_beats_the_week_and_a_worked_weekend_is_a_weekday() {
        let mut errs = Vec::new();
        // 2025: National Day week off, Sunday 28 September worked.
        let (h, w) = dates(&file(&["2025-10-01"], &["2025-09-28"]), &mut |k, m| {
            errs.push(format!("{k}: {m}"))
        });
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(day_type(&h, &w, date(2025, 10, 1)), DayType::Holiday);
        assert_eq!(day_type(&h, &w, date(2025, 9, 28)), DayType::Weekday);
        assert_eq!(day_type(&h, &w, date(2025, 9, 27)), DayType::Weekend);
        assert_eq!(day_type(&h, &w, date(2025, 9, 26)), DayType::Weekday);
    }

    #[test]
    fn bad_dates_and_a_day_both_off_and_worked_are_named() {
        let mut errs = Vec::new();
        dates(
            &file(&["2025-10-01", "1 Oct"], &["2025-10-01", "2025-02-30"]),
            &mut |k, m| errs.push(format!("{k}: {m}")),
        );
        assert_eq!(
            errs,
            [
                "holidays[1]: `1 Oct` is not a YYYY-MM-DD date",
                "workdays[0]: 2025-10-01 is listed as a holiday too",
                "workdays[1]: `2025-02-30` is not a YYYY-MM-DD date",
            ]
        );
    }
}
