use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::{date, Date};

use super::*;
use crate::account::contract::ContractFile;
use crate::account::ledger::BandDay;
use crate::account::meter::MeterReading;

/// Two rates only, valley and peak, with a price change on the 15th.
fn tariff() -> Tariff {
    Tariff::parse(
        Path::new("t.toml"),
        "id = \"t\"\nname = \"t\"\ntimezone = \"Asia/Shanghai\"\ncurrency = \"CNY\"\nsource = \"s\"\n\
         prices = { valley = 0.379188, peak = 1.133067 }\n\
         [[price_changes]]\nfrom = \"2025-02-15\"\nprices = { valley = 0.38, peak = 1.14 }\n\
         [[seasons]]\nmonths = [1,2,3,4,5,6,7,8,9,10,11,12]\n\
         bands = [{ start = \"00:00\", end = \"08:00\", band = \"valley\" }, { start = \"08:00\", end = \"24:00\", band = \"peak\" }]",
    )
    .unwrap()
}

fn contract(text: &str) -> Contract {
    let f: ContractFile = toml::from_str(text).unwrap();
    f.check("c", &mut |k, m| panic!("{k}: {m}"))
}

fn terms() -> Terms {
    Terms {
        meter_rates: vec!["peak".into(), "valley".into()],
        ..Terms::new(2000.0, 1000.0)
    }
}

/// February 2025: every day 2,000 kWh charged in the valley and 1,800.5
/// discharged at peak; the meter agrees, its readings growing from 1,000 kWh.
fn books(with_meter: bool) -> BTreeMap<Date, Day> {
    let mut days = BTreeMap::new();
    let t = tariff();
    let mut d = date(2025, 2, 1);
    let (mut charged, mut discharged) = (1_000_000_000i64, 1_000_000_000i64);
    while d <= date(2025, 3, 1) {
        let mut day = Day::default();
        if with_meter {
            let at = d.to_zoned(t.tz.clone()).unwrap().timestamp();
            for (role, mwh) in [
                ("charge_energy_rate2", charged),
                ("discharge_energy_rate1", discharged),
                ("charge_energy_rate1", 7),
                ("discharge_energy_rate2", 7),
            ] {
                day.meter_open.insert(role.into(), MeterReading { at, mwh });
            }
        }
        if d.month() == 2 {
            let price = |b: &str| t.prices(d)[t.bands.iter().position(|x| x == b).unwrap()];
            day.bands.insert(
                "valley".into(),
                BandDay {
                    charge_mwh: 2_000_000_000,
                    price: price("valley"),
                    ..Default::default()
                },
            );
            day.bands.insert(
                "peak".into(),
                BandDay {
                    discharge_mwh: 1_800_500_000,
                    price: price("peak"),
                    ..Default::default()
                },
            );
            charged += 2_000_000_000;
            discharged += 1_800_500_000;
        }
        days.insert(d, day);
        d = d.tomorrow().unwrap();
    }
    days
}

fn site<'a>(t: &'a Tariff, terms: &'a Terms, c: Option<&'a Contract>) -> Site<'a> {
    Site {
        id: "s",
        name: "Site",
        tariff: t,
        terms,
        contract: c,
    }
}

#[test]
fn fen_are_exact_and_rounded_half_away_from_zero() {
    // 2,000 kWh x 0.379188 = 758.376: 75,838 fen.
    assert_eq!(fen_of(2_000_000_000, 0.379188), 75_838);
    // 1 kWh x 0.125 = 12.5 fen: up; the same charged back: down.
    assert_eq!(fen_of(1_000_000, 0.125), 13);
    assert_eq!(fen_of(-1_000_000, 0.125), -13);
    // 0.1 kWh at 1.005 is 10.05 fen; floats would print 10.049999.
    assert_eq!(fen_of(100_000, 1.005), 10);
    assert_eq!(fen_of(0, 1.0), 0);
    // Absurd input saturates instead of overflowing.
    assert_eq!(fen_of(i64::MAX, 1e300), i64::MAX);
    assert_eq!(fen_of(i64::MIN, 1e300), i64::MIN);
}

