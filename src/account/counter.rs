//! Energy from a cumulative counter, with the field's failure modes handled:
//!
//! - a decrease is a reset (another master zeroed it), not negative energy;
//! - a decrease across the register's width is a rollover;
//! - a delta above `max_kw` x elapsed x 1.5 is quarantined and reported, never booked
//!   (evcc #29286 booked 53.7 MWh on a 5 kW system after a transient 0);
//! - a suspicious reading (a decrease, a jump, a 0) never becomes the baseline on
//!   its own: it must be confirmed by a later reading that continues from it,
//!   and a reading that continues from the old baseline instead proves it transient;
//! - invalid readings never reach this code (the caller skips them).
//!
//! Counts stay in the counter's raw integer units until booked, so wrap and
//! reset arithmetic is exact.
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    pub raw: u64,
    pub at: Timestamp,
}

/// How a counter reading was taken in.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The first reading: nothing to book yet.
    Baseline,
    /// Energy to book over `[from, to]`, in milliwatt-hours.
    Booked {
        from: Timestamp,
        to: Timestamp,
        mwh: i64,
        note: Option<Note>,
    },
    /// Held back until a later reading shows what it was.
    Suspect(Note),
    /// Nothing new (same or earlier timestamp).
    Ignored,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    Rollover,
    /// Counter went down; energy between the last reading and the reset is unknown.
    Reset {
        from_raw: u64,
        to_raw: u64,
    },
    /// A jump larger than plausible; `mwh` was not booked.
    Quarantined {
        mwh: i64,
        limit_mwh: i64,
    },
    /// A suspect reading turned out to be a glitch and was dropped.
    TransientIgnored {
        raw: u64,
    },
    Decrease {
        from_raw: u64,
        to_raw: u64,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub base: Option<Reading>,
    pub suspect: Option<Reading>,
}

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Register width in bits (16, 32 or 64).
    pub bits: u8,
    /// Milliwatt-hours per raw unit.
    pub mwh_per_raw: f64,
    /// The power no real flow through this counter can exceed, in kW.
    pub max_kw: f64,
}

impl Spec {
    /// The register's value range as a mask: counts wrap at 2^bits. (u64
    /// arithmetic; u128 cost a fifth of the replay benchmark's time.)
    fn mask(&self) -> u64 {
        if self.bits >= 64 {
            u64::MAX
        } else {
            (1u64 << self.bits) - 1
        }
    }

    /// Raw units plausible over `elapsed`: 1.5 x max power, and never less than two
    /// counts so a coarse counter ticking once per poll is not quarantined.
    fn limit(&self, from: Timestamp, to: Timestamp) -> u64 {
        let hours = to.duration_since(from).as_secs_f64().max(0.0) / 3600.0;
        let mwh = self.max_kw * hours * 1.5 * 1e6;
        // `as` saturates: an absurd span gives u64::MAX, not a wrap.
        ((mwh / self.mwh_per_raw).floor() as u64).max(2)
    }

    pub fn to_mwh(&self, raw: u64) -> i64 {
        (raw as f64 * self.mwh_per_raw).round() as i64
    }
}

