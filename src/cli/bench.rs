//! `bessmon bench poll`: one daemon polling many simulated sites, measured.
//! The simulator runs as a child process, so its CPU is not counted as ours;
//! both are reported.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Failure, Outcome};
use crate::acquire;
use crate::clock::{SharedClock, SystemClock};
use crate::config::validate::validate;
use crate::config::{load, ConfigSource};
use crate::duration::parse_duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Spool a broker outage's worth of messages, then drain them to a local Mosquitto.
    Mqtt {
        #[arg(long, default_value_t = 1000)]
        sites: usize,
        /// Seconds of outage to spool.
        #[arg(long, default_value_t = 600)]
        outage: u64,
    },
    /// Spool an InfluxDB outage's worth of points, then drain them to a local VictoriaMetrics.
    Influx {
        #[arg(long, default_value_t = 1000)]
        sites: usize,
        /// Seconds of outage to spool.
        #[arg(long, default_value_t = 600)]
        outage: u64,
    },
    /// Replay a year of 1 s samples for one site through the accounting engine.
    Replay {
        /// Seconds of history (default: the 31,536,000 of 2025).
        #[arg(long, default_value_t = 365 * 86400)]
        seconds: u64,
    },
    /// Poll N simulated sites (3 devices each) at a series of intervals.
    Poll {
        #[arg(long, default_value_t = 1000)]
        sites: usize,
        /// Measured seconds per interval (after a 3 s warm-up).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Poll intervals to run, the first being the target load.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1s,200ms,100ms,75ms,50ms"
        )]
        intervals: Vec<String>,
        /// Run the whole daemon (accounting, ledger, HTTP live state), not only the pollers.
        #[arg(long)]
        full: bool,
        /// With --full: also publish to this MQTT broker (mqtt://host:port).
        #[arg(long, requires = "full")]
        mqtt: Option<String>,
        /// With --full: also write to this InfluxDB v2 API (http://host:port[/prefix]).
        #[arg(long, requires = "full")]
        influxdb: Option<String>,
    },
}

pub(super) struct Guard(pub Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|x| x.parse().ok()))
        })
        .unwrap_or(0)
}

pub fn run(a: Args) -> Outcome {
    match a.what {
        What::Poll {
            sites,
            seconds,
            intervals,
            full,
            mqtt,
            influxdb,
        } => {
            let sinks = crate::cli::demo::sinks_toml(mqtt.as_deref(), influxdb.as_deref());
            poll(sites, seconds, intervals, full.then_some(sinks))
        }
        What::Replay { seconds } => {
            replay(seconds);
            Ok(())
        }
        What::Mqtt { sites, outage } => super::bench_outage::mqtt(sites, outage),
        What::Influx { sites, outage } => super::bench_outage::influx(sites, outage),
    }
}

/// The oracle's two cycles a day as PCS counters in whole Wh, one sample a second.
fn replay(seconds: u64) {
    use crate::account::energy::{Measured, Observation, SiteAccount, SiteSetup};
    use crate::account::tariff::TariffCatalog;
    use crate::role::Role;
    use jiff::SignedDuration;
    let tariff = TariffCatalog::new(&[])
        .load("cn-chongqing-ci-2025-02")
        .and_then(Result::ok)
        .expect("bundled tariff");
    let mut setup = SiteSetup::new("bench", tariff, 2000.0, 1000.0);
    setup.battery_counters = true;
    let mut acc = SiteAccount::new(
        setup,
        Default::default(),
        Default::default(),
        Default::default(),
    );
    let start: jiff::Timestamp = "2024-12-31T16:00:00Z".parse().expect("literal");
    let (mut c, mut d) = (0.0f64, 0.0f64);
    let (inn, out) = (2000.0e3 / 0.9, 2000.0e3); // Wh
                                                 // Cycle 1 discharges in the critical band (12:00-14:00) in Jan, Jul, Aug and Dec.
    let first: jiff::civil::Date = "2025-01-01".parse().expect("literal");
    let critical: Vec<bool> = (0..=seconds / 86400)
        .map(|d| {
            let date = first
                .checked_add(jiff::Span::new().days(d as i64))
                .unwrap_or(first);
            matches!(date.month(), 1 | 7 | 8 | 12)
        })
        .collect();
    let started = Instant::now();
    for i in 0..seconds {
        let at = start + SignedDuration::from_secs(i as i64);
        let m = (i / 60) % 1440;
        let shift = if critical[(i / 86400) as usize] {
            60
        } else {
            0
        };
        for (role, wh) in [
            (Role::ChargeEnergyTotal, c),
            (Role::DischargeEnergyTotal, d),
        ] {
            let reading = Measured::Counter {
                raw: wh as u64 & 0xFFFF_FFFF,
                bits: 32,
                mwh_per_raw: 1000.0,
                step: 1,
            };
            acc.observe(&Observation { at, role, reading });
        }
        match m {
            0..480 => c += inn / 28_800.0,
            m if (660 + shift..780 + shift).contains(&m) || (1200..1320).contains(&m) => {
                d += out / 7_200.0
            }
            1020..1200 => c += inn / 10_800.0,
            _ => {}
        }
    }
    let el = started.elapsed().as_secs_f64();
    // Reports now solve each day's optimum (a small LP): what a lifetime
    // report and the API's per-day list cost is measured with them.
    let t = Instant::now();
    let r = acc.report(crate::account::report::Period::Lifetime);
    let report_ms = t.elapsed().as_secs_f64() * 1e3;
    // The daemon rebuilds it every savings interval: past days' optima are remembered.
    let t = Instant::now();
    let _ = acc.report(crate::account::report::Period::Lifetime);
    let again_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let per_day = acc
        .snapshot(crate::account::report::Period::Lifetime)
        .days();
    let days_ms = t.elapsed().as_secs_f64() * 1e3;
    println!("| samples (1 s, 2 counters each) | seconds | samples/s | savings CNY | days | schedule efficiency | lifetime report (first, again) | per-day list ({} reports) |", per_day.len());
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {seconds} | {el:.2} | {:.0} | {:.2} | {} | {:.3} | {report_ms:.1} ms, {again_ms:.2} ms | {days_ms:.1} ms |",
        seconds as f64 / el,
        r.total.savings,
        r.days,
        r.schedule_efficiency.unwrap_or(f64::NAN)
    );
}

