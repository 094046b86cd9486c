use std::path::Path;

use jiff::civil::{date, Date};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;

fn bundled(id: &str) -> Tariff {
    Tariff::parse(
        Path::new(&format!("{id}.toml")),
        crate::bundled::tariff(id).unwrap(),
    )
    .unwrap()
}

fn local(t: &Tariff, s: &str) -> Timestamp {
    s.parse::<jiff::civil::DateTime>()
        .unwrap()
        .to_zoned(t.tz.clone())
        .unwrap()
        .timestamp()
}

fn band_name(t: &Tariff, seg: &Segment) -> String {
    t.bands[seg.band as usize].clone()
}

#[test]
fn every_bundled_tariff_is_valid() {
    for (id, text) in crate::bundled::TARIFFS {
        Tariff::parse(Path::new(&format!("{id}.toml")), text)
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
    }
    assert!(crate::bundled::TARIFFS.len() >= 4);
}

#[test]
fn chongqing_bands_and_prices() {
    let t = bundled("cn-chongqing-ci-2025-02");
    let at = |s: &str| {
        let seg = t.segment_at(local(&t, s));
        (band_name(&t, &seg), seg.price)
    };
    assert_eq!(at("2025-03-10T07:59:59"), ("valley".into(), 0.379188));
    assert_eq!(at("2025-03-10T08:00:00"), ("flat".into(), 0.762307));
    assert_eq!(at("2025-03-10T12:30"), ("peak".into(), 1.133067));
    assert_eq!(at("2025-07-15T12:30"), ("critical".into(), 1.330806));
    assert_eq!(at("2025-07-15T14:00"), ("peak".into(), 1.133067));
    assert_eq!(at("2025-07-15T21:59"), ("peak".into(), 1.133067));
    assert_eq!(at("2025-07-15T22:00"), ("flat".into(), 0.762307));
    // Same bands on a Sunday: no day-type distinction in Chongqing.
    assert_eq!(at("2025-03-09T12:30"), ("peak".into(), 1.133067));
    let (spans, hours) = t.day(date(2025, 12, 1));
    assert_eq!(hours, 24.0);
    assert_eq!(spans.len(), 8);
}

#[test]
fn next_change_skips_nothing_and_crosses_midnight() {
    let t = bundled("cn-chongqing-ci-2025-02");
    let (now, until, next) = t.next_change(local(&t, "2025-03-10T07:30"));
    assert_eq!(band_name(&t, &now), "valley");
    assert_eq!(until, local(&t, "2025-03-10T08:00"));
    assert_eq!(band_name(&t, &next), "flat");
    let (now, until, next) = t.next_change(local(&t, "2025-03-10T23:00"));
    assert_eq!(
        (band_name(&t, &now), band_name(&t, &next)),
        ("flat".into(), "valley".into())
    );
    assert_eq!(until, local(&t, "2025-03-11T00:00"));
    // Berlin weekend: low all Saturday and Sunday, so the next change is Monday 06:00.
    let b = bundled("eu-berlin-two-rate-example");
    let (_, until, next) = b.next_change(local(&b, "2026-03-28T10:00"));
    assert_eq!(until, local(&b, "2026-03-30T06:00"));
    assert_eq!(band_name(&b, &next), "high");
}

#[test]
fn dst_days_keep_wall_clock_boundaries() {
    let t = bundled("eu-berlin-two-rate-example");
    // 2026-03-29 (Sunday) is 23 hours, 2026-10-25 (Sunday) 25 hours.
    assert_eq!(t.day(date(2026, 3, 29)).1, 23.0);
    assert_eq!(t.day(date(2026, 10, 25)).1, 25.0);
    assert_eq!(t.day(date(2026, 3, 30)).1, 24.0);
    // Weekday after the spring change: high starts at 06:00 local, i.e. 04:00 UTC (CEST).
    let seg = t.segment_at("2026-03-30T04:00:00Z".parse().unwrap());
    assert_eq!(band_name(&t, &seg), "high");
    assert_eq!(
        seg.start,
        "2026-03-30T04:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(
        seg.end,
        "2026-03-30T20:00:00Z".parse::<Timestamp>().unwrap()
    );
    // And before it, 06:00 was 05:00 UTC (CET).
    let seg = t.segment_at("2026-03-27T05:00:00Z".parse().unwrap());
    assert_eq!(band_name(&t, &seg), "high");
    assert_eq!(
        seg.start,
        "2026-03-27T05:00:00Z".parse::<Timestamp>().unwrap()
    );
}

