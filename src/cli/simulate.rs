//! `bessmon simulate`: the BESS simulator as a standalone Modbus TCP server.
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::{Failure, Outcome};
use crate::clock::{ScaledClock, SharedClock};
use crate::sim::{self, SiteParams};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address of site 0; site k listens on port + k (port 0: ephemeral ports, printed).
    #[arg(long, default_value = "127.0.0.1:5020")]
    pub listen: SocketAddr,
    #[arg(long, default_value_t = 1)]
    pub sites: usize,
    /// Simulated time runs this many times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Simulated start time (RFC 3339); default now.
    #[arg(long)]
    pub start: Option<Timestamp>,
    /// Tariffs whose bands the sites' schedules follow (ids, given to sites in turn).
    #[arg(long, value_delimiter = ',', default_value = "cn-chongqing-ci-2025-02")]
    pub tariff: Vec<String>,
    /// Start every energy counter at this many Wh (exercise 32-bit wrap-around).
    #[arg(long, default_value_t = 0)]
    pub counter_offset_wh: u64,
    /// Fault: delay every reply by this many milliseconds...
    #[arg(long, default_value_t = 0)]
    pub slow_ms: u64,
    /// ...for this unit only (0 = all units).
    #[arg(long, default_value_t = 0)]
    pub slow_unit: u8,
    /// Fault: this unit never answers.
    #[arg(long, default_value_t = 0)]
    pub silent_unit: u8,
    /// Fault: answer this unit (0 = all) with --exception-code.
    #[arg(long, default_value_t = 0)]
    pub exception_unit: u8,
    #[arg(long, default_value_t = 0)]
    pub exception_code: u8,
    /// Fault: close the connection after every N-th request.
    #[arg(long, default_value_t = 0)]
    pub drop_every: u32,
    /// Fault: corrupt one register in every N-th reply.
    #[arg(long, default_value_t = 0)]
    pub garbage_every: u32,
    /// Fault: zero the PCS energy counters after this many real seconds.
    #[arg(long)]
    pub reset_counters_after: Option<f64>,
    /// Fault: the meter's clock runs this far ahead (`10m`) or behind
    /// (`-10m`), so its per-rate registers switch rates off the tariff's boundaries.
    #[arg(long, allow_hyphen_values = true)]
    pub meter_clock_offset: Option<String>,
    /// Present other register maps: `pcs=ID,bms=ID,meter=ID` (any of the
    /// three; values come from the physics by role, encoded by the profile).
    #[arg(long, value_delimiter = ',')]
    pub profile: Vec<String>,
    /// Where --profile finds profiles that are not bundled.
    #[arg(long)]
    pub profile_dir: Vec<std::path::PathBuf>,
    /// Present the PCS, BMS and meter as SunSpec devices (models 1, 103, 701;
    /// 1, 802, 713; 1, 203 from base 40000), for `discover` and SunSpec profiles.
    #[arg(long)]
    pub sunspec: bool,
    /// A generic register server for load tests of any collector: every unit
    /// id answers every address of every table, each register a function of
    /// its address and the second. No physics, no device image per request.
    #[arg(long, conflicts_with_all = ["sunspec", "profile"])]
    pub load: bool,
}

/// The simulator's profiles with `--profile unit=ID` choices applied.
fn profiles(
    choices: &[String],
    dirs: &[std::path::PathBuf],
    sunspec: bool,
) -> Result<sim::SimProfiles, Failure> {
    let mut out = if sunspec {
        sim::SimProfiles::sunspec()
    } else {
        sim::SimProfiles::bundled()
    };
    let catalog = crate::acquire::profile::ProfileCatalog::new(dirs);
    for c in choices {
        let (unit, id) = c.split_once('=').ok_or_else(|| {
            Failure::input(format!("--profile {c}: write pcs=ID, bms=ID or meter=ID"))
        })?;
        let p = match catalog.load(id) {
            Some(Ok(p)) => p,
            Some(Err(e)) => return Err(Failure::invalid(&e)),
            None => {
                return Err(Failure::input(format!(
                    "--profile {c}: no profile `{id}` bundled or in {dirs:?}"
                )))
            }
        };
        match unit {
            "pcs" => out.pcs = p,
            "bms" => out.bms = p,
            "meter" => out.meter = p,
            _ => {
                return Err(Failure::input(format!(
                    "--profile {c}: `{unit}` is not pcs, bms or meter"
                )))
            }
        }
    }
    Ok(out)
}

