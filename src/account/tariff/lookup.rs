//! Where an instant falls in a tariff: its local date, band and price, and the
//! span of time it keeps them.
//!
//! Boundaries are local wall-clock times (evcc #28831 fired a zone an hour
//! early by computing midnight + N hours). Between two time-zone transitions
//! the UTC offset is constant, so wall time runs in step with the instant and
//! the band is found by binary search over the day plan; a segment therefore
//! ends at the band's wall-clock end, at local midnight, or at the next
//! transition, whichever comes first.
use std::sync::Arc;

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};

use super::Tariff;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The local date the segment belongs to.
    pub date: Date,
    pub band: u8,
    pub price: f64,
}

impl Segment {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

impl Tariff {
    /// The segment holding `t`. O(log bands + log transitions).
    pub fn segment_at(&self, t: Timestamp) -> Segment {
        let offset = self.tz.to_offset(t);
        let local = offset.to_datetime(t);
        let date = local.date();
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let plan = self.plan(date);
        let i = plan.index_at(minute);
        let midnight = offset
            .to_timestamp(date.to_datetime(Time::midnight()))
            .unwrap_or(t);
        let at_wall = |m: u16| {
            midnight
                .checked_add(SignedDuration::from_mins(m as i64))
                .unwrap_or(t)
        };
        let (mut start, mut end) = (at_wall(plan.starts[i]), at_wall(plan.end_of(i)));
        if let Some(prev) = self
            .tz
            .preceding(t.checked_add(SignedDuration::from_nanos(1)).unwrap_or(t))
            .next()
        {
            start = start.max(prev.timestamp());
        }
        if let Some(next) = self.tz.following(t).next() {
            end = end.min(next.timestamp());
        }
        let band = plan.bands[i];
        Segment {
            start,
            end,
            date,
            band,
            price: self.prices(date)[band as usize],
        }
    }

    /// When the band or its price next changes after `t`, and the segment it changes to.
    pub fn next_change(&self, t: Timestamp) -> (Segment, Timestamp, Segment) {
        let now = self.segment_at(t);
        let mut seg = now;
        // A band can continue across midnight or a transition; look at most two days ahead.
        for _ in 0..400 {
            let next = self.segment_at(seg.end);
            if next.band != now.band || next.price != now.price {
                return (now, seg.end, next);
            }
            if next.end.duration_since(t) > SignedDuration::from_hours(49) {
                return (now, next.end, next);
            }
            seg = next;
        }
        (now, seg.end, seg)
    }

    /// The bands of a local date as wall-clock spans, and the day's length in hours.
    pub fn day(&self, date: Date) -> (Vec<(u16, u16, u8, f64)>, f64) {
        let plan = self.plan(date);
        let prices = self.prices(date);
        let spans = (0..plan.starts.len())
            .map(|i| {
                (
                    plan.starts[i],
                    plan.end_of(i),
                    plan.bands[i],
                    prices[plan.bands[i] as usize],
                )
            })
            .collect();
        let start = date
            .to_zoned(self.tz.clone())
            .and_then(|z| z.start_of_day());
        let end = date
            .tomorrow()
            .and_then(|d| d.to_zoned(self.tz.clone()))
            .and_then(|z| z.start_of_day());
        let hours = match (start, end) {
            (Ok(a), Ok(b)) => a.duration_until(&b).as_secs_f64() / 3600.0,
            _ => 24.0,
        };
        (spans, hours)
    }
}

/// A cached segment: most lookups in a stream of samples fall in the segment of
/// the previous one and cost two comparisons.
#[derive(Debug, Clone)]
pub struct Cursor {
    pub tariff: Arc<Tariff>,
    seg: Option<Segment>,
}

impl Cursor {
    pub fn new(tariff: Arc<Tariff>) -> Self {
        Self { tariff, seg: None }
    }

    pub fn at(&mut self, t: Timestamp) -> Segment {
        match self.seg {
            Some(s) if s.contains(t) => s,
            _ => {
                let s = self.tariff.segment_at(t);
                self.seg = Some(s);
                s
            }
        }
    }
}
