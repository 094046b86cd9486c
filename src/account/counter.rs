//! Energy from a cumulative counter, with the field's failure modes handled:
//!
//! - a decrease is a reset (another master zeroed it), not negative energy;
//! - a decrease across the register's width is a rollover;
//! - movement faster than physics allows is quarantined and reported, never
//!   booked (evcc #29286 booked 53.7 MWh on a 5 kW system after a transient 0).
//!   What physics allows is judged between the two readings compared, at their
//!   own timestamps: a held reading is never re-judged against the time waited
//!   since, or an idle counter's jump would pass once enough time went by;
//! - a suspicious reading (a decrease, a jump, a 0) never becomes the baseline on
//!   its own: it must be confirmed by a later reading that continues from it,
//!   and a reading that continues from the old baseline instead proves it transient;
//! - where the flow's power is measured too (a [`Trace`]), it testifies: an idle
//!   battery's counter may not move by more than its power allows plus one
//!   count, and a grid counter consistent with measured power is real however
//!   large the site;
//! - invalid readings never reach this code (the caller skips them).
//!
//! Counts stay in the counter's raw integer units until booked, so wrap and
//! reset arithmetic is exact.
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// A held-back reading unresolved this long is reported, not kept quietly.
pub const OVERDUE: SignedDuration = SignedDuration::from_mins(5);

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CounterReading {
    pub raw: u64,
    pub at: Timestamp,
    /// The measured power's testimony at this reading, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
}

impl CounterReading {
    pub fn new(raw: u64, at: Timestamp) -> Self {
        CounterReading {
            raw,
            at,
            trace: None,
        }
    }
}

/// The energy integrated from measured power in the counter's direction, up to
/// the power sample last taken before (or with) a counter reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Unbroken stretch of power samples this belongs to: two readings can be
    /// compared only within one chain (a gap or an invalid sample starts a new one).
    pub chain: u64,
    /// Cumulative energy of the chain, in milliwatt-hours.
    pub mwh: f64,
    /// Seconds between the last power sample and the counter reading.
    pub lag_s: f64,
    /// The last power sample, in the counter's direction (kW, >= 0).
    pub kw: f64,
}

/// How a power trace may judge a counter's movement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TraceRule {
    /// Power is not consulted.
    Ignore,
    /// Battery counters: while power reads at most `near_zero_kw` at both
    /// readings and on average between them, the counter may move by what that
    /// power allows plus one count.
    Idle { near_zero_kw: f64 },
    /// Grid counters without a contracted capacity: movement within 10 % (plus
    /// one count) of the measured energy is real whatever its size.
    Consistent,
}

