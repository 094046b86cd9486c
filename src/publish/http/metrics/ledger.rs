//! The books: counter anomalies by kind, and today's gross and net savings.
use super::super::live::{Live, ANOMALY_KINDS};
use super::text::Text;
use crate::account::report::Report;

/// Days since the prices in force on `at`'s local date took effect, for a
/// tariff whose prices change by date (agency purchase prices are published
/// monthly); None while a tariff's base prices apply.
pub fn price_set_age_days(
    tariff: &crate::account::tariff::Tariff,
    at: jiff::Timestamp,
) -> Option<i64> {
    let today = tariff.tz.to_datetime(at).date();
    // While the file's base prices apply their age is unknown: no figure.
    let from = tariff.prices_since(today)?;
    Some(i64::from(today.since(from).ok()?.get_days()))
}

pub fn write(t: &mut Text, live: &Live, now: jiff::Timestamp) {
    t.family(
        "bessmon_tariff_price_set_age_days",
        "gauge",
        "Days since the tariff's prices in force took effect (tariffs with dated price changes only): agency prices are published monthly, so over 31 means this month's are missing.",
    );
    for s in live.sites.values() {
        if let Some(days) = s
            .tariff_def
            .as_deref()
            .and_then(|tf| price_set_age_days(tf, now))
        {
            t.sample(
                "bessmon_tariff_price_set_age_days",
                &[("site", &s.id), ("tariff", &s.tariff_id)],
                days,
            );
        }
    }
    t.family(
        "bessmon_tariff_warnings",
        "gauge",
        "What the site's tariff lacks today (this month's prices for a tariff priced monthly, this year's holidays for one with holiday bands); the log and reports name each.",
    );
    for s in live.sites.values() {
        t.sample(
            "bessmon_tariff_warnings",
            &[("site", &s.id), ("tariff", &s.tariff_id)],
            s.tariff_warnings.len(),
        );
    }
    t.family("bessmon_counter_anomalies_total", "counter", "Energy counter events: quarantined jumps, resets, rollovers, transients, integration gaps, implausible power readings, readings held back over five minutes, counter readings further apart than the attribution gap.");
    for (site, a) in &live.anomalies {
        for (k, c) in ANOMALY_KINDS.iter().zip(a.iter()) {
            t.sample(
                "bessmon_counter_anomalies_total",
                &[("site", site), ("kind", k)],
                c,
            );
        }
    }
    type Figure = fn(&Report) -> f64;
    let savings: [(&str, &str, Figure); 2] = [
        (
            "bessmon_savings_today",
            "Today's arbitrage savings so far (gross), in the tariff's currency.",
            |r| r.total.savings,
        ),
        (
            "bessmon_net_savings_today",
            "Today's arbitrage savings less the auxiliaries' energy cost, in the tariff's currency.",
            |r| r.net_savings,
        ),
    ];
    for (name, help, figure) in savings {
        t.family(name, "gauge", help);
        for s in live.sites.values() {
            if let Some(today) = &s.today {
                t.sample(
                    name,
                    &[("site", &s.id), ("currency", &s.currency)],
                    figure(today),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_tariff_priced_by_month_tells_how_old_its_prices_are() {
        let text = format!(
            "{}\n[[price_changes]]\nfrom = \"2026-11-01\"\nprices = {{ valley = 0.40, flat = 0.80, peak = 1.20, critical = 1.40 }}\n",
            crate::bundled::tariff("cn-chongqing-ci-2025-02").unwrap()
        );
        let t =
            crate::account::tariff::Tariff::parse(Path::new("cn-chongqing-ci-2025-02.toml"), &text)
                .unwrap();
        // 2026-12-01 03:00 in Chongqing is 2026-11-30 19:00 UTC.
        let at: jiff::Timestamp = "2026-11-30T19:00:00Z".parse().unwrap();
        assert_eq!(price_set_age_days(&t, at), Some(30));
        let plain = crate::account::tariff::Tariff::parse(
            Path::new("cn-chongqing-ci-2025-02.toml"),
            crate::bundled::tariff("cn-chongqing-ci-2025-02").unwrap(),
        )
        .unwrap();
        assert_eq!(
            price_set_age_days(&plain, at),
            None,
            "one set of prices: no age"
        );
    }
}