fn signed_duration(s: &str) -> Result<jiff::SignedDuration, Failure> {
    let (neg, body) = s.strip_prefix('-').map_or((false, s), |b| (true, b));
    let d = crate::duration::parse_duration(body)
        .map_err(|m| Failure::input(format!("--meter-clock-offset: {m}")))?;
    let d = jiff::SignedDuration::try_from(d)
        .map_err(|e| Failure::input(format!("--meter-clock-offset: {e}")))?;
    Ok(if neg { -d } else { d })
}

pub async fn run(a: Args) -> Outcome {
    if a.sites == 0 {
        return Err(Failure::input("--sites must be at least 1"));
    }
    if !(a.speed.is_finite() && a.speed > 0.0) {
        return Err(Failure::input("--speed must be a positive number"));
    }
    let cancel = CancellationToken::new();
    crate::shutdown::cancel_on_signal(cancel.clone());
    let clock: SharedClock = Arc::new(ScaledClock::new(
        a.start.unwrap_or_else(Timestamp::now),
        a.speed,
    ));
    let catalog = crate::account::tariff::TariffCatalog::new(&[]);
    for t in &a.tariff {
        match catalog.load(t) {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(Failure::invalid(&e)),
            None => {
                return Err(Failure::input(format!(
                    "--tariff {t}: no bundled tariff has that id"
                )))
            }
        }
    }
    let ids: Vec<&str> = a.tariff.iter().map(String::as_str).collect();
    let offset = a
        .meter_clock_offset
        .as_deref()
        .map(signed_duration)
        .transpose()?
        .unwrap_or(jiff::SignedDuration::ZERO);
    let params = super::demo::sim_params(a.sites, &ids)
        .into_iter()
        .map(|p| SiteParams {
            counter_offset_wh: a.counter_offset_wh,
            meter_clock_offset: offset,
            ..p
        })
        .collect();
    let sim = sim::start_with(
        a.listen.ip(),
        a.listen.port(),
        params,
        clock,
        cancel.clone(),
        sim::SimProfiles {
            generic: a.load,
            ..profiles(&a.profile, &a.profile_dir, a.sunspec)?
        },
    )
    .await
    .map_err(|e| Failure::runtime(e.to_string()))?;
    for s in &sim.sites {
        let f = &s.faults;
        f.set_slow(a.slow_unit, a.slow_ms);
        f.silent_unit.store(a.silent_unit, Relaxed);
        f.exception_unit.store(a.exception_unit, Relaxed);
        f.exception_code.store(a.exception_code, Relaxed);
        f.drop_every.store(a.drop_every, Relaxed);
        f.garbage_every.store(a.garbage_every, Relaxed);
    }
    {
        let mut out = std::io::stdout().lock();
        for (k, addr) in sim.addrs.iter().enumerate() {
            let _ = writeln!(
                out,
                "site {k} listening on {addr} (units 1 PCS, 2 BMS, 3 meter)"
            );
        }
        let _ = out.flush();
    }
    if let Some(secs) = a.reset_counters_after {
        let sites = sim.sites.clone();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = c.cancelled() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs_f64(secs.max(0.0))) => {
                    for s in &sites { s.faults.reset_counters.store(true, Relaxed); }
                    tracing::info!("counters reset on every site");
                }
            }
        });
    }
    cancel.cancelled().await;
    let mut tasks = sim.tasks;
    while tasks.join_next().await.is_some() {}
    Ok(())
}
