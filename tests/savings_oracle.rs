//! The savings engine against ../shared/reference/savings-oracle.md: a 1 MW /
//! 2 MWh battery in Chongqing running two cycles a day through 2025, replayed
//! through the same accounting the daemon and `bessmon replay` use.

use std::collections::BTreeMap;
use std::sync::Arc;

use bessmon::account::energy::{Measured, Observation, SiteAccount, SiteSetup};
use bessmon::account::report::{self, Period};
use bessmon::account::tariff::Tariff;
use bessmon::acquire::profile::Role;
use jiff::{SignedDuration, Timestamp};

const CHONGQING: &str = "cn-chongqing-ci-2025-02";

fn tariff(critical: Option<f64>) -> Arc<Tariff> {
    let mut text = bessmon::bundled::tariff(CHONGQING).unwrap().to_string();
    if let Some(c) = critical {
        text = text.replace("critical = 1.330806", &format!("critical = {c}"));
    }
    Arc::new(Tariff::parse(std::path::Path::new(&format!("{CHONGQING}.toml")), &text).unwrap())
}

fn setup(t: Arc<Tariff>) -> SiteSetup {
    let mut s = SiteSetup::new("oracle", t, 2000.0, 1000.0);
    s.max_gap = SignedDuration::from_mins(3);
    s.battery_counters = true;
    s
}

/// The year's counters, one reading a minute: `out` kWh per discharge and `inn`
/// kWh per charge, cycle 1's discharge at 12:00-14:00 in the critical months.
fn replay_2025(t: Arc<Tariff>, out: f64, inn: f64) -> report::Report {
    let mut acc = SiteAccount::new(
        setup(t),
        Default::default(),
        BTreeMap::new(),
        BTreeMap::new(),
    );
    let start: Timestamp = "2024-12-31T16:00:00Z".parse().unwrap(); // 2025-01-01 00:00 in Shanghai
    let (mut charged, mut discharged) = (0.0f64, 0.0f64);
    let days = 365;
    for i in 0..=days * 1440 {
        let at = start + SignedDuration::from_mins(i as i64);
        for (role, kwh) in [
            (Role::ChargeEnergyTotal, charged),
            (Role::DischargeEnergyTotal, discharged),
        ] {
            let raw = (kwh * 1e6).round() as u64;
            acc.observe(&Observation {
                at,
                role,
                reading: Measured::Counter {
                    raw,
                    bits: 64,
                    mwh_per_raw: 1.0,
                    step: 1,
                },
            });
        }
        let month = at.to_zoned(acc.setup.tariff.tz.clone()).month();
        let critical = matches!(month, 1 | 7 | 8 | 12);
        let m = i % 1440;
        let d1 = if critical { 720..840 } else { 660..780 };
        // The minute [m, m+1) is what the next reading adds.
        if (0..480).contains(&m) {
            charged += inn / 480.0;
        } else if d1.contains(&m) {
            discharged += out / 120.0;
        } else if (1020..1200).contains(&m) {
            charged += inn / 180.0;
        } else if (1200..1320).contains(&m) {
            discharged += out / 120.0;
        }
    }
    assert!(acc.messages.is_empty(), "{:?}", acc.messages);
    acc.report(Period::Year(2025))
}

#[test]
fn one_year_two_cycles_a_day_in_chongqing() {
    let r = replay_2025(tariff(None), 2000.0, 2000.0 / 0.9);
    assert!(
        (r.total.savings - 777_437.81).abs() < 0.01,
        "savings {}",
        r.total.savings
    );
    assert_eq!(r.days, 365);
    assert!((r.total.discharge_kwh - 365.0 * 4000.0).abs() < 1e-3);
    assert!((r.equivalent_cycles - 730.0).abs() < 1e-6);
    assert!((r.round_trip_efficiency.unwrap() - 0.9).abs() < 1e-9);
    // Per band: valley and flat carry the charge, peak and critical the discharge.
    assert!((r.bands["valley"].charge_kwh - 365.0 * 2000.0 / 0.9).abs() < 1e-3);
    assert!((r.bands["critical"].discharge_kwh - 124.0 * 2000.0).abs() < 1e-3);
    assert_eq!(r.bands["critical"].charge_kwh, 0.0);
}

#[test]
fn oracle_variants() {
    let p = 1.133067;
    let cases = [
        (
            "critical = 1.2 x peak",
            tariff(Some(1.2 * p)),
            2000.0,
            2000.0 / 0.9,
            784_598.67,
        ),
        (
            "no critical peak",
            tariff(Some(p)),
            2000.0,
            2000.0 / 0.9,
            728_398.54,
        ),
        (
            "efficiency split sqrt(0.9)",
            tariff(None),
            2000.0 * 0.9f64.sqrt(),
            2000.0 / 0.9f64.sqrt(),
            737_542.27,
        ),
        (
            "90 % depth of discharge",
            tariff(None),
            1800.0,
            2000.0,
            699_694.03,
        ),
    ];
    for (name, t, out, inn, expect) in cases {
        let r = replay_2025(t, out, inn);
        assert!(
            (r.total.savings - expect).abs() < 0.01,
            "{name}: {} vs {expect}",
            r.total.savings
        );
    }
}
