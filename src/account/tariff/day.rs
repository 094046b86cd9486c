//! One day's bands: a season's HH:MM ranges checked to tile 00:00-24:00
//! with no gap and no overlap (each reported, naming both bands), then kept
//! as a sorted boundary list so the band of a minute is a binary search.
use std::sync::Arc;

use super::file::SeasonFile;

/// One day's bands: segment i covers local minutes `[starts[i], starts[i+1])`, the last to 24:00.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPlan {
    pub starts: Vec<u16>,
    pub bands: Vec<u8>,
}

impl DayPlan {
    /// The segment holding local minute `m` (0..1440): binary search.
    pub fn index_at(&self, m: u16) -> usize {
        self.starts.partition_point(|&s| s <= m).saturating_sub(1)
    }

    pub fn end_of(&self, i: usize) -> u16 {
        self.starts.get(i + 1).copied().unwrap_or(1440)
    }
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

pub fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// Checks season `key`'s bands; the day plan when they tile the day.
pub(super) fn plan(
    key: &str,
    s: &SeasonFile,
    bands: &[String],
    e: &mut impl FnMut(&str, String),
) -> Option<Arc<DayPlan>> {
    let mut spans: Vec<(u16, u16, &str)> = Vec::new();
    for (bi, b) in s.bands.iter().enumerate() {
        let (start, end) = (parse_hhmm(&b.start), parse_hhmm(&b.end));
        if start.is_none() {
            e(
                &format!("{key}.bands[{bi}].start"),
                format!("`{}` is not HH:MM (00:00..24:00)", b.start),
            );
        }
        if end.is_none() {
            e(
                &format!("{key}.bands[{bi}].end"),
                format!("`{}` is not HH:MM (00:00..24:00)", b.end),
            );
        }
        if let (Some(st), Some(en)) = (start, end) {
            if en <= st {
                e(
                    &format!("{key}.bands[{bi}]"),
                    format!(
                        "{} ends at {} before it starts at {}",
                        b.band, b.end, b.start
                    ),
                );
            } else {
                spans.push((st, en, &b.band));
            }
        }
    }
    if spans.is_empty() {
        e(
            &format!("{key}.bands"),
            "a season needs bands covering 00:00-24:00".into(),
        );
        return None;
    }
    spans.sort();
    let months = format!("months {:?}", s.months);
    let mut ok = true;
    let mut at = 0u16;
    let mut prev: Option<&str> = None;
    for &(st, en, band) in &spans {
        if st > at {
            ok = false;
            let before = prev
                .map(|p| format!("between `{p}` and `{band}`"))
                .unwrap_or_else(|| format!("before `{band}`"));
            e(
                key,
                format!("{months}: gap {}-{} {before}", hhmm(at), hhmm(st)),
            );
        } else if st < at {
            ok = false;
            e(
                key,
                format!(
                    "{months}: `{band}` ({}-{}) overlaps `{}` until {}",
                    hhmm(st),
                    hhmm(en),
                    prev.unwrap_or("?"),
                    hhmm(at)
                ),
            );
        }
        if en > at {
            at = en;
            prev = Some(band);
        }
    }
    if at < 1440 {
        ok = false;
        e(
            key,
            format!(
                "{months}: gap {}-24:00 after `{}`",
                hhmm(at),
                prev.unwrap_or("?")
            ),
        );
    }
    ok.then(|| {
        let mut plan = DayPlan {
            starts: Vec::new(),
            bands: Vec::new(),
        };
        for (st, _, band) in spans {
            let idx = bands.iter().position(|b| b == band).unwrap_or(0) as u8;
            // Adjacent spans of one band are one segment.
            if plan.bands.last() != Some(&idx) {
                plan.starts.push(st);
                plan.bands.push(idx);
            }
        }
        Arc::new(plan)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn season(bands: &[(&str, &str, &str)]) -> SeasonFile {
        let list: Vec<String> = bands
            .iter()
            .map(|(s, e, b)| format!("{{ start = \"{s}\", end = \"{e}\", band = \"{b}\" }}"))
            .collect();
        toml::from_str(&format!("months = [7]\nbands = [{}]", list.join(", "))).unwrap()
    }

    fn checked(bands: &[(&str, &str, &str)]) -> (Option<Arc<DayPlan>>, Vec<String>) {
        let names = ["flat", "peak", "valley"].map(String::from);
        let mut errs = Vec::new();
        let p = plan("seasons[0]", &season(bands), &names, &mut |k, m| {
            errs.push(format!("{k}: {m}"))
        });
        (p, errs)
    }

    #[test]
    fn hhmm_reads_24_00_and_nothing_past_it() {
        assert_eq!(parse_hhmm("00:00"), Some(0));
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        for bad in ["24:01", "7:00", "07:60", "0700", "ab:cd"] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
        assert_eq!(hhmm(17 * 60 + 5), "17:05");
    }

    #[test]
    fn bands_that_tile_the_day_become_a_searchable_plan() {
        let (p, errs) = checked(&[
            ("00:00", "08:00", "valley"),
            ("17:00", "24:00", "flat"),
            ("08:00", "11:00", "flat"),
            ("11:00", "17:00", "peak"),
        ]);
        assert!(errs.is_empty(), "{errs:?}");
        let p = p.unwrap();
        assert_eq!(p.starts, [0, 480, 660, 1020]);
        assert_eq!(p.bands, [2, 0, 1, 0]);
        assert_eq!(p.index_at(659), 1);
        assert_eq!(p.index_at(660), 2);
        assert_eq!(p.end_of(3), 1440);
    }

    #[test]
    fn adjacent_spans_of_one_band_are_one_segment() {
        let (p, _) = checked(&[
            ("00:00", "06:00", "valley"),
            ("06:00", "08:00", "valley"),
            ("08:00", "24:00", "peak"),
        ]);
        assert_eq!(p.unwrap().starts, [0, 480]);
    }

    #[test]
    fn gaps_and_overlaps_name_both_bands() {
        let (p, errs) = checked(&[
            ("00:30", "08:00", "valley"),
            ("07:00", "12:00", "flat"),
            ("13:00", "23:00", "peak"),
        ]);
        assert!(p.is_none());
        assert_eq!(
            errs,
            [
                "seasons[0]: months [7]: gap 00:00-00:30 before `valley`",
                "seasons[0]: months [7]: `flat` (07:00-12:00) overlaps `valley` until 08:00",
                "seasons[0]: months [7]: gap 12:00-13:00 between `flat` and `peak`",
                "seasons[0]: months [7]: gap 23:00-24:00 after `peak`",
            ]
        );
        let (_, errs) = checked(&[("08:00", "07:00", "peak")]);
        assert_eq!(
            errs[0],
            "seasons[0].bands[0]: peak ends at 07:00 before it starts at 08:00"
        );
    }
}