#[test]
fn holidays_and_worked_weekends_pick_their_day_type() {
    let z = bundled("cn-zhejiang-ci-2024");
    let band = |s: &str| band_name(&z, &z.segment_at(local(&z, s)));
    assert_eq!(band("2026-10-01T12:00"), "deep_valley");
    assert_eq!(band("2026-10-08T12:00"), "valley");
    assert_eq!(band("2026-07-01T10:00"), "critical");
    let text = r#"
id = "t"
name = "t"
timezone = "UTC"
currency = "X"
source = "test"
prices = { a = 1.0, b = 2.0 }
workdays = ["2026-10-10"]
[[seasons]]
months = [1,2,3,4,5,6,7,8,9,10,11,12]
day_types = ["weekday"]
bands = [{ start = "00:00", end = "24:00", band = "a" }]
[[seasons]]
months = [1,2,3,4,5,6,7,8,9,10,11,12]
day_types = ["weekend", "holiday"]
bands = [{ start = "00:00", end = "24:00", band = "b" }]
"#;
    let t = Tariff::parse(Path::new("t.toml"), text).unwrap();
    assert_eq!(
        t.day_type(date(2026, 10, 10)),
        DayType::Weekday,
        "a worked Saturday (调休)"
    );
    assert_eq!(t.day_type(date(2026, 10, 11)), DayType::Weekend);
}

#[test]
fn a_holiday_in_a_winter_month_takes_the_holiday_bands() {
    let t = bundled("cn-zhejiang-ci-2024");
    // Spring Festival 2025 began on 28 January: deep valley, not winter's critical peak.
    let at = |s| band_name(&t, &t.segment_at(local(&t, s)));
    assert_eq!(at("2025-01-28T10:30"), "deep_valley");
    assert_eq!(at("2025-01-27T10:30"), "critical", "the working day before");
    assert_eq!(
        at("2025-01-28T09:30"),
        "critical",
        "the holiday keeps 09-10"
    );
    assert_eq!(
        at("2025-10-08T12:00"),
        "deep_valley",
        "Mid-Autumn made it 8 days"
    );
}

#[test]
fn the_demand_price_is_dated_like_energy_prices() {
    let t = Tariff::parse(
        Path::new("t.toml"),
        "id = \"t\"\nname = \"t\"\ntimezone = \"Asia/Shanghai\"\ncurrency = \"CNY\"\nsource = \"s\"\n\
         prices = { flat = 0.7 }\ndemand_charge = { price_per_kw_month = 32 }\n\
         [[price_changes]]\nfrom = \"2026-03-01\"\nprices = { flat = 0.71 }\ndemand_price_per_kw_month = 28.8\n\
         [[price_changes]]\nfrom = \"2026-04-01\"\nprices = { flat = 0.72 }\n\
         [[seasons]]\nmonths = [1,2,3,4,5,6,7,8,9,10,11,12]\nbands = [{ start = \"00:00\", end = \"24:00\", band = \"flat\" }]",
    )
    .unwrap();
    assert_eq!(t.demand_price(date(2026, 2, 27)), Some(32.0));
    assert_eq!(t.demand_price(date(2026, 3, 31)), Some(28.8));
    assert_eq!(
        t.demand_price(date(2026, 4, 9)),
        Some(28.8),
        "kept when a change gives no demand price"
    );
    let errs = Tariff::parse(
        Path::new("t.toml"),
        "id = \"t\"\nname = \"t\"\ntimezone = \"UTC\"\ncurrency = \"CNY\"\nsource = \"s\"\nprices = { flat = 0.7 }\n\
         [[price_changes]]\nfrom = \"2026-03-01\"\nprices = { flat = 0.71 }\ndemand_price_per_kw_month = 28.8\n\
         [[seasons]]\nmonths = [1,2,3,4,5,6,7,8,9,10,11,12]\nbands = [{ start = \"00:00\", end = \"24:00\", band = \"flat\" }]",
    )
    .unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "t.toml: price_changes[0].demand_price_per_kw_month: the tariff has no demand_charge to change the price of"
    );
}

#[test]
fn price_changes_apply_from_their_local_date() {
    let text = r#"
id = "t"
name = "t"
timezone = "Asia/Shanghai"
currency = "CNY"
source = "test"
prices = { x = 1.0 }
[[price_changes]]
from = "2026-03-01"
prices = { x = 2.0 }
[[seasons]]
months = [1,2,3,4,5,6,7,8,9,10,11,12]
bands = [{ start = "00:00", end = "24:00", band = "x" }]
"#;
    let t = Tariff::parse(Path::new("t.toml"), text).unwrap();
    assert_eq!(t.segment_at(local(&t, "2026-02-28T23:59")).price, 1.0);
    assert_eq!(t.segment_at(local(&t, "2026-03-01T00:00")).price, 2.0);
    // Midnight local is 16:00 UTC the day before: the segment ends there.
    assert_eq!(
        t.segment_at(local(&t, "2026-02-28T23:59")).end,
        "2026-02-28T16:00:00Z".parse::<Timestamp>().unwrap()
    );
}

