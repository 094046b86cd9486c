//! Judging a site's register maps from a minute of watching it: does battery
//! power count discharge as positive (the grid meter must move the other
//! way when it changes), does the counter that moves while charging carry
//! the charge role, do the counters' energies match the power's, and how
//! finely do they count. A swapped pair of counters or an inverted sign
//! otherwise inverts the ledger silently.
use serde::Serialize;

/// The site's quantities at one moment, in bessmon's conventions as the
/// profiles decode them (battery power discharge-positive, grid power
/// import-positive, counters in kWh).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub at_s: f64,
    pub battery_kw: Option<f64>,
    pub grid_kw: Option<f64>,
    pub charge_kwh: Option<f64>,
    pub discharge_kwh: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Wrong,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub what: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

fn finding(what: &'static str, verdict: Verdict, detail: String) -> Finding {
    Finding {
        what,
        verdict,
        detail,
    }
}

/// Battery power is "moving" beyond this share of the rating.
const MOVING: f64 = 0.02;

pub fn analyse(samples: &[Snapshot], rated_kw: f64) -> Vec<Finding> {
    let mut out = Vec::new();
    let pairs: Vec<(&Snapshot, &Snapshot)> = samples.windows(2).map(|w| (&w[0], &w[1])).collect();

    // Sign: grid = load - battery, so their changes run opposite.
    let (mut pg, mut pp, mut gg, mut range) = (0.0, 0.0, 0.0, (f64::MAX, f64::MIN));
    for (a, b) in &pairs {
        if let (Some(p0), Some(p1), Some(g0), Some(g1)) =
            (a.battery_kw, b.battery_kw, a.grid_kw, b.grid_kw)
        {
            let (dp, dg) = (p1 - p0, g1 - g0);
            pg += dp * dg;
            pp += dp * dp;
            gg += dg * dg;
            range = (range.0.min(p0.min(p1)), range.1.max(p0.max(p1)));
        }
    }
    let moved = range.1 - range.0;
    let mut sign_flip = 1.0;
    let sign = if pp == 0.0 || gg == 0.0 || moved < 0.1 * rated_kw {
        finding(
            "battery_power sign",
            Verdict::Unknown,
            if samples.iter().all(|s| s.grid_kw.is_none()) {
                "no grid meter: the sign cannot be checked against it".into()
            } else {
                format!(
                    "battery power moved only {moved:.1} kW while watched; watch while it starts or stops charging"
                )
            },
        )
    } else {
        let corr = pg / (pp * gg).sqrt();
        if corr < -0.5 {
            finding(
                "battery_power sign",
                Verdict::Ok,
                format!("grid power moves against battery power (correlation {corr:.2}): discharge counts positive"),
            )
        } else if corr > 0.5 {
            sign_flip = -1.0;
            finding(
                "battery_power sign",
                Verdict::Wrong,
                format!(
                    "grid power moves with battery power (correlation {corr:.2}): the profile reads charging as discharge; flip the point's sign"
                ),
            )
        } else {
            finding(
                "battery_power sign",
                Verdict::Unknown,
                format!("grid and battery power are not clearly related (correlation {corr:.2}): the load changed too"),
            )
        }
    };
    out.push(sign);

    // Which counter moves while charging, and by how much against power.
    let mut moved_while = [[0.0f64; 2]; 2]; // [charging|discharging][charge|discharge counter]
    let mut power_energy = [0.0f64; 2];
    let mut resolution = [f64::MAX; 2];
    for (a, b) in &pairs {
        let counters = [
            a.charge_kwh.zip(b.charge_kwh).map(|(x, y)| y - x),
            a.discharge_kwh.zip(b.discharge_kwh).map(|(x, y)| y - x),
        ];
        for (k, d) in counters.iter().enumerate() {
            if let Some(d) = d.filter(|d| *d > 0.0) {
                resolution[k] = resolution[k].min(d);
            }
        }
        let (Some(p0), Some(p1)) = (a.battery_kw, b.battery_kw) else {
            continue;
        };
        let p = sign_flip * (p0 + p1) / 2.0;
        if p.abs() < MOVING * rated_kw {
            continue;
        }
        let state = usize::from(p > 0.0);
        for (k, d) in counters.iter().enumerate() {
            moved_while[state][k] += d.unwrap_or(0.0).max(0.0);
        }
        power_energy[state] += p.abs() * (b.at_s - a.at_s) / 3600.0;
    }
    let names = ["charge_energy_total", "discharge_energy_total"];
    let states = ["charging", "discharging"];
    let mut any = false;
    for (state, own) in [(0usize, 0usize), (1, 1)] {
        let (own_moved, other_moved) = (moved_while[state][own], moved_while[state][1 - own]);
        if power_energy[state] == 0.0 {
            continue;
        }
        any = true;
        let f = if own_moved == 0.0 && other_moved > 0.0 {
            finding(
                names[own],
                Verdict::Wrong,
                format!(
                    "while {} only {} moved ({other_moved:.3} kWh): the charge and discharge counters are swapped",
                    states[state],
                    names[1 - own]
                ),
            )
        } else if own_moved == 0.0 {
            finding(
                names[own],
                Verdict::Unknown,
                format!(
                    "did not move while {} ({:.3} kWh by power)",
                    states[state], power_energy[state]
                ),
            )
        } else {
            let ratio = own_moved / power_energy[state];
            if (0.5..=2.0).contains(&ratio) {
                finding(
                    names[own],
                    Verdict::Ok,
                    format!(
                        "moved {own_moved:.3} kWh while {} ({:.3} kWh by power, ratio {ratio:.2})",
                        states[state], power_energy[state]
                    ),
                )
            } else {
                finding(
                    names[own],
                    Verdict::Wrong,
                    format!(
                        "moved {own_moved:.3} kWh while {} but power says {:.3} kWh (ratio {ratio:.3}): its scale looks wrong",
                        states[state], power_energy[state]
                    ),
                )
            }
        };
        out.push(f);
    }
    if !any {
        out.push(finding(
            "counters",
            Verdict::Unknown,
            "the battery neither charged nor discharged while watched".into(),
        ));
    }
    for (k, name) in names.iter().enumerate() {
        if resolution[k] < f64::MAX {
            out.push(finding(
                "resolution",
                Verdict::Ok,
                format!(
                    "{name} counts in steps of {:.4} kWh or finer",
                    resolution[k]
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A site of 500 kW load; the battery discharges at 800 kW for a minute,
    /// then charges at 600 kW; samples every 2 s.
    fn watch(sign: f64, swapped: bool) -> Vec<Snapshot> {
        let (mut c, mut d) = (100.0, 200.0);
        (0..60)
            .map(|i| {
                let p = if i < 30 { 800.0 } else { -600.0 };
                let s = Snapshot {
                    at_s: i as f64 * 2.0,
                    battery_kw: Some(sign * p),
                    grid_kw: Some(500.0 - p),
                    charge_kwh: Some(if swapped { d } else { c }),
                    discharge_kwh: Some(if swapped { c } else { d }),
                };
                if p > 0.0 {
                    d += p * 2.0 / 3600.0;
                } else {
                    c += -p * 2.0 / 3600.0;
                }
                s
            })
            .collect()
    }

    fn verdict(f: &[Finding], what: &str) -> Verdict {
        f.iter()
            .find(|x| x.what == what)
            .map(|x| x.verdict)
            .unwrap_or(Verdict::Unknown)
    }

    #[test]
    fn a_right_map_passes_and_each_mistake_is_named() {
        let ok = analyse(&watch(1.0, false), 1000.0);
        assert_eq!(verdict(&ok, "battery_power sign"), Verdict::Ok, "{ok:#?}");
        assert_eq!(verdict(&ok, "charge_energy_total"), Verdict::Ok, "{ok:#?}");
        assert_eq!(
            verdict(&ok, "discharge_energy_total"),
            Verdict::Ok,
            "{ok:#?}"
        );

        let flipped = analyse(&watch(-1.0, false), 1000.0);
        assert_eq!(
            verdict(&flipped, "battery_power sign"),
            Verdict::Wrong,
            "{flipped:#?}"
        );
        // The counters are judged by the corrected sign: they are right.
        assert_eq!(
            verdict(&flipped, "charge_energy_total"),
            Verdict::Ok,
            "{flipped:#?}"
        );

        let swapped = analyse(&watch(1.0, true), 1000.0);
        assert_eq!(verdict(&swapped, "battery_power sign"), Verdict::Ok);
        let f = swapped
            .iter()
            .find(|x| x.what == "charge_energy_total")
            .unwrap();
        assert_eq!(f.verdict, Verdict::Wrong);
        assert!(f.detail.contains("swapped"), "{f:?}");
    }

    #[test]
    fn an_idle_battery_or_no_grid_meter_leaves_the_sign_unknown() {
        let mut w = watch(1.0, false);
        for s in &mut w {
            s.grid_kw = None;
        }
        let f = analyse(&w, 1000.0);
        assert_eq!(verdict(&f, "battery_power sign"), Verdict::Unknown);
        assert!(f[0].detail.contains("no grid meter"), "{f:?}");
    }
}
