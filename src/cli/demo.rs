//! `bessmon demo`: simulator and daemon in one process on embedded defaults,
//! with nothing else installed.
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::{Failure, Outcome};

/// Prints to stdout, never panicking when stdout has gone away (a closed pipe).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
use crate::clock::{ScaledClock, SharedClock};
use crate::config::validate::validate;
use crate::config::{load, ConfigSource};
use crate::sim::{self, SiteParams};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Simulated time runs this many times faster (720: a day in two minutes).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Number of simulated sites.
    #[arg(long, default_value_t = 3)]
    pub sites: usize,
    /// Where the dashboard listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:9810")]
    pub http: String,
    /// Also publish to this MQTT broker (mqtt://host:port).
    #[arg(long)]
    pub mqtt: Option<String>,
    /// Also write to this InfluxDB v2 API (VictoriaMetrics, InfluxDB 2/3): http://host:port.
    #[arg(long)]
    pub influxdb: Option<String>,
    /// Log every device's readings every this many polls (0: never).
    #[arg(long, default_value_t = 0)]
    pub log_every: u64,
}

/// The demo's config: `sites` simulated sites whose PCS, BMS and meter sit at `addrs`.
/// The demo's sites take these tariffs in turn, one per province.
pub const DEMO_TARIFFS: [&str; 3] = [
    "cn-chongqing-ci-2025-02",
    "cn-zhejiang-ci-2026",
    "cn-guangdong-ci-2021",
];

/// Simulated sites whose schedules follow `tariffs` (cycled).
pub fn sim_params(n: usize, tariffs: &[&str]) -> Vec<SiteParams> {
    let catalog = crate::account::tariff::TariffCatalog::new(&[]);
    (0..n)
        .map(|k| {
            let t = catalog
                .load(tariffs[k % tariffs.len()])
                .and_then(Result::ok);
            SiteParams {
                tz: t
                    .as_ref()
                    .map(|t| t.tz.clone())
                    .unwrap_or(jiff::tz::TimeZone::UTC),
                tariff: t,
                ..SiteParams::standard(k)
            }
        })
        .collect()
}

pub fn demo_config(
    addrs: &[std::net::SocketAddr],
    tariffs: &[&str],
    state_dir: &std::path::Path,
) -> String {
    let mut t = format!(
        "[daemon]\ninstance = \"bessmon-demo\"\nstate_dir = {:?}\nhttp_listen = \"127.0.0.1:0\"\nprofile_dirs = []\ntariff_dirs = []\n",
        state_dir.display().to_string()
    );
    for (k, a) in addrs.iter().enumerate() {
        t.push_str(&format!(
            "\n[[sites]]\nid = \"demo-{k}\"\nname = \"Demo site {k}, 1 MW / 2 MWh\"\ntariff = \"{}\"\ncapacity_kwh = 2000\nrated_power_kw = 1000\npoll_interval = \"1s\"\n",
            tariffs[k % tariffs.len()]
        ));
        for (id, unit) in [("pcs", 1), ("bms", 2), ("meter", 3)] {
            t.push_str(&format!(
                "\n[[sites.devices]]\nid = \"{id}\"\nprofile = \"bessmon-sim-{id}\"\nunit = {unit}\ntimeout = \"500ms\"\ntransport = {{ type = \"tcp\", host = \"{}\", port = {} }}\n",
                a.ip(),
                a.port()
            ));
        }
    }
    t
}

pub async fn run(a: Args) -> Outcome {
    if !(a.speed.is_finite() && a.speed > 0.0) {
        return Err(Failure::input("--speed must be a positive number"));
    }
    if a.sites == 0 || a.sites > 1000 {
        return Err(Failure::input("--sites must be 1..=1000"));
    }
    // The dashboard's address comes first: resolve it (port 0 = any free port) before
    // anything else is printed.
    let http = std::net::TcpListener::bind(&a.http)
        .and_then(|l| l.local_addr())
        .map_err(|e| {
            Failure::runtime(format!(
                "--http {}: cannot listen: {e} (try --http 127.0.0.1:0)",
                a.http
            ))
        })?;
    say!("dashboard: http://{http}/");
    let cancel = CancellationToken::new();
    crate::shutdown::cancel_on_signal(cancel.clone());
    let clock: SharedClock = Arc::new(ScaledClock::new(Timestamp::now(), a.speed));
    let params = sim_params(a.sites, &DEMO_TARIFFS);
    let simulator = sim::start(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        0,
        params,
        clock.clone(),
        cancel.clone(),
    )
    .await
    .map_err(|e| Failure::runtime(format!("simulator: {e}")))?;
    let state = std::env::temp_dir().join(format!("bessmon-demo-{}", std::process::id()));
    let source = ConfigSource::Inline {
        name: "<demo>".into(),
        toml: demo_config(&simulator.addrs, &DEMO_TARIFFS, &state)
            .replace(
                "http_listen = \"127.0.0.1:0\"",
                &format!("http_listen = \"{http}\""),
            )
            .replacen(
                "\n[[sites]]",
                &sinks_toml(a.mqtt.as_deref(), a.influxdb.as_deref()),
                1,
            )
            // Polls are a real second apart, readings `speed` simulated seconds:
            // the attribution gap is three polls of simulated time.
            .replace(
                "\npoll_interval = \"1s\"\n",
                &format!(
                    "\npoll_interval = \"1s\"\nmax_attribution_gap = \"{}ms\"\n",
                    (3000.0 * a.speed).max(60_000.0).round() as u64
                ),
            ),
    };
    let cfg = load(&source).map_err(|e| Failure::runtime(format!("demo config: {e}")))?;
    let v = validate(&source.name(), cfg).map_err(|errs| Failure {
        code: 2,
        lines: errs.iter().map(|e| format!("demo config: {e}")).collect(),
    })?;
    say!(
        "bessmon demo: {} simulated sites, time x{}",
        a.sites,
        a.speed
    );
    for (k, addr) in simulator.addrs.iter().enumerate() {
        say!("  site demo-{k}: simulator at {addr} (read it with: bessmon read --host {} --port {} --unit 1 --profile bessmon-sim-pcs)", addr.ip(), addr.port());
    }
    say!("Ctrl-C stops.");
    let opts = crate::daemon::Options {
        log_every: a.log_every,
        summary_every: Some(std::time::Duration::from_secs(5)),
        reload: None,
    };
    crate::daemon::run(&v, clock, cancel, opts)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&state);
    let mut tasks = simulator.tasks;
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// `[mqtt]` / `[influxdb]` sections for optional sinks, placed before the sites.
pub(super) fn sinks_toml(mqtt: Option<&str>, influxdb: Option<&str>) -> String {
    let mut t = String::new();
    if let Some(url) = mqtt {
        t += &format!("\n[mqtt]\nurl = {url:?}\n");
    }
    if let Some(url) = influxdb {
        t += &format!(
            "\n[influxdb]\nurl = {url:?}\napi = \"v2\"\norg = \"bessmon\"\nbucket = \"bessmon\"\n"
        );
    }
    t + "\n[[sites]]"
}
