//! `bessmon commission -c FILE --site ID`: watch a site's devices for a
//! while with their profiles and judge the maps: the battery power's sign
//! against the grid meter, which counter moves while charging, counters'
//! energy against power, their resolution, and each request's round trip.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{find_site, load_config, Failure, Outcome};
use crate::acquire::commission::{analyse, Snapshot, Verdict};
use crate::acquire::decode::{decode_reply, Decoded};
use crate::acquire::transport::{self, CallError};
use crate::role::Role;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: super::SiteArg,
    /// How long to watch (watch while the battery starts or stops, so
    /// power changes and the counters move).
    #[arg(long, default_value = "60s")]
    pub watch: String,
}

#[derive(Default)]
struct Trips {
    n: u32,
    failed: u32,
    total: Duration,
    max: Duration,
}

pub async fn run(a: Args) -> Outcome {
    let watch = crate::duration::parse_duration(&a.watch)
        .map_err(|m| Failure::input(format!("--watch: {m}")))?;
    let v = load_config(a.at.config.as_ref())?;
    let site = find_site(&v, &a.at.site)?;
    let mut conns = BTreeMap::new();
    for d in &site.devices {
        if let std::collections::btree_map::Entry::Vacant(slot) = conns.entry(d.transport.key()) {
            let ctx = transport::connect(&d.transport, d.timeout.max(Duration::from_secs(1)))
                .await
                .map_err(|e| Failure::runtime(format!("{}: {e}", d.transport.key())))?;
            slot.insert(ctx);
        }
    }
    println!(
        "watching site {} ({} devices) for {watch:?}, every {:?}",
        site.id,
        site.devices.len(),
        site.poll_interval
    );
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut trips: BTreeMap<String, Trips> = BTreeMap::new();
    while started.elapsed() < watch {
        let cycle = Instant::now();
        let mut snap = Snapshot {
            at_s: started.elapsed().as_secs_f64(),
            ..Default::default()
        };
        for d in &site.devices {
            let key = d.transport.key();
            let Some(ctx) = conns.get_mut(&key) else {
                continue;
            };
            let t = trips.entry(d.id.to_string()).or_default();
            for req in d.profile.plan.requests(true) {
                let sent = Instant::now();
                match transport::read(ctx, d.unit, req, d.timeout).await {
                    Err(e) => {
                        t.failed += 1;
                        if !matches!(e, CallError::Exception(_)) {
                            if let Ok(c) = transport::connect(
                                &d.transport,
                                d.timeout.max(Duration::from_secs(1)),
                            )
                            .await
                            {
                                *ctx = c;
                            }
                        }
                    }
                    Ok(reply) => {
                        let rt = sent.elapsed();
                        t.n += 1;
                        t.total += rt;
                        t.max = t.max.max(rt);
                        decode_reply(&d.profile, req, &reply, |i, dec| {
                            let p = &d.profile.points[i];
                            let (
                                Some(role),
                                Decoded::Value {
                                    value, valid: true, ..
                                },
                            ) = (p.role, dec)
                            else {
                                return;
                            };
                            let Some(x) = value.as_f64() else { return };
                            match role {
                                Role::BatteryPower => {
                                    snap.battery_kw = Some(p.sign.discharge_positive(x))
                                }
                                Role::GridPower => snap.grid_kw = Some(x),
                                Role::ChargeEnergyTotal => snap.charge_kwh = Some(x),
                                Role::DischargeEnergyTotal => snap.discharge_kwh = Some(x),
                                _ => {}
                            }
                        });
                    }
                }
            }
        }
        samples.push(snap);
        if let Some(rest) = site.poll_interval.checked_sub(cycle.elapsed()) {
            tokio::time::sleep(rest.min(watch.saturating_sub(started.elapsed()))).await;
        }
    }
    println!(
        "\n{:<12} {:>9} {:>7} {:>12} {:>12}",
        "device", "requests", "failed", "mean ms", "max ms"
    );
    for (dev, t) in &trips {
        let mean = if t.n > 0 {
            t.total.as_secs_f64() * 1e3 / t.n as f64
        } else {
            0.0
        };
        println!(
            "{dev:<12} {:>9} {:>7} {mean:>12.2} {:>12.2}",
            t.n,
            t.failed,
            t.max.as_secs_f64() * 1e3
        );
    }
    println!("\n{:<24} {:<8} detail", "role", "verdict");
    let findings = analyse(&samples, site.rated_power_kw);
    let mut wrong = 0;
    for f in &findings {
        let v = match f.verdict {
            Verdict::Ok => "ok",
            Verdict::Wrong => {
                wrong += 1;
                "WRONG"
            }
            Verdict::Unknown => "unknown",
        };
        println!("{:<24} {v:<8} {}", f.what, f.detail);
    }
    if wrong > 0 {
        return Err(Failure::input(format!(
            "site {}: {wrong} role(s) look wrong; fix the profiles before trusting the ledger",
            site.id
        )));
    }
    Ok(())
}