impl Counter {
    pub fn observe(&mut self, r: Reading, spec: &Spec) -> Outcome {
        let Some(base) = self.base else {
            self.base = Some(r);
            return Outcome::Baseline;
        };
        if r.at <= base.at {
            return Outcome::Ignored;
        }
        let m = spec.mask();
        let (raw, b) = (r.raw & m, base.raw & m);
        let limit = spec.limit(base.at, r.at);
        // Continuing from the baseline (possibly across a rollover) proves any suspect a glitch.
        let forward = raw.wrapping_sub(b) & m;
        if forward <= limit {
            let dropped = self.suspect.take();
            self.base = Some(r);
            let note = if raw < b {
                Some(Note::Rollover)
            } else {
                dropped.map(|s| Note::TransientIgnored { raw: s.raw })
            };
            return Outcome::Booked {
                from: base.at,
                to: r.at,
                mwh: spec.to_mwh(forward),
                note,
            };
        }
        if let Some(s) = self.suspect {
            let sr = s.raw & m;
            if raw > sr && raw - sr <= spec.limit(s.at, r.at) {
                // The suspect is confirmed as the counter's new course.
                self.suspect = None;
                self.base = Some(r);
                return if sr < b {
                    // A reset: what the counter shows at the suspect reading accrued since
                    // the reset, which happened after the old baseline.
                    let since_reset = if sr <= spec.limit(base.at, s.at) {
                        sr
                    } else {
                        0
                    };
                    Outcome::Booked {
                        from: base.at,
                        to: r.at,
                        mwh: spec.to_mwh(since_reset + raw - sr),
                        note: Some(Note::Reset {
                            from_raw: base.raw,
                            to_raw: s.raw,
                        }),
                    }
                } else {
                    Outcome::Booked {
                        from: s.at,
                        to: r.at,
                        mwh: spec.to_mwh(raw - sr),
                        note: Some(Note::Quarantined {
                            mwh: spec.to_mwh(sr - b),
                            limit_mwh: spec.to_mwh(spec.limit(base.at, s.at)),
                        }),
                    }
                };
            }
        }
        // Hold the reading back. An earlier suspect is kept if this one repeats it
        // (a counter stuck at 0 after a reset is confirmed only once it counts).
        if self.suspect.is_none_or(|s| s.raw != r.raw) {
            self.suspect = Some(r);
        }
        Outcome::Suspect(if raw < b {
            Note::Decrease {
                from_raw: base.raw,
                to_raw: r.raw,
            }
        } else {
            Note::Quarantined {
                mwh: spec.to_mwh(raw - b),
                limit_mwh: spec.to_mwh(limit),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    /// 1 Wh counts (1,000 mWh), u32, a 1 MW battery.
    const SPEC: Spec = Spec {
        bits: 32,
        mwh_per_raw: 1000.0,
        max_kw: 1000.0,
    };

    fn at(s: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_secs(s)
    }

    /// Feeds (second, raw) pairs; returns the Wh booked.
    fn run(readings: &[(i64, u64)]) -> (i64, Vec<Outcome>) {
        let mut c = Counter::default();
        let mut wh = 0;
        let mut outs = Vec::new();
        for &(s, raw) in readings {
            let o = c.observe(Reading { raw, at: at(s) }, &SPEC);
            if let Outcome::Booked { mwh, .. } = o {
                wh += mwh / 1000;
            }
            outs.push(o);
        }
        (wh, outs)
    }

    #[test]
    fn steady_counting_books_every_delta() {
        // 1 MW for 1 s is 277.8 Wh; stay under it.
        let (wh, _) = run(&[(0, 1000), (1, 1200), (2, 1450), (3, 1450)]);
        assert_eq!(wh, 450);
    }

    #[test]
    fn a_rollover_at_the_register_width_is_energy_not_a_reset() {
        let top = u32::MAX as u64;
        let (wh, outs) = run(&[(0, top - 100), (1, 50)]);
        assert_eq!(wh, 151);
        assert!(matches!(
            outs[1],
            Outcome::Booked {
                note: Some(Note::Rollover),
                ..
            }
        ));
    }

    #[test]
    fn a_reset_is_confirmed_then_booked_from_zero() {
        // Another master zeroes the counter; it then counts on from 0.
        let (wh, outs) = run(&[(0, 500_000), (1, 500_200), (2, 30), (3, 250), (4, 480)]);
        assert!(matches!(outs[2], Outcome::Suspect(Note::Decrease { .. })));
        assert!(matches!(
            outs[3],
            Outcome::Booked {
                note: Some(Note::Reset { .. }),
                ..
            }
        ));
        // 200 before, 30 counted since the reset, then 220 and 230.
        assert_eq!(wh, 200 + 30 + 220 + 230);
    }

    #[test]
    fn a_transient_zero_never_becomes_the_baseline() {
        // evcc #29286: a meter read 0 once (here three times), then recovered.
        let (wh, outs) = run(&[
            (0, 9_000_000),
            (1, 9_000_100),
            (2, 0),
            (3, 0),
            (4, 0),
            (5, 9_000_900),
        ]);
        assert_eq!(
            wh, 900,
            "the recovery books only the real 800 Wh since the last good reading"
        );
        assert!(matches!(
            outs[5],
            Outcome::Booked {
                note: Some(Note::TransientIgnored { raw: 0 }),
                ..
            }
        ));
    }

    #[test]
    fn a_spike_is_quarantined_and_never_booked() {
        // A garbage value far above what 1 MW can deliver in a second.
        let (wh, outs) = run(&[(0, 1000), (1, 1200), (2, 80_000_000), (3, 1400)]);
        assert_eq!(wh, 400);
        assert!(matches!(
            outs[2],
            Outcome::Suspect(Note::Quarantined { .. })
        ));
        // A counter that really jumped (a replaced meter) is followed after confirmation,
        // the jump itself reported and not booked.
        let (wh, outs) = run(&[(0, 1000), (1, 80_000_000), (2, 80_000_200)]);
        assert_eq!(wh, 200);
        assert!(matches!(
            outs[2],
            Outcome::Booked {
                note: Some(Note::Quarantined { .. }),
                ..
            }
        ));
    }

    #[test]
    fn coarse_counters_are_not_quarantined_for_ticking() {
        // 0.1 kWh counts on a 10 kW system polled every second: one count is above
        // 10 kW x 1 s x 1.5 but is what such a counter does.
        let spec = Spec {
            bits: 32,
            mwh_per_raw: 100_000.0,
            max_kw: 10.0,
        };
        let mut c = Counter::default();
        c.observe(Reading { raw: 10, at: at(0) }, &spec);
        assert!(matches!(
            c.observe(Reading { raw: 11, at: at(1) }, &spec),
            Outcome::Booked { mwh: 100_000, .. }
        ));
    }

    #[test]
    fn out_of_order_readings_are_ignored() {
        let (wh, outs) = run(&[(0, 100), (5, 200), (3, 150)]);
        assert_eq!(wh, 100);
        assert_eq!(outs[2], Outcome::Ignored);
    }
}
