//! The accounting against an independent oracle. A day of true battery and
//! grid flows is generated, turned into what the devices would have reported
//! (counters with a resolution and a register width, wraps, resets, transient
//! zeros, corrupted words, outages of random length, idle jumps), and run
//! through the same accounting the daemon uses. The oracle knows, per band,
//! what truly flowed, and which counter movement the devices showed; it never
//! calls the ledger's band lookup (bands come from the tariff's day plan by
//! local minute).
//!
//! Per band and kind, booked energy never exceeds the truth (beyond what the
//! time split of an interval that crossed a boundary can move, which the oracle
//! bounds interval by interval); booked + unattributed + quarantined equals the
//! counters' movement exactly; and with no faults the figures are the truth to
//! one counter step, demand included.
use std::collections::BTreeMap;
use std::sync::Arc;

use bessmon::account::energy::{Measured, Observation, SiteAccount, SiteSetup};
use bessmon::account::report::Period;
use bessmon::account::tariff::Tariff;
use bessmon::acquire::profile::Role;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

const RATED_KW: f64 = 1000.0;

fn tariff() -> Arc<Tariff> {
    // Chongqing with a demand charge, so demand is computed too.
    let text = bessmon::bundled::tariff("cn-chongqing-ci-2025-02")
        .unwrap()
        .replacen(
            "\n[[seasons]]",
            "\ndemand_charge = { price_per_kw_month = 30.0 }\n\n[[seasons]]",
            1,
        );
    Arc::new(Tariff::parse(std::path::Path::new("cn-chongqing-ci-2025-02.toml"), &text).unwrap())
}

#[derive(Debug, Clone)]
struct Day {
    month: i8,
    /// Seconds between polls; divides an hour, so polls fall on band boundaries.
    poll_s: u32,
    /// Wh per count, and the register width.
    res_wh: u64,
    bits: u8,
    /// Battery flow per poll interval in counts: + discharge, - charge.
    flow: Vec<i64>,
    /// Site load per poll interval, in counts of the import counter.
    load: Vec<i64>,
    faults: Faults,
}

#[derive(Debug, Clone, Default)]
struct Faults {
    /// Poll index ranges whose readings never arrive.
    outages: Vec<(usize, usize)>,
    /// (poll, counter 0 charge / 1 discharge / 2 import): the register read 0 once.
    zeros: Vec<(usize, usize)>,
    /// (poll, counter, xor): a corrupted word.
    garbage: Vec<(usize, usize, u64)>,
    /// (poll, counter): zeroed by another master just before this poll.
    resets: Vec<(usize, usize)>,
    /// (poll, counter, counts): the register jumps while the battery is idle, and stays.
    jumps: Vec<(usize, usize, u64)>,
    /// Register values at the start of the day (near the top to wrap).
    starts: [u64; 3],
}

impl Faults {
    fn any(&self) -> bool {
        !(self.outages.is_empty()
            && self.zeros.is_empty()
            && self.garbage.is_empty()
            && self.resets.is_empty()
            && self.jumps.is_empty())
    }
}

fn day_strategy(faulty: bool) -> impl Strategy<Value = Day> {
    let shape = (
        1i8..=12,
        prop::sample::select(vec![5u32, 10, 15, 30, 60]),
        prop::sample::select(vec![(1u64, 32u8), (10, 32), (1000, 16)]),
    );
    shape.prop_flat_map(move |(month, poll_s, (res_wh, bits))| {
        let n = (86_400 / poll_s) as usize;
        let max_counts = (RATED_KW * 0.9 * poll_s as f64 / 3.6 / res_wh as f64).floor() as i64;
        // Runs of constant flow: (length in polls, level).
        let run = (
            1usize..400,
            prop_oneof![Just(0i64), -max_counts..=max_counts],
        );
        let runs = prop::collection::vec(run, 1..60);
        let load_max = (3000.0 * poll_s as f64 / 3.6 / res_wh as f64) as i64;
        let loads = prop::collection::vec((1usize..600, 0..=load_max), 1..30);
        let faults = if faulty {
            faults_strategy(n, res_wh, bits).boxed()
        } else {
            (0u64..1000)
                .prop_map(|s| Faults {
                    starts: [s, s * 7, s * 13],
                    ..Faults::default()
                })
                .boxed()
        };
        (runs, loads, faults).prop_map(move |(runs, loads, faults)| {
            let expand = |runs: &[(usize, i64)]| {
                let mut v: Vec<i64> = runs
                    .iter()
                    .flat_map(|&(len, level)| std::iter::repeat_n(level, len))
                    .take(n)
                    .collect();
                v.resize(n, 0);
                v
            };
            let mut flow = expand(&runs);
            // An idle jump happens while the battery is idle, around its poll.
            for &(p, _, _) in &faults.jumps {
                for f in flow
                    .iter_mut()
                    .take((p + 2).min(n))
                    .skip(p.saturating_sub(2))
                {
                    *f = 0;
                }
            }
            Day {
                month,
                poll_s,
                res_wh,
                bits,
                flow,
                load: expand(&loads),
                faults,
            }
        })
    })
}