/// How a counter reading was taken in.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
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
    /// Held back for [`OVERDUE`] with nothing resolving it; `since` is the last
    /// good reading. Said once per hold.
    Overdue { since: Timestamp, note: Note },
    /// Nothing new (same or earlier timestamp).
    Ignored,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    Rollover,
    /// Counter went down; energy between the last reading and the reset is
    /// unknown, at most `hidden_max_mwh` over `hidden` (what could have flowed).
    /// `quarantined_mwh`: what it showed since the reset beyond what could have
    /// flowed (a jump right after it), reported and not booked.
    Reset {
        from_raw: u64,
        to_raw: u64,
        quarantined_mwh: i64,
        hidden: (Timestamp, Timestamp),
        hidden_max_mwh: i64,
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
    /// The counter's unit changed (a SunSpec scale factor moved): the new
    /// reading was compared in milliwatt-hours.
    Rescaled {
        from_mwh_per_raw: f64,
        to_mwh_per_raw: f64,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub base: Option<CounterReading>,
    pub suspect: Option<CounterReading>,
    /// Milliwatt-hours per count of `base` (0 in state saved before it was kept).
    #[serde(default)]
    pub mwh_per_raw: f64,
    /// The held reading was read again unchanged.
    #[serde(default)]
    pub repeated: bool,
    /// When the current hold began (the first reading held back).
    #[serde(default)]
    pub held_since: Option<Timestamp>,
    /// The current hold was reported as overdue.
    #[serde(default)]
    pub overdue_said: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Register width in bits (16, 32 or 64).
    pub bits: u8,
    /// Milliwatt-hours per raw unit.
    pub mwh_per_raw: f64,
    /// The least movement the register can show, in counts (see `Measured::Counter`).
    pub step: u64,
    /// The power no real flow through this counter can exceed, in kW.
    pub max_kw: f64,
    pub rule: TraceRule,
}

impl Spec {
    /// A counter with no power testimony.
    pub fn plain(bits: u8, mwh_per_raw: f64, max_kw: f64) -> Spec {
        Spec {
            bits,
            mwh_per_raw,
            step: 1,
            max_kw,
            rule: TraceRule::Ignore,
        }
    }

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
    /// steps so a coarse counter ticking once per poll is not quarantined.
    fn limit(&self, from: Timestamp, to: Timestamp) -> u64 {
        ((self.limit_mwh(from, to) / self.mwh_per_raw).floor() as u64).max(2 * self.step.max(1))
    }

    fn limit_mwh(&self, from: Timestamp, to: Timestamp) -> f64 {
        let hours = to.duration_since(from).as_secs_f64().max(0.0) / 3600.0;
        // `as` saturates later: an absurd span gives u64::MAX, not a wrap.
        self.max_kw * hours * 1.5 * 1e6
    }

    pub fn to_mwh(&self, raw: u64) -> i64 {
        (raw as f64 * self.mwh_per_raw).round() as i64
    }

    /// Whether `delta` counts from reading `a` to reading `b` can be real flow.
    fn plausible(&self, a: &CounterReading, b: &CounterReading, delta: u64) -> bool {
        // One step is resolution under every rule (and the limit is never below two).
        if delta <= self.step.max(1) {
            return true;
        }
        let by_rating = delta <= self.limit(a.at, b.at);
        let (Some(ta), Some(tb)) = (a.trace, b.trace) else {
            return by_rating;
        };
        if ta.chain != tb.chain || matches!(self.rule, TraceRule::Ignore) {
            return by_rating;
        }
        let expected = (tb.mwh - ta.mwh).max(0.0);
        let moved = delta as f64 * self.mwh_per_raw;
        // Power read up to `lag` before the counter: the flow may have changed since.
        let slack = 1.5 * ta.kw.max(tb.kw) * (ta.lag_s + tb.lag_s) / 3600.0 * 1e6;
        let step = self.mwh_per_raw * self.step.max(1) as f64;
        match self.rule {
            TraceRule::Idle { near_zero_kw } => {
                let hours = a.at.duration_until(b.at).as_secs_f64() / 3600.0;
                let idle = ta.kw <= near_zero_kw
                    && tb.kw <= near_zero_kw
                    && expected <= near_zero_kw * hours * 1e6;
                // Samples are instants: allow the larger end and the near-zero
                // floor itself over the whole interval, never less.
                let allowed = 1.5 * ta.kw.max(tb.kw).max(near_zero_kw) * hours * 1e6;
                by_rating && (!idle || moved <= allowed + step + slack)
            }
            TraceRule::Consistent => {
                (moved - expected).abs() <= 0.1 * expected + step + slack || by_rating
            }
            TraceRule::Ignore => by_rating,
        }
    }
}

impl Counter {
    pub fn observe(&mut self, r: CounterReading, spec: &Spec) -> Verdict {
        let Some(base) = self.base else {
            self.rebase(r, spec);
            return Verdict::Baseline;
        };
        if r.at <= base.at {
            return Verdict::Ignored;
        }
        if self.mwh_per_raw != 0.0 && self.mwh_per_raw != spec.mwh_per_raw {
            return self.rescaled(base, r, spec);
        }
        self.mwh_per_raw = spec.mwh_per_raw;
        let m = spec.mask();
        let (raw, b) = (r.raw & m, base.raw & m);
        let forward = raw.wrapping_sub(b) & m;
        // A held jump upwards is judged first: the reading that continues from it
        // confirms it, however long ago the last good reading was.
        if let Some(s) = self.suspect {
            let sr = s.raw & m;
            if sr >= b && raw >= sr && spec.plausible(&s, &r, raw - sr) {
                let limit = spec.limit(base.at, s.at);
                self.rebase(r, spec);
                return Verdict::Booked {
                    from: s.at,
                    to: r.at,
                    mwh: spec.to_mwh(raw - sr),
                    note: Some(Note::Quarantined {
                        mwh: spec.to_mwh(sr - b),
                        limit_mwh: spec.to_mwh(limit),
                    }),
                };
            }
        }
        // A decrease the counter sat at (seen twice) was no transient: a reading
        // that counts on from it confirms a reset before anything else.
        if self.repeated {
            if let Some(o) = self.confirm_reset(base, r, spec) {
                return o;
            }
        }
        // Continuing from the baseline (possibly across a rollover) proves a suspect a
        // glitch. A 0 is never taken on its own: just below the register's top a
        // transient 0 would pass for a rollover.
        if spec.plausible(&base, &r, forward) && (raw != 0 || b == 0) {
            let dropped = self.suspect.take();
            self.rebase(r, spec);
            let note = if raw < b {
                Some(Note::Rollover)
            } else {
                dropped.map(|s| Note::TransientIgnored { raw: s.raw })
            };
            return Verdict::Booked {
                from: base.at,
                to: r.at,
                mwh: spec.to_mwh(forward),
                note,
            };
        }
        if let Some(o) = self.confirm_reset(base, r, spec) {
            return o;
        }
        // It leaps from the lower value it sat at, and not back to where it was:
        // a reset, then a jump. Settle the reset at the value it sat at; hold the jump.
        if let Some(s) = self
            .suspect
            .filter(|s| self.repeated && s.raw & m < b && raw > s.raw & m)
        {
            let reset = self.settle_reset(base, s, spec);
            self.rebase(s, spec);
            self.suspect = Some(r);
            self.held_since = Some(r.at);
            return reset;
        }
        // Hold the reading back. A repeat of the held value moves it to this
        // reading's time: the counter was still there, so any later movement
        // happened since, and is judged over that span only.
        self.repeated = self.suspect.is_some_and(|s| s.raw == r.raw);
        self.suspect = Some(r);
        let note = if raw < b {
            Note::Decrease {
                from_raw: base.raw,
                to_raw: r.raw,
            }
        } else {
            Note::Quarantined {
                mwh: spec.to_mwh(raw - b),
                limit_mwh: spec.to_mwh(spec.limit(base.at, r.at)),
            }
        };
        let held_since = *self.held_since.get_or_insert(r.at);
        if !self.overdue_said && held_since.duration_until(r.at) >= OVERDUE {
            self.overdue_said = true;
            return Verdict::Overdue {
                since: base.at,
                note,
            };
        }
        Verdict::Suspect(note)
    }

    /// A held decrease confirmed as a reset by `r`, if it is one.
    fn confirm_reset(
        &mut self,
        base: CounterReading,
        r: CounterReading,
        spec: &Spec,
    ) -> Option<Verdict> {
        let s = self.suspect?;
        let m = spec.mask();
        let (raw, b, sr) = (r.raw & m, base.raw & m, s.raw & m);
        // Confirmed once the counter counts on from it, or reads the same again
        // (an idle battery); a counter stuck at 0 proves nothing, unless it got
        // there by a rollover in time.
        let rolled = self.rolled_onto_zero(base, s, spec).is_some();
        let confirms = raw > sr || (raw == sr && (sr != 0 || rolled));
        if !(sr < b && confirms && spec.plausible(&s, &r, raw - sr)) {
            return None;
        }
        let reset = self.settle_reset(base, s, spec);
        self.rebase(r, spec);
        let Verdict::Booked {
            mwh,
            note: Some(note),
            ..
        } = reset
        else {
            unreachable!("settle_reset books")
        };
        Some(Verdict::Booked {
            from: base.at,
            to: r.at,
            mwh: mwh + spec.to_mwh(raw - sr),
            note: Some(note),
        })
    }

    /// A reset from `base` seen first at the held reading `s`: what the counter
    /// shows there accrued since the reset, which happened after the old
    /// baseline and before the first reading held back (a later one may have
    /// replaced it). More than could have flowed in that time is quarantined.
    fn settle_reset(&self, base: CounterReading, s: CounterReading, spec: &Spec) -> Verdict {
        if let Some(wrap) = self.rolled_onto_zero(base, s, spec) {
            return Verdict::Booked {
                from: base.at,
                to: s.at,
                mwh: spec.to_mwh(wrap),
                note: Some(Note::Rollover),
            };
        }
        let sr = s.raw & spec.mask();
        let first = self.first_held(s);
        let (since_reset, unexplained) = if sr <= spec.limit(base.at, first) {
            (sr, 0)
        } else {
            (0, sr)
        };
        Verdict::Booked {
            from: base.at,
            to: s.at,
            mwh: spec.to_mwh(since_reset),
            note: Some(Note::Reset {
                from_raw: base.raw,
                to_raw: s.raw,
                quarantined_mwh: spec.to_mwh(unexplained),
                hidden: (base.at, first),
                hidden_max_mwh: spec.limit_mwh(base.at, first).min(i64::MAX as f64) as i64,
            }),
        }
    }

    /// When the current hold began: the held reading may be a later repeat.
    fn first_held(&self, s: CounterReading) -> Timestamp {
        self.held_since.unwrap_or(s.at).min(s.at)
    }

    /// The counts from `base` to a held 0 when they are a rollover that fits
    /// in the time before the hold began: landing on 0 just past the top.
    fn rolled_onto_zero(
        &self,
        base: CounterReading,
        s: CounterReading,
        spec: &Spec,
    ) -> Option<u64> {
        let m = spec.mask();
        let wrap = (s.raw & m).wrapping_sub(base.raw & m) & m;
        (s.raw & m == 0 && wrap <= spec.limit(base.at, self.first_held(s))).then_some(wrap)
    }

    fn rebase(&mut self, r: CounterReading, spec: &Spec) {
        self.base = Some(r);
        self.suspect = None;
        self.repeated = false;
        self.mwh_per_raw = spec.mwh_per_raw;
        self.held_since = None;
        self.overdue_said = false;
    }

    /// The unit changed between two readings: compare them in milliwatt-hours.
    /// A plausible difference is booked; anything else re-bases on the new
    /// reading and says what moved.
    fn rescaled(&mut self, base: CounterReading, r: CounterReading, spec: &Spec) -> Verdict {
        let before = (base.raw as f64 * self.mwh_per_raw).round() as i64;
        let after = spec.to_mwh(r.raw);
        let delta = after - before;
        let limit = spec.limit_mwh(base.at, r.at).min(i64::MAX as f64) as i64;
        let rescale = Note::Rescaled {
            from_mwh_per_raw: self.mwh_per_raw,
            to_mwh_per_raw: spec.mwh_per_raw,
        };
        self.rebase(r, spec);
        let (mwh, note) = if (0..=limit).contains(&delta) {
            (delta, rescale)
        } else if delta > 0 {
            (
                0,
                Note::Quarantined {
                    mwh: delta,
                    limit_mwh: limit,
                },
            )
        } else {
            (
                0,
                Note::Reset {
                    from_raw: base.raw,
                    to_raw: r.raw,
                    quarantined_mwh: 0,
                    hidden: (base.at, r.at),
                    hidden_max_mwh: 0,
                },
            )
        };
        Verdict::Booked {
            from: base.at,
            to: r.at,
            mwh,
            note: Some(note),
        }
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
        step: 1,
        max_kw: 1000.0,
        rule: TraceRule::Ignore,
    };

    fn at(s: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_secs(s)
    }

    /// Feeds (second, raw) pairs; returns the Wh booked.
    fn run(readings: &[(i64, u64)]) -> (i64, Vec<Verdict>) {
        let mut c = Counter::default();
        let mut wh = 0;
        let mut outs = Vec::new();
        for &(s, raw) in readings {
            let o = c.observe(CounterReading::new(raw, at(s)), &SPEC);
            if let Verdict::Booked { mwh, .. } = o {
                wh += mwh / 1000;
            }
            outs.push(o);
        }
        (wh, outs)
    }

    /// The jumps quarantined when confirmed, in mWh.
    fn quarantined(outs: &[Verdict]) -> Vec<i64> {
        outs.iter()
            .filter_map(|o| match o {
                Verdict::Booked {
                    note: Some(Note::Quarantined { mwh, .. }),
                    ..
                } => Some(*mwh),
                _ => None,
            })
            .collect()
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
            Verdict::Booked {
                note: Some(Note::Rollover),
                ..
            }
        ));
    }

    #[test]
    fn a_reset_is_confirmed_then_booked_from_zero() {
        // Another master zeroes the counter; it then counts on from 0.
        let (wh, outs) = run(&[(0, 500_000), (1, 500_200), (2, 30), (3, 250), (4, 480)]);
        assert!(matches!(outs[2], Verdict::Suspect(Note::Decrease { .. })));
        assert!(matches!(
            outs[3],
            Verdict::Booked {
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
            Verdict::Booked {
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
            Verdict::Suspect(Note::Quarantined { .. })
        ));
        // A counter that really jumped (a replaced meter) is followed after confirmation,
        // the jump itself reported and not booked.
        let (wh, outs) = run(&[(0, 1000), (1, 80_000_000), (2, 80_000_200)]);
        assert_eq!(wh, 200);
        assert!(matches!(
            outs[2],
            Verdict::Booked {
                note: Some(Note::Quarantined { .. }),
                ..
            }
        ));
    }

    #[test]
    fn coarse_counters_are_not_quarantined_for_ticking() {
        // 0.1 kWh counts on a 10 kW system polled every second: one count is above
        // 10 kW x 1 s x 1.5 but is what such a counter does.
        let spec = Spec::plain(32, 100_000.0, 10.0);
        let mut c = Counter::default();
        c.observe(CounterReading::new(10, at(0)), &spec);
        assert!(matches!(
            c.observe(CounterReading::new(11, at(1)), &spec),
            Verdict::Booked { mwh: 100_000, .. }
        ));
    }

    #[test]
    fn out_of_order_readings_are_ignored() {
        let (wh, outs) = run(&[(0, 100), (5, 200), (3, 150)]);
        assert_eq!(wh, 100);
        assert_eq!(outs[2], Verdict::Ignored);
    }

    #[test]
    fn an_idle_jump_is_judged_at_the_held_reading_not_the_time_waited() {
        // Readings a minute apart; the counter jumps 100 kWh (1 MW allows 25 kWh
        // a minute) and stays there for an hour: the jump is quarantined, never
        // booked, however far the last good reading falls behind.
        let mut readings = vec![(0, 5_000_000), (60, 5_000_000), (120, 5_100_000)];
        for m in 3..=60 {
            readings.push((m * 60, 5_100_000));
        }
        let (wh, outs) = run(&readings);
        assert_eq!(wh, 0);
        assert_eq!(quarantined(&outs), vec![100_000_000], "{outs:?}");
        // Energy after the re-base counts again.
        let (wh, _) = run(&[(0, 0), (60, 100_000), (120, 100_000), (180, 100_500)]);
        assert_eq!(wh, 500);
    }

    #[test]
    fn a_hold_nothing_resolves_is_reported_once_after_five_minutes() {
        // A site importing beyond the limit: every reading is too far from the last.
        let mut c = Counter::default();
        let spec = Spec::plain(32, 1000.0, 100.0);
        let mut overdue = 0;
        for m in 0..20 {
            let o = c.observe(CounterReading::new(m * 10_000, at(m as i64 * 60)), &spec);
            if matches!(o, Verdict::Overdue { .. }) {
                overdue += 1;
                assert_eq!(m, 6, "reported five minutes after the hold began");
            }
        }
        assert_eq!(overdue, 1);
    }

    fn traced(raw: u64, s: i64, chain: u64, mwh: f64) -> CounterReading {
        CounterReading {
            raw,
            at: at(s),
            trace: Some(Trace {
                chain,
                mwh,
                lag_s: 0.0,
                kw: 0.0,
            }),
        }
    }

    #[test]
    fn an_idle_battery_counter_may_move_only_what_its_power_allows() {
        let spec = Spec {
            rule: TraceRule::Idle { near_zero_kw: 10.0 },
            ..SPEC
        };
        // 15 minutes apart: 1 MW x 1.5 would allow 375 kWh, but power read zero.
        let mut c = Counter::default();
        c.observe(traced(1_000, 0, 1, 0.0), &spec);
        let o = c.observe(traced(101_000, 900, 1, 0.0), &spec);
        assert!(
            matches!(o, Verdict::Suspect(Note::Quarantined { .. })),
            "{o:?}"
        );
        // One count of movement is resolution, not a jump.
        let mut c = Counter::default();
        c.observe(traced(1_000, 0, 1, 0.0), &spec);
        let o = c.observe(traced(1_001, 900, 1, 0.0), &spec);
        assert!(matches!(o, Verdict::Booked { mwh: 1000, .. }), "{o:?}");
        // A float register's step is its resolution too: 64 counts at once.
        let coarse = Spec { step: 64, ..spec };
        let mut c = Counter::default();
        c.observe(traced(1_000, 0, 1, 0.0), &coarse);
        let o = c.observe(traced(1_064, 900, 1, 0.0), &coarse);
        assert!(matches!(o, Verdict::Booked { mwh: 64_000, .. }), "{o:?}");
        // Across a break in the power trace the rating alone judges.
        let mut c = Counter::default();
        c.observe(traced(1_000, 0, 1, 0.0), &spec);
        let o = c.observe(traced(101_000, 900, 2, 0.0), &spec);
        assert!(matches!(o, Verdict::Booked { .. }), "{o:?}");
    }

    #[test]
    fn a_grid_counter_consistent_with_measured_power_is_real_at_any_size() {
        // 8 MW for a minute on a limit of 4 MW: 133.3 kWh measured, 133.4 counted.
        let spec = Spec {
            rule: TraceRule::Consistent,
            max_kw: 4000.0,
            ..SPEC
        };
        let mut c = Counter::default();
        c.observe(traced(0, 0, 1, 0.0), &spec);
        let o = c.observe(traced(133_400, 60, 1, 133_333_333.0), &spec);
        assert!(
            matches!(
                o,
                Verdict::Booked {
                    mwh: 133_400_000,
                    ..
                }
            ),
            "{o:?}"
        );
        // Twice what power says is not.
        let o = c.observe(traced(400_000, 120, 1, 266_666_666.0), &spec);
        assert!(matches!(o, Verdict::Suspect(_)), "{o:?}");
    }

    #[test]
    fn a_changed_scale_is_compared_in_energy() {
        let mut c = Counter::default();
        // 12,345 x 10 Wh, then the device switches to 100 Wh counts: 1,235 x 100 Wh.
        c.observe(
            CounterReading::new(12_345, at(0)),
            &Spec::plain(32, 10_000.0, 1000.0),
        );
        let o = c.observe(
            CounterReading::new(1_235, at(60)),
            &Spec::plain(32, 100_000.0, 1000.0),
        );
        assert!(
            matches!(
                o,
                Verdict::Booked {
                    mwh: 50_000,
                    note: Some(Note::Rescaled { .. }),
                    ..
                }
            ),
            "{o:?}"
        );
        let o = c.observe(
            CounterReading::new(1_236, at(120)),
            &Spec::plain(32, 100_000.0, 1000.0),
        );
        assert!(
            matches!(
                o,
                Verdict::Booked {
                    mwh: 100_000,
                    note: None,
                    ..
                }
            ),
            "{o:?}"
        );
    }

    #[test]
    fn a_rollover_onto_zero_on_an_idle_battery_is_counted() {
        // Exactly 0 is never taken on its own (a transient 0 just below the top
        // would pass for a rollover), but sitting at it after a plausible wrap is one.
        let top = u32::MAX as u64;
        let (wh, outs) = run(&[(0, top - 2), (1, 0), (2, 0)]);
        assert_eq!(wh, 3, "{outs:?}");
        assert!(matches!(
            outs[2],
            Verdict::Booked {
                note: Some(Note::Rollover),
                ..
            }
        ));
    }

    #[test]
    fn a_reset_then_a_jump_quarantines_the_jump_not_the_old_value() {
        // Reset to 0 on an idle battery, sat there, then leapt 50 kWh and stayed.
        let (wh, outs) = run(&[
            (0, 900_000),
            (60, 0),
            (120, 0),
            (180, 50_000),
            (240, 50_000),
            (300, 50_100),
        ]);
        assert_eq!(wh, 100, "{outs:?}");
        assert_eq!(quarantined(&outs), vec![50_000_000], "{outs:?}");
        assert!(outs.iter().any(|o| matches!(
            o,
            Verdict::Booked {
                note: Some(Note::Reset { .. }),
                ..
            }
        )));
    }
}
