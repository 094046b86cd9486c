//! The books: counter anomalies by kind, and today's gross and net savings.
use super::super::live::{Live, ANOMALY_KINDS};
use super::text::Text;
use crate::account::report::Report;

pub fn write(t: &mut Text, live: &Live) {
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
