//! A daemon polling the simulator on a clock the test steps: every reading
//! falls where the test puts it (on a tariff boundary, say), so a day or a
//! month of accounting is exact and quick. Used by the settlement and
//! profile-accounting tests.
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bessmon::clock::SharedClock;
use bessmon::sim::{self, SimSite, SiteParams};
use jiff::civil::{Date, DateTime};
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::{sim_devices, sized_site_toml, TestConfig};

/// A frozen clock the test moves; the simulator and the daemon share it.
#[derive(Debug)]
pub struct Stepped(std::sync::Mutex<Timestamp>);

impl bessmon::clock::Clock for Stepped {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

pub struct Run {
    pub rt: tokio::runtime::Runtime,
    pub clock: Arc<Stepped>,
    pub sim: Arc<SimSite>,
    /// Its tasks stop when it is dropped.
    pub _simulator: sim::Simulator,
    pub cfg: TestConfig,
    pub stop: CancellationToken,
    pub cancel_sim: CancellationToken,
    pub daemon: tokio::task::JoinHandle<Result<(), bessmon::daemon::DaemonError>>,
    /// Requests one poll of every device makes.
    pub per_cycle: u64,
    /// Requests made once, before the first poll: SunSpec chain walks.
    pub once: u64,
}

/// The simulator's standard site, scheduled by the Chongqing tariff.
pub fn chongqing_params() -> SiteParams {
    SiteParams {
        tariff: Some(
            bessmon::account::tariff::TariffCatalog::new(&[])
                .load("cn-chongqing-ci-2025-02")
                .unwrap()
                .unwrap(),
        ),
        ..SiteParams::standard(0)
    }
}

pub fn local(tz: &jiff::tz::TimeZone, d: Date, h: i8, m: i8) -> Timestamp {
    DateTime::from_parts(d, jiff::civil::time(h, m, 0, 0))
        .to_zoned(tz.clone())
        .unwrap()
        .timestamp()
}

impl Run {
    /// The simulator's own devices.
    pub fn start(start: Timestamp, params: SiteParams, extra: &str) -> Run {
        Run::start_with(start, params, extra, sim::SimProfiles::bundled(), |port| {
            sim_devices(port, "150ms")
        })
    }

    /// The simulator presenting `profiles`, the site's devices as `devices(port)` says.
    pub fn start_with(
        start: Timestamp,
        params: SiteParams,
        extra: &str,
        profiles: sim::SimProfiles,
        devices: impl Fn(u16) -> String,
    ) -> Run {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let clock = Arc::new(Stepped(std::sync::Mutex::new(start)));
        let shared: SharedClock = clock.clone();
        let cancel_sim = CancellationToken::new();
        let simulator = rt
            .block_on(sim::start_with(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                0,
                vec![params],
                shared.clone(),
                cancel_sim.clone(),
                profiles,
            ))
            .unwrap();
        // Readings hours apart are the point here: no counter gap to report.
        let site = sized_site_toml("200ms", 2000.0, 1000.0, &devices(simulator.addrs[0].port()))
            .replacen(
                "\npoll_interval",
                "\nmax_attribution_gap = \"9h\"\npoll_interval",
                1,
            );
        let cfg = TestConfig::new(&format!("{site}\n{extra}"));
        let v =
            bessmon::cli::load_config(Some(&cfg.path)).unwrap_or_else(|f| panic!("{:?}", f.lines));
        let per_cycle = v.sites[0]
            .devices
            .iter()
            .map(|d| d.profile.plan.requests(true).count() as u64)
            .sum();
        // A SunSpec device's chain is walked on its first poll: the marker
        // (found at 40000), each model's header and the end marker.
        let once = v.sites[0]
            .devices
            .iter()
            .filter(|d| d.profile.sunspec)
            .map(|d| {
                let mut models: Vec<u16> = d
                    .profile
                    .points
                    .iter()
                    .filter_map(|p| p.sunspec.map(|s| s.0))
                    .collect();
                models.sort_unstable();
                models.dedup();
                2 + models.len() as u64
            })
            .sum();
        let stop = CancellationToken::new();
        let daemon = {
            let (clock, stop) = (shared.clone(), stop.clone());
            rt.spawn(async move { bessmon::daemon::run(&v, clock, stop, Default::default()).await })
        };
        let sim = simulator.sites[0].clone();
        let run = Run {
            rt,
            clock,
            sim,
            _simulator: simulator,
            cfg,
            stop,
            cancel_sim,
            daemon,
            per_cycle,
            once,
        };
        run.cycles(2, "the daemon's first polls");
        run
    }

    /// Waits until `n` more whole poll cycles have been answered, ending on a
    /// cycle boundary: the link then waits out its poll interval (200 ms) idle.
    pub fn cycles(&self, n: u64, what: &str) {
        let polls = || self.sim.requests.load(Relaxed).saturating_sub(self.once);
        let target = (polls() / self.per_cycle + n) * self.per_cycle;
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let c = polls();
            if c >= target && c % self.per_cycle == 0 {
                return;
            }
            assert!(
                Instant::now() < end,
                "timed out after 30 s waiting for {what} ({c} of {target} requests)"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Moves the clock to `t` between two polls and lets one whole poll read it.
    pub fn step(&self, t: Timestamp) {
        {
            // Holding the simulator's site: no reply is computed mid-step.
            let _hold = self.sim.site.lock().unwrap();
            *self.clock.0.lock().unwrap() = t;
        }
        self.cycles(1, &format!("a poll at {t}"));
    }

    pub fn finish(self) -> TestConfig {
        self.cycles(1, "a last poll");
        self.stop.cancel();
        let daemon = self.daemon;
        let stopped = self
            .rt
            .block_on(async move { tokio::time::timeout(Duration::from_secs(60), daemon).await });
        stopped
            .expect("the daemon to stop within 60 s of its cancel")
            .unwrap()
            .unwrap();
        self.cancel_sim.cancel();
        self.cfg
    }
}