fn faults_strategy(n: usize, res_wh: u64, bits: u8) -> impl Strategy<Value = Faults> {
    // The last hour is clean so nothing is left held back at the end.
    let last = n - n / 24;
    let poll = 10..last;
    let top = (1u64 << bits) - 1;
    (
        prop::collection::vec((poll.clone(), 1usize..(n / 6)), 0..4),
        prop::collection::vec((poll.clone(), 0usize..3), 0..4),
        prop::collection::vec((poll.clone(), 0usize..3, 1u64..0xFF), 0..4),
        prop::collection::vec((poll.clone(), 0usize..3), 0..2),
        prop::collection::vec((poll, 0usize..2, 50u64..500), 0..3),
        prop::array::uniform3(0u64..20_000),
    )
        .prop_map(move |(outages, zeros, garbage, resets, jumps, near_top)| {
            let mut used: Vec<usize> = Vec::new();
            let mut free = |p: usize| {
                // One fault at a time: each needs clean readings around it to be told apart.
                let ok = used.iter().all(|&u| u.abs_diff(p) > 6);
                if ok {
                    used.push(p);
                }
                ok
            };
            let mut f = Faults {
                starts: near_top.map(|d| top.saturating_sub(d)),
                ..Faults::default()
            };
            for (p, c) in resets {
                if free(p) {
                    f.resets.push((p, c));
                }
            }
            for (p, c, kwh) in jumps {
                if free(p) {
                    f.jumps.push((p, c, kwh * 1000 / res_wh));
                }
            }
            for (p, c) in zeros {
                if free(p) {
                    f.zeros.push((p, c));
                }
            }
            for (p, c, x) in garbage {
                if free(p) {
                    // A word's worth: the top of a 16-bit register, the high word of a 32-bit one.
                    let xor = if bits == 16 { 0x8000 } else { (x | 0x80) << 16 };
                    f.garbage.push((p, c, xor));
                }
            }
            for (p, len) in outages {
                let end = (p + len).min(last - 1);
                if used.iter().all(|&u| u + 6 < p || u > end + 6) {
                    f.outages.push((p, end));
                }
            }
            f
        })
}

/// What the oracle knows of a run.
#[derive(Debug, Default)]
struct Truth {
    /// (band, kind 0 charge / 1 discharge) -> mWh.
    energy: BTreeMap<(String, usize), i64>,
    /// The same allowance per band and kind for intervals split by time.
    split_allowance: BTreeMap<(String, usize), i64>,
    /// Movement the counters showed, mWh (readings that arrived clean).
    movement_mwh: i64,
    /// Highest true 15-minute import, kW.
    peak_kw: f64,
}

struct Run {
    obs: Vec<Vec<Observation>>,
    truth: Truth,
    step_mwh: i64,
    max_attribution_gap: SignedDuration,
}

fn band_of(t: &Tariff, at: Timestamp) -> String {
    let local = at.to_zoned(t.tz.clone());
    let (spans, _) = t.day(local.date());
    let m = local.hour() as u16 * 60 + local.minute() as u16;
    let (_, _, band, _) = spans
        .iter()
        .find(|(a, b, _, _)| *a <= m && m < *b)
        .expect("the day plan covers every minute");
    t.bands[*band as usize].clone()
}

