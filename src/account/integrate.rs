//! Energy from power when a profile has no counters: trapezoidal integration,
//! never across a gap longer than `max_gap` (the gap is reported, not filled)
//! and never through an invalid reading.
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Energy over one interval, split by direction, in milliwatt-hours (both >= 0).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Flow {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Energy while the value was positive (discharge for battery power, import for grid power).
    pub positive_mwh: f64,
    pub negative_mwh: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Flow(Flow),
    /// Samples further apart than allowed: nothing booked between them.
    Gap {
        from: Timestamp,
        to: Timestamp,
    },
    Started,
    Ignored,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Integrator {
    pub last: Option<(Timestamp, f64)>,
}

impl Integrator {
    /// Takes a reading in kW; `None` is an invalid or missing reading, which breaks the chain.
    pub fn observe(
        &mut self,
        at: Timestamp,
        kw: Option<f64>,
        max_gap: jiff::SignedDuration,
    ) -> Step {
        let Some(p1) = kw.filter(|v| v.is_finite()) else {
            self.last = None;
            return Step::Ignored;
        };
        let prev = self.last;
        match prev {
            Some((t0, _)) if at <= t0 => return Step::Ignored,
            _ => self.last = Some((at, p1)),
        }
        let Some((t0, p0)) = prev else {
            return Step::Started;
        };
        let dt = t0.duration_until(at);
        if dt > max_gap {
            return Step::Gap { from: t0, to: at };
        }
        let h = dt.as_secs_f64() / 3600.0;
        let mut f = Flow {
            from: t0,
            to: at,
            ..Flow::default()
        };
        if (p0 >= 0.0) == (p1 >= 0.0) {
            let e = (p0 + p1) / 2.0 * h * 1e6;
            if e >= 0.0 {
                f.positive_mwh = e;
            } else {
                f.negative_mwh = -e;
            }
        } else {
            // The line crosses zero at fraction x of the interval: two triangles.
            let x = p0 / (p0 - p1);
            let a = p0 / 2.0 * x * h * 1e6;
            let b = p1 / 2.0 * (1.0 - x) * h * 1e6;
            for e in [a, b] {
                if e >= 0.0 {
                    f.positive_mwh += e;
                } else {
                    f.negative_mwh -= e;
                }
            }
        }
        Step::Flow(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn at(s: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_secs(s)
    }

    const GAP: SignedDuration = SignedDuration::from_secs(3);

    #[test]
    fn trapezoids_and_zero_crossings() {
        let mut i = Integrator::default();
        assert_eq!(i.observe(at(0), Some(3600.0), GAP), Step::Started);
        // 3600 kW for 1 s = 1 kWh = 1e6 mWh.
        let Step::Flow(f) = i.observe(at(1), Some(3600.0), GAP) else {
            panic!()
        };
        assert!((f.positive_mwh - 1e6).abs() < 1e-6 && f.negative_mwh == 0.0);
        // From +3600 to -3600 over 2 s: crosses zero half-way, 0.5 kWh each way.
        let Step::Flow(f) = i.observe(at(3), Some(-3600.0), GAP) else {
            panic!()
        };
        assert!((f.positive_mwh - 5e5).abs() < 1e-6 && (f.negative_mwh - 5e5).abs() < 1e-6);
    }

    #[test]
    fn gaps_and_invalid_readings_are_not_bridged() {
        let mut i = Integrator::default();
        i.observe(at(0), Some(100.0), GAP);
        assert_eq!(
            i.observe(at(10), Some(100.0), GAP),
            Step::Gap {
                from: at(0),
                to: at(10)
            }
        );
        assert_eq!(i.observe(at(11), None, GAP), Step::Ignored);
        assert_eq!(i.observe(at(12), Some(100.0), GAP), Step::Started);
    }
}
