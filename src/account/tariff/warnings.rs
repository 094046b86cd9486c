//! What a tariff cannot know yet: the month's republished prices and the
//! year's holiday calendar. Neither stops pricing (the last prices and the
//! weekday rules go on), but either makes the figure provisional, so `check`,
//! the log, a metric and the report say so.
use jiff::civil::Date;

use super::Tariff;

impl Tariff {
    /// For a tariff whose prices are republished monthly: the warning for a
    /// month (given by any of its dates) that has no prices of its own.
    pub fn missing_prices(&self, date: Date) -> Option<String> {
        let first = date.first_of_month();
        let last = date.last_of_month();
        let era = self.era(first);
        if !era.prices_monthly {
            return None;
        }
        let own = |d: &Date| first <= *d && *d <= last;
        if era.price_dates.iter().any(own) || own(&era.from) {
            return None;
        }
        let month = format!("{:04}-{:02}", first.year(), first.month());
        let using = match self.prices_since(first) {
            Some(d) => format!("using {:04}-{:02}'s", d.year(), d.month()),
            None => "using the file's base prices".into(),
        };
        Some(format!(
            "tariff `{}`: prices for {month} missing; {using}",
            era.id
        ))
    }

    /// For a tariff with holiday bands: the warning for a year none of whose
    /// holidays are listed in the file in force.
    pub fn missing_holidays(&self, year: i16) -> Option<String> {
        let (Ok(first), Ok(last)) = (Date::new(year, 1, 1), Date::new(year, 12, 31)) else {
            return None;
        };
        let mut missing = Vec::new();
        for (k, era) in self.eras.iter().enumerate() {
            let end = self.eras.get(k + 1).map(|e| e.from).unwrap_or(Date::MAX);
            let in_force = era.from <= last && first < end;
            if in_force && era.holiday_bands && era.holidays.range(first..=last).next().is_none() {
                missing.push(era.id.as_str());
            }
        }
        (!missing.is_empty()).then(|| {
            format!(
                "tariff `{}` has holiday bands but lists no holidays for {year}: its holidays are priced as ordinary days until they are added",
                missing.join("`, `")
            )
        })
    }

    /// Every such warning for the local dates `from..=to` (at most a few
    /// hundred years are looked at: a lifetime, not a fuzzed millennium).
    pub fn warnings(&self, from: Date, to: Date) -> Vec<String> {
        let mut out = Vec::new();
        if to < from {
            return out;
        }
        let mut month = from.first_of_month();
        let mut steps = 0;
        while month <= to && steps < 12 * 200 {
            out.extend(self.missing_prices(month));
            if month.month() == 1 || month == from.first_of_month() {
                out.extend(self.missing_holidays(month.year()));
            }
            match month.checked_add(jiff::Span::new().months(1)) {
                Ok(m) => month = m,
                Err(_) => break,
            }
            steps += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use jiff::civil::date;

    use super::*;

    fn monthly(extra: &str) -> Tariff {
        Tariff::parse(
            Path::new("t.toml"),
            &format!(
                "id = \"t\"\nname = \"t\"\ntimezone = \"Asia/Shanghai\"\ncurrency = \"CNY\"\nsource = \"s\"\n\
                 prices_monthly = true\nprices = {{ flat = 0.70 }}\n{extra}\n\
                 [[seasons]]\nmonths = [1,2,3,4,5,6,7,8,9,10,11,12]\nbands = [{{ start = \"00:00\", end = \"24:00\", band = \"flat\" }}]"
            ),
        )
        .unwrap()
    }

    #[test]
    fn a_month_without_its_own_prices_is_named_with_the_month_used() {
        let t = monthly(
            "[[price_changes]]\nfrom = \"2026-11-01\"\nprices = { flat = 0.71 }\n\
             [[price_changes]]\nfrom = \"2026-10-01\"\nprices = { flat = 0.72 }",
        );
        assert_eq!(t.missing_prices(date(2026, 11, 20)), None);
        assert_eq!(
            t.missing_prices(date(2026, 12, 5)).as_deref(),
            Some("tariff `t`: prices for 2026-12 missing; using 2026-11's")
        );
        assert_eq!(
            t.missing_prices(date(2026, 9, 1)).as_deref(),
            Some("tariff `t`: prices for 2026-09 missing; using the file's base prices")
        );
        assert_eq!(t.warnings(date(2026, 10, 1), date(2026, 11, 30)), [""; 0]);
        assert_eq!(t.warnings(date(2026, 10, 1), date(2026, 12, 1)).len(), 1);
    }

    #[test]
    fn a_tariff_without_monthly_prices_never_asks_for_them() {
        let t = Tariff::parse(
            Path::new("t.toml"),
            "id = \"t\"\nname = \"t\"\ntimezone = \"UTC\"\ncurrency = \"EUR\"\nsource = \"s\"\nprices = { flat = 0.3 }\n\
             [[seasons]]\nmonths = [1,2,3,4,5,6,7,8,9,10,11,12]\nbands = [{ start = \"00:00\", end = \"24:00\", band = \"flat\" }]",
        )
        .unwrap();
        assert!(t.warnings(date(2020, 1, 1), date(2030, 1, 1)).is_empty());
    }

    #[test]
    fn a_year_without_holidays_is_named_only_when_holidays_have_bands() {
        let t = crate::account::tariff::TariffCatalog::new(&[])
            .load("cn-zhejiang-ci-2024")
            .unwrap()
            .unwrap();
        assert_eq!(t.missing_holidays(2025), None);
        let w = t.missing_holidays(2031).expect("no 2031 holidays listed");
        assert!(
            w.contains("cn-zhejiang-ci-2024") && w.contains("2031"),
            "{w}"
        );
        let cq = crate::account::tariff::TariffCatalog::new(&[])
            .load("cn-chongqing-ci-2025-02")
            .unwrap()
            .unwrap();
        assert_eq!(cq.missing_holidays(2031), None, "no holiday bands");
    }
}