fn simulate(d: &Day, t: &Tariff) -> Run {
    let n = d.flow.len();
    let start = jiff::civil::date(2025, d.month, 10)
        .to_zoned(t.tz.clone())
        .unwrap()
        .timestamp();
    let at = |i: usize| start + SignedDuration::from_secs(i as i64 * d.poll_s as i64);
    let step_mwh = (d.res_wh * 1000) as i64;
    let mask = (1u64 << d.bits) - 1;
    // True cumulative counts of charge, discharge, import at each poll.
    let mut cum = vec![[0u64; 3]; n + 1];
    for i in 0..n {
        let f = d.flow[i];
        let import = (d.load[i] - f).max(0) as u64;
        cum[i + 1] = [
            cum[i][0] + (-f).max(0) as u64,
            cum[i][1] + f.max(0) as u64,
            cum[i][2] + import,
        ];
    }
    let mut truth = Truth::default();
    let band_at: Vec<String> = (0..n).map(|i| band_of(t, at(i))).collect();
    for (pair, band) in cum.windows(2).zip(&band_at) {
        for (k, (after, before)) in pair[1].iter().zip(&pair[0]).take(2).enumerate() {
            let e = (after - before) as i64 * step_mwh;
            *truth.energy.entry((band.clone(), k)).or_default() += e;
        }
    }
    let per_window = (900 / d.poll_s) as usize;
    for w in cum
        .chunks(per_window)
        .zip(cum.iter().skip(per_window).step_by(per_window))
    {
        let kwh = (w.1[2] - w.0[0][2]) as f64 * d.res_wh as f64 / 1000.0;
        truth.peak_kw = truth.peak_kw.max(kwh * 4.0);
    }
    // The registers: offsets from resets and jumps on top of the true counts.
    let mut offset = d.faults.starts.map(|s| s as i128);
    let mut reset_pending = [false; 3];
    let mut last_clean: [Option<(usize, u64)>; 3] = [None; 3];
    let attribution = SignedDuration::from_secs((3 * d.poll_s as i64).max(60));
    let mut obs = Vec::with_capacity(n + 1);
    // A counter that was reset and sits at 0 until the battery moves again: a
    // leap from there (a jump, a corrupted word) that lands within reach of its
    // old value reads exactly like a reboot's zeros followed by the old course,
    // which nothing can tell apart. The oracle puts no second fault there.
    let sitting = |c: usize, i: usize| {
        d.faults
            .resets
            .iter()
            .any(|&(rp, rc)| rc == c && rp <= i && cum[rp][c] == cum[i][c])
    };
    for i in 0..=n {
        for &(p, c) in &d.faults.resets {
            // A reset from just below the register's top reads as a rollover:
            // nothing can tell them apart, so the oracle resets lower down.
            // Nor from a value the next poll's counting could pass, or it reads as a glitch.
            let before = (cum[i][c] as i128 + offset[c]) & mask as i128;
            let max_poll = (RATED_KW * d.poll_s as f64 / 3.6 / d.res_wh as f64) as i128;
            if p == i && before < (mask / 4 * 3) as i128 && before > 4 * max_poll {
                offset[c] = -(cum[i][c] as i128);
                reset_pending[c] = true;
            }
        }
        for &(p, c, counts) in &d.faults.jumps {
            // A jump across the register's top is a decrease on the wire, which
            // nothing can tell from a reset: the oracle keeps to jumps that show.
            let before = cum[i][c] as i128 + offset[c];
            if p == i && !sitting(c, i) && (before & mask as i128) + counts as i128 <= mask as i128
            {
                offset[c] += counts as i128;
            }
        }
        let silent = d.faults.outages.iter().any(|&(a, b)| a <= i && i <= b);
        if silent {
            continue;
        }
        let mut row = Vec::new();
        // Power at a poll: the flow of the interval it starts (the last: the one it ends).
        let f = d.flow[i.min(n - 1)];
        let kw = f as f64 * d.res_wh as f64 / 1000.0 * 3600.0 / d.poll_s as f64;
        row.push(Observation {
            at: at(i),
            role: Role::BatteryPower,
            reading: Measured::Value(Some(kw)),
        });
        for (c, role) in [
            Role::ChargeEnergyTotal,
            Role::DischargeEnergyTotal,
            Role::GridImportEnergyTotal,
        ]
        .into_iter()
        .enumerate()
        {
            let value = ((cum[i][c] as i128 + offset[c]) as u64) & mask;
            let mut raw = value;
            let mut clean = true;
            let second = sitting(c, i);
            if d.faults.zeros.contains(&(i, c)) && !second {
                raw = 0;
                clean = false;
            }
            if let Some(&(_, _, x)) = d
                .faults
                .garbage
                .iter()
                .find(|g| g.0 == i && g.1 == c && !second)
            {
                raw ^= x;
                clean = false;
            }
            if clean {
                if let Some((j, prev)) = last_clean[c] {
                    let reset = std::mem::take(&mut reset_pending[c]);
                    let moved = if reset {
                        value
                    } else {
                        value.wrapping_sub(prev) & mask
                    };
                    if c < 2 {
                        truth.movement_mwh += moved as i64 * step_mwh;
                        // An interval short enough to be split by time across a
                        // boundary may put up to its whole energy in either band.
                        if at(j).duration_until(at(i)) <= attribution
                            && band_at[j..i].iter().any(|b| *b != band_at[j])
                        {
                            let e = (cum[i][c] - cum[j][c]) as i64 * step_mwh;
                            for b in &band_at[j..i] {
                                *truth.split_allowance.entry((b.clone(), c)).or_default() += e;
                            }
                        }
                    }
                }
                reset_pending[c] = false;
                last_clean[c] = Some((i, value));
            }
            row.push(Observation {
                at: at(i),
                role,
                reading: Measured::Counter {
                    raw,
                    bits: d.bits,
                    mwh_per_raw: step_mwh as f64,
                    step: 1,
                },
            });
        }
        obs.push(row);
    }
    Run {
        obs,
        truth,
        step_mwh,
        max_attribution_gap: attribution,
    }
}