#[test]
fn a_month_from_the_meter_has_a_line_per_rate_and_price_period() {
    let (t, terms) = (tariff(), terms());
    let c = contract("kind = \"share\"\nhost_share = 0.15");
    let s = build(
        &site(&t, &terms, Some(&c)),
        (2025, 2),
        &books(true),
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(s.energy_source, "meter", "{}", s.energy_source_reason);
    // Two price periods (1-14, 15-28) x two rates.
    assert_eq!(s.bands.len(), 4, "{:#?}", s.bands);
    let valley: Vec<&Line> = s.bands.iter().filter(|l| l.band == "valley").collect();
    assert_eq!(valley[0].rate, Some(2));
    assert_eq!(
        (valley[0].price_from, valley[0].price_to),
        (date(2025, 2, 1), date(2025, 2, 14))
    );
    assert_eq!(valley[0].charge_kwh, 28_000.0);
    assert_eq!(valley[0].opening_charge_kwh, Some(1_000.0));
    assert_eq!(valley[0].closing_charge_kwh, Some(29_000.0));
    assert_eq!(valley[1].price, 0.38);
    assert_eq!(valley[1].charge_kwh, 28_000.0);
    // Money: each line rounded, totals of lines, split adding up.
    let fen = |x: f64| (x * 100.0).round() as i64;
    let expect_value = fen_of(14 * 1_800_500_000, 1.133067) + fen_of(14 * 1_800_500_000, 1.14);
    let expect_cost = fen_of(14 * 2_000_000_000, 0.379188) + fen_of(14 * 2_000_000_000, 0.38);
    assert_eq!(fen(s.discharge_value), expect_value);
    assert_eq!(fen(s.charge_cost), expect_cost);
    assert_eq!(fen(s.total_savings), expect_value - expect_cost);
    let (host, investor) = (s.host_amount.unwrap(), s.investor_amount.unwrap());
    assert_eq!(fen(host) + fen(investor), fen(s.total_savings));
    assert_eq!(
        fen(host),
        round_fen((expect_value - expect_cost) as f64 * 0.15)
    );
    assert_eq!(
        fen(s.host_amount_excl_vat.unwrap()) + fen(s.investor_amount_excl_vat.unwrap()),
        fen(s.total_savings_excl_vat)
    );
    assert_eq!(
        s.total_savings_incl_vat, s.total_savings,
        "prices include VAT"
    );
    // The ledger agrees with the meter, so reconciliation flags nothing.
    let rec = s.reconciliation.as_ref().unwrap();
    assert!(!rec.flagged(), "{rec:#?}");
}

#[test]
fn without_a_meter_the_ledger_is_the_source_and_says_so() {
    let (t, terms) = (tariff(), terms());
    let c = contract("kind = \"discount\"\ndiscount = 0.1\nprices_include_vat = false");
    let s = build(
        &site(&t, &terms, Some(&c)),
        (2025, 2),
        &books(false),
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(s.energy_source, "ledger");
    assert!(
        s.energy_source_reason.contains("no per-rate meter"),
        "{}",
        s.energy_source_reason
    );
    assert!(s
        .bands
        .iter()
        .all(|l| l.opening_charge_kwh.is_none() && l.rate.is_none()));
    let fen = |x: f64| (x * 100.0).round() as i64;
    // Discount: the host keeps 10 % of the discharge value.
    assert_eq!(
        fen(s.host_amount.unwrap()),
        round_fen(fen(s.discharge_value) as f64 * 0.1)
    );
    assert_eq!(
        fen(s.host_amount.unwrap()) + fen(s.investor_amount.unwrap()),
        fen(s.total_savings)
    );
    // Net prices: VAT is added for the amounts with VAT.
    assert_eq!(
        fen(s.total_savings_incl_vat),
        round_fen(fen(s.total_savings) as f64 * 1.13)
    );
}

#[test]
fn a_missing_closing_reading_falls_back_to_the_ledger_naming_it() {
    let (t, terms) = (tariff(), terms());
    let mut days = books(true);
    days.get_mut(&date(2025, 3, 1)).unwrap().meter_open.clear();
    let s = build(&site(&t, &terms, None), (2025, 2), &days, &BTreeMap::new()).unwrap();
    assert_eq!(s.energy_source, "ledger");
    assert!(
        s.energy_source_reason.contains("on 2025-03-01"),
        "{}",
        s.energy_source_reason
    );
    assert!(s.host_amount.is_none());
    assert!(
        s.notes.iter().any(|n| n.contains("not split")),
        "{:?}",
        s.notes
    );
}