/// `full`: run the whole daemon, with these sink sections (see `demo::sinks_toml`).
fn poll(sites: usize, seconds: u64, intervals: Vec<String>, full: Option<String>) -> Outcome {
    let intervals: Vec<Duration> = intervals
        .iter()
        .map(|s| parse_duration(s).map_err(|m| Failure::input(format!("--intervals: {m}"))))
        .collect::<Result<_, _>>()?;
    let exe = std::env::current_exe().map_err(|e| Failure::runtime(e.to_string()))?;
    let mut child = Command::new(exe)
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--sites",
            &sites.to_string(),
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::runtime(format!("cannot start the simulator: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Failure::runtime("simulator has no stdout"))?;
    let sim = Guard(child);
    let sim_pid = sim.0.id().to_string();
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| Failure::runtime(e.to_string()))?;
        if let Some(addr) = line.split_whitespace().nth(4).and_then(|x| x.parse().ok()) {
            addrs.push(addr);
        }
        if addrs.len() == sites {
            break;
        }
    }
    if addrs.len() != sites {
        return Err(Failure::runtime("the simulator did not report every site"));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(e.to_string()))?;
    if full.is_some() {
        println!("| devices | interval | target polls/s | daemon CPU % of one core | CPU us per device poll | RSS MB | simulator CPU % | sink messages/s | spool backlog at the end |");
        println!("|---|---|---|---|---|---|---|---|---|");
    } else {
        println!("| devices | interval | target polls/s | achieved polls/s | missed % | errors | requests/poll (planned minimum) | daemon CPU % of one core | CPU us/poll | RSS MB | simulator CPU % |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
    }
    for iv in intervals {
        let r = rt.block_on(stage(&addrs, iv, seconds, &sim_pid, full.as_deref()))?;
        println!("{r}");
    }
    println!(
        "peak RSS (VmHWM): {:.1} MB",
        status_kib("VmHWM:") as f64 / 1024.0
    );
    Ok(())
}

async fn stage(
    addrs: &[SocketAddr],
    interval: Duration,
    seconds: u64,
    sim_pid: &str,
    full: Option<&str>,
) -> Result<String, Failure> {
    let state = tempfile_dir();
    let dir = state.clone();
    let mut toml = crate::cli::demo::demo_config(addrs, &crate::cli::demo::DEMO_TARIFFS, &dir);
    // The whole daemon's metrics are read over HTTP, at a port known in advance.
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Failure::runtime(format!("no free port for HTTP: {e}")))?;
    if let Some(sinks) = full {
        toml = toml
            .replace(
                "http_listen = \"127.0.0.1:0\"",
                &format!("http_listen = \"{http}\""),
            )
            .replacen("\n[[sites]]", sinks, 1);
    }
    toml = toml.replace(
        "poll_interval = \"1s\"",
        &format!("poll_interval = \"{}ms\"", interval.as_millis()),
    );
    toml = toml.replace(
        "timeout = \"500ms\"",
        &format!("timeout = \"{}ms\"", interval.as_millis().max(200)),
    );
    let source = ConfigSource::Inline {
        name: "<bench>".into(),
        toml,
    };
    let cfg = load(&source).map_err(|e| Failure::runtime(e.to_string()))?;
    let v = validate("<bench>", cfg).map_err(|e| Failure::runtime(format!("{:?}", e.first())))?;
    // The plan is minimal (property-tested); slow requests add 1/slow_every of theirs.
    let planned: f64 = v
        .devices()
        .map(|d| {
            d.profile.plan.fast.len() as f64
                + d.profile.plan.slow.len() as f64 / d.slow_every as f64
        })
        .sum();
    let devices = v.devices().count();
    let cancel = CancellationToken::new();
    let clock: SharedClock = Arc::new(SystemClock);
    let (tx, mut rx) = mpsc::channel(8192);
    let mut tasks = tokio::task::JoinSet::new();
    let v = Arc::new(v);
    if full.is_some() {
        // The whole daemon: its own pollers feed accounting; the bench's channel stays idle.
        drop(tx);
        let (v2, c2) = (v.clone(), cancel.clone());
        tasks.spawn(async move {
            if let Err(e) =
                crate::daemon::run(&v2, clock, c2, crate::daemon::Options::default()).await
            {
                eprintln!("daemon: {e}");
            }
        });
    } else {
        tasks = acquire::spawn(v.devices(), clock, tx, cancel.clone());
    }
    let counters = Arc::new([(); 5].map(|_| AtomicU64::new(0)));
    let c2 = counters.clone();
    let consumer = tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            c2[0].fetch_add(1, Relaxed);
            c2[1].fetch_add(s.missed as u64, Relaxed);
            c2[2].fetch_add(s.requests as u64, Relaxed);
            c2[3].fetch_add(s.errors.len() as u64, Relaxed);
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Polls come in bursts on interval boundaries: start the window half-way between
    // two, so a window of whole intervals holds exactly that many bursts.
    let half = acquire::link::first_aligned_tick(interval) + interval / 2;
    tokio::time::sleep_until(half).await;
    let snap = |c: &[AtomicU64; 5]| [0, 1, 2, 3].map(|i| c[i].load(Relaxed));
    let before = snap(&counters);
    let sunk0 = if full.is_some() {
        sink_metrics(http).await
    } else {
        (0.0, 0.0)
    };
    let (cpu0, sim0, t0) = (cpu_seconds("self"), cpu_seconds(sim_pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = snap(&counters);
    let sunk1 = if full.is_some() {
        sink_metrics(http).await
    } else {
        (0.0, 0.0)
    };
    let (cpu1, sim1, el) = (
        cpu_seconds("self"),
        cpu_seconds(sim_pid),
        t0.elapsed().as_secs_f64(),
    );
    let rss = status_kib("VmRSS:") as f64 / 1024.0;
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
    let _ = consumer.await;
    let _ = std::fs::remove_dir_all(&state);
    let polls = (after[0] - before[0]) as f64;
    let missed = (after[1] - before[1]) as f64;
    let reqs = (after[2] - before[2]) as f64;
    let errors = after[3] - before[3];
    if let Some(sinks) = full {
        let sunk = if sinks.contains("[mqtt]") || sinks.contains("[influxdb]") {
            format!("{:.0} | {:.0}", (sunk1.0 - sunk0.0) / el, sunk1.1)
        } else {
            "- | -".into()
        };
        return Ok(format!(
            "| {devices} | {:?} (whole daemon) | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {sunk} |",
            interval,
            devices as f64 / interval.as_secs_f64(),
            100.0 * (cpu1 - cpu0) / el,
            1e6 * (cpu1 - cpu0) / el / (devices as f64 / interval.as_secs_f64()),
            rss,
            100.0 * (sim1 - sim0) / el,
        ));
    }
    let target = devices as f64 / interval.as_secs_f64();
    let cpu = (cpu1 - cpu0) / el;
    Ok(format!(
        "| {devices} | {:?} | {:.0} | {:.0} | {:.2} | {errors} | {:.3} ({:.3}) | {:.1} | {:.1} | {:.0} | {:.1} |",
        interval,
        target,
        polls / el,
        100.0 * missed / (polls + missed).max(1.0),
        reqs / polls.max(1.0),
        planned / devices as f64,
        100.0 * cpu,
        1e6 * (cpu1 - cpu0) / polls.max(1.0),
        rss,
        100.0 * (sim1 - sim0) / el,
    ))
}

/// (messages written by every sink so far, entries waiting in the spool) from
/// the daemon's /metrics; zeros if it cannot be read.
async fn sink_metrics(http: SocketAddr) -> (f64, f64) {
    crate::tls::install_provider();
    let Ok(resp) = reqwest::get(format!("http://{http}/metrics")).await else {
        return (0.0, 0.0);
    };
    let text = resp.text().await.unwrap_or_default();
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (
        sum("bessmon_sink_written_total{"),
        sum("bessmon_spool_entries{"),
    )
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "bessmon-bench-state-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let _ = std::fs::create_dir_all(&d);
    d
}
