//! How bessmon writes instants and durations for people and other programs,
//! so every output says a time the same way.
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// RFC 3339 in UTC with milliseconds: what MQTT payloads and the API carry.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
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