#[test]
fn gaps_overlaps_and_missing_prices_are_all_reported() {
    let text = r#"
id = "bad"
name = "bad"
timezone = "Mars/Olympus"
currency = "CNY"
source = "test"
prices = { valley = 0.3, peak = 1.0 }
[[seasons]]
months = [1,2,3,4,5,6]
bands = [
  { start = "00:00", end = "08:00", band = "valley" },
  { start = "09:00", end = "20:00", band = "peak" },
  { start = "19:00", end = "24:00", band = "flat" },
]
[[seasons]]
months = [6,7,8,9,10,11]
bands = [{ start = "00:00", end = "25:00", band = "valley" }]
"#;
    let errs = Tariff::parse(Path::new("bad.toml"), text).unwrap_err();
    let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let has = |s: &str| {
        assert!(
            all.iter().any(|e| e.contains(s)),
            "missing `{s}` in {all:#?}"
        )
    };
    has("timezone: `Mars/Olympus`");
    has("gap 08:00-09:00 between `valley` and `peak`");
    has("`flat` (19:00-24:00) overlaps `peak` until 20:00");
    has("prices: no price for band `flat`");
    has("seasons[1].bands[0].end: `25:00`");
    has("month 6, day type weekday: both seasons[0] and seasons[1] apply");
    has("month 12, day type holiday: no season applies");
    assert!(all.iter().all(|e| e.starts_with("bad.toml")));
}

fn arb_date() -> impl Strategy<Value = Date> {
    (2000i16..2040, 1i8..=12, 1i8..=28).prop_map(|(y, m, d)| date(y, m, d))
}

/// Every day of 2025 and 2026 (both Berlin DST changes of each year), every bundled tariff.
#[test]
fn segments_tile_two_whole_years() {
    for (id, _) in crate::bundled::TARIFFS {
        let t = bundled(id);
        let mut d = date(2025, 1, 1);
        while d < date(2027, 1, 1) {
            check_day(&t, d).unwrap_or_else(|e| panic!("{id} {d}: {e}"));
            d = d.tomorrow().unwrap();
        }
    }
}

fn check_day(t: &Tariff, d: Date) -> Result<(), String> {
    let start = d
        .to_zoned(t.tz.clone())
        .unwrap()
        .start_of_day()
        .unwrap()
        .timestamp();
    let end = d
        .tomorrow()
        .unwrap()
        .to_zoned(t.tz.clone())
        .unwrap()
        .start_of_day()
        .unwrap()
        .timestamp();
    let (spans, hours) = t.day(d);
    let mut at = start;
    let mut total = SignedDuration::ZERO;
    while at < end {
        let seg = t.segment_at(at);
        if seg.start != at || seg.end <= seg.start || seg.date != d {
            return Err(format!("bad segment {seg:?} at {at}"));
        }
        let wall = t.tz.to_datetime(seg.start);
        let m = wall.hour() as u16 * 60 + wall.minute() as u16;
        let is_transition =
            t.tz.preceding(
                seg.start
                    .checked_add(SignedDuration::from_nanos(1))
                    .unwrap(),
            )
            .next()
            .is_some_and(|tr| tr.timestamp() == seg.start);
        if !is_transition && !spans.iter().any(|s| s.0 == m) {
            return Err(format!(
                "segment starts at {:02}:{:02}, not a band boundary",
                m / 60,
                m % 60
            ));
        }
        let expect = spans.iter().find(|s| s.0 <= m && m < s.1).unwrap();
        if seg.band != expect.2 {
            return Err(format!("band {} at {m}, plan says {}", seg.band, expect.2));
        }
        total += seg.end.duration_since(seg.start);
        at = seg.end;
    }
    if at != end || (total.as_secs_f64() / 3600.0 - hours).abs() > 1e-9 {
        return Err(format!(
            "segments end at {at}, day ends {end}; {total:?} vs {hours} h"
        ));
    }
    Ok(())
}

proptest! {
    /// The segments of any local day tile it exactly; every boundary that is not a
    /// DST transition lies at a band boundary's wall-clock time.
    #[test]
    fn segments_tile_every_day(d in arb_date(), pick in 0usize..4, day_shift in 0i64..4) {
        let id = crate::bundled::TARIFFS[pick % crate::bundled::TARIFFS.len()].0;
        let t = bundled(id);
        let d = d.checked_add(jiff::Span::new().days(day_shift)).unwrap();
        prop_assert!(check_day(&t, d).is_ok(), "{} {}: {:?}", id, d, check_day(&t, d));
    }
}