fn account(d: &Day, t: &Arc<Tariff>, run: &Run) -> SiteAccount {
    let mut s = SiteSetup::new("prop", t.clone(), 2000.0, RATED_KW);
    s.max_gap = SignedDuration::from_secs(3 * d.poll_s as i64);
    s.max_attribution_gap = run.max_attribution_gap;
    s.max_grid_kw = 10_000.0;
    s.battery_counters = true;
    s.import_counter = true;
    s.battery_power = true;
    let mut acc = SiteAccount::new(s, Default::default(), BTreeMap::new(), BTreeMap::new());
    for row in &run.obs {
        acc.observe_all(row);
    }
    acc.finish();
    acc
}

fn check(d: &Day, faulty: bool) -> Result<(), TestCaseError> {
    let t = tariff();
    let run = simulate(d, &t);
    let mut acc = account(d, &t, &run);
    let r = acc.report(Period::Lifetime);
    let kinds = |b: &bessmon::account::report::Totals| [b.charge_kwh, b.discharge_kwh];
    let mwh = |kwh: f64| (kwh * 1e6).round() as i64;
    for (band, totals) in &r.bands {
        for (k, kwh) in kinds(totals).into_iter().enumerate() {
            let booked = mwh(kwh);
            let truth = run
                .truth
                .energy
                .get(&(band.clone(), k))
                .copied()
                .unwrap_or(0);
            let allowance = run
                .truth
                .split_allowance
                .get(&(band.clone(), k))
                .copied()
                .unwrap_or(0);
            prop_assert!(
                booked <= truth + allowance + run.step_mwh,
                "{band} kind {k}: booked {booked} mWh, truth {truth}, allowance {allowance}; faults {:?}; log {:#?}",
                d.faults,
                acc.messages
            );
            if !faulty {
                prop_assert!(
                    (booked - truth).abs() <= run.step_mwh,
                    "{band} kind {k}: booked {booked} mWh, truth {truth} with no faults"
                );
            }
        }
    }
    let booked = mwh(r.total.charge_kwh) + mwh(r.total.discharge_kwh);
    let unattributed = mwh(r.unattributed.charge_kwh) + mwh(r.unattributed.discharge_kwh);
    let quarantined = mwh(r.quarantined_kwh);
    // Only the battery counters jump (the import counter's faults are glitches
    // and resets), so every quarantined count is theirs.
    prop_assert!(
        booked + unattributed + quarantined == run.truth.movement_mwh,
        "booked {booked} + unattributed {unattributed} + quarantined {quarantined} != movement {}; faults {:?}; log {:#?}",
        run.truth.movement_mwh,
        d.faults,
        acc.messages
    );
    if !faulty {
        prop_assert_eq!(unattributed, 0);
        prop_assert_eq!(quarantined, 0);
        let d = &r.demand[0];
        let peak = d.max_kw.expect("every window measured");
        let step_kw = run.step_mwh as f64 / 1e6 * 4.0;
        prop_assert!(
            (peak - run.truth.peak_kw).abs() <= step_kw,
            "demand {peak} kW, truth {} kW",
            run.truth.peak_kw
        );
    } else if let Some(peak) = r.demand.first().and_then(|d| d.max_kw) {
        // A window is counted only when measured throughout; short gaps split by
        // time may move a poll's energy between neighbouring windows.
        let slack = RATED_KW.max(3000.0) * 3.0 * d.poll_s as f64 / 900.0 * 2.0;
        prop_assert!(
            peak <= run.truth.peak_kw + slack,
            "demand {peak} kW, truth {}",
            run.truth.peak_kw
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn with_no_faults_the_books_are_the_truth(d in day_strategy(false)) {
        check(&d, false)?;
    }

    #[test]
    fn under_faults_nothing_is_invented_and_every_count_is_accounted_for(d in day_strategy(true)) {
        prop_assume!(d.faults.any());
        check(&d, true)?;
    }
}
