//! How bessmon writes instants and durations for people and other programs,
//! so every output says a time the same way.
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// RFC 3339 in UTC with milliseconds: what MQTT payloads and the API carry.
pub fn rfc3339(t: Timestamp) -> String {
    let mut s = String::with_capacity(24);
    write_rfc3339(&mut s, t);
    s
}

/// As [`rfc3339`], appended to `out`. Every device poll writes one, so the
/// civil date comes from arithmetic on the day number (Hinnant's
/// days-to-civil) rather than from a format string parsed each time.
pub fn write_rfc3339(out: &mut String, t: Timestamp) {
    use std::fmt::Write;
    let ms = t.as_millisecond();
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Before 1970 (where rounding a fraction of a millisecond differs) and
    // after 9999 (five digits), jiff says them.
    if !(0..2_932_897).contains(&days) {
        let _ = write!(out, "{}", t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"));
        return;
    }
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, sec, milli) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{milli:03}Z"
    );
}

/// RFC 3339 with the site's own offset: auditable and readable on site.
pub fn local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// A local wall-clock time of day, `HH:MM`, for log lines about bands.
pub fn local_hm(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone()).strftime("%H:%M").to_string()
}

/// A compact UTC stamp that sorts and is safe in file names.
pub fn file_stamp(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// A duration for people: `45 s`, `12 min`, `5 h 30 min`, `3 d 4 h`.
pub fn span(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => match (s / 60) % 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match (s / 3600) % 24 {
            0 => format!("{} d", s / 86400),
            h => format!("{} d {h} h", s / 86400),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_rfc3339_says_what_jiff_says() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut stamps: Vec<i64> = (0..20_000)
            .map(|_| rng.i64(-62_000_000_000_000..253_402_207_200_000))
            .collect();
        // Leap days, century rules and the ends of the range.
        stamps.extend([
            0,
            951_782_400_000,
            4_107_542_400_000,
            253_402_207_200_000,
            -1,
        ]);
        for ms in stamps {
            let t = Timestamp::from_millisecond(ms).unwrap();
            assert_eq!(
                rfc3339(t),
                t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "{ms}"
            );
        }
        let sub_ms = Timestamp::new(1_700_000_000, 999_999).unwrap();
        assert_eq!(rfc3339(sub_ms), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn formats() {
        let t: Timestamp = "2025-03-10T04:00:00.5Z".parse().unwrap();
        assert_eq!(rfc3339(t), "2025-03-10T04:00:00.500Z");
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        assert_eq!(local(t, &tz), "2025-03-10T12:00:00+08:00");
        assert_eq!(local_hm(t, &tz), "12:00");
        assert_eq!(file_stamp(t), "20250310T040000.500Z");
        assert_eq!(span(45.0), "45 s");
        assert_eq!(span(5.0 * 3600.0), "5 h");
        assert_eq!(span(5.5 * 3600.0), "5 h 30 min");
        assert_eq!(span(3.0 * 86400.0 + 4.0 * 3600.0), "3 d 4 h");
    }
}
