//! The running daemon: acquisition feeding accounting, accounting feeding the
//! spool, each sink draining its spool queue. One cancellation token stops it:
//! pollers finish their current poll, the channel drains, the books and the
//! spool are committed, then the sinks get a short grace period to deliver
//! and say goodbye.
mod announce;
mod availability;
mod notify;
pub mod pollers;
pub mod reload;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::account::accountant::Accountant;
use crate::acquire::Sample;
use crate::clock::SharedClock;
use crate::config::validate::Validated;
use crate::config::InfluxApi;
use crate::outbox::Event;
use crate::outbox::{Outbox, Sink};
use crate::publish::http::{self, Live};
use crate::publish::influx;
use crate::publish::mqtt::MqttSink;
use crate::spool::Spool;

/// At least this often the ledger and counter state reach the disk.
pub const COMMIT_EVERY: Duration = Duration::from_secs(10);
/// How long produced messages may wait in memory before the spool has them.
pub const SPOOL_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Log every device's readings every this many polls (0: never).
    pub log_every: u64,
    /// Log each site's state and today's savings this often (real time).
    pub summary_every: Option<Duration>,
    /// Re-reads the configuration on SIGHUP; without it SIGHUP is not handled.
    pub reload: Option<reload::Reloader>,
}

/// A sink task and what stops it.
struct SinkTask {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SinkTask {
    /// Runs `work` after `previous` ended (a restarted sink never overlaps
    /// its predecessor: same client id, same spool queue).
    fn spawn<F>(previous: Option<SinkTask>, work: impl FnOnce(CancellationToken) -> F) -> SinkTask
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let run = work(stop.clone());
        let before = previous.map(|p| {
            p.stop.cancel();
            p.task
        });
        let task = tokio::spawn(async move {
            if let Some(b) = before {
                let _ = b.await;
            }
            run.await
        });
        SinkTask { stop, task }
    }
}

fn outbox_sinks(v: &Validated) -> Vec<Sink> {
    let mut sinks = Vec::new();
    if let Some(m) = &v.mqtt {
        sinks.push(Sink::Mqtt {
            prefix: m.prefix.clone(),
        });
    }
    if v.influx.is_some() {
        sinks.push(Sink::Influx);
    }
    sinks
}

/// The API shows today's savings, and InfluxDB wants them at least once a
/// minute; MQTT may ask for them more often still.
fn savings_every(v: &Validated) -> Duration {
    let every = Duration::from_secs(10);
    v.mqtt
        .as_ref()
        .map_or(every, |m| every.min(m.savings_interval))
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] crate::account::store::StoreError),
    #[error(transparent)]
    Spool(#[from] crate::spool::SpoolError),
    #[error("{0}")]
    Config(String),
}

pub async fn run(
    v: &Validated,
    clock: SharedClock,
    cancel: CancellationToken,
    opts: Options,
) -> Result<(), DaemonError> {
    let daemon = &v.daemon;
    let mut books = tokio::task::block_in_place(|| Accountant::open(&v.sites, &daemon.state_dir))?;
    let spool = if v.mqtt.is_some() || v.influx.is_some() {
        let limits = v.spool;
        Some(Arc::new(tokio::task::block_in_place(|| {
            Spool::open(&daemon.state_dir, limits)
        })?))
    } else {
        None
    };
    let mut mqtt_task = None;
    let mut mqtt_stats = None;
    if let (Some(settings), Some(spool)) = (&v.mqtt, &spool) {
        tracing::info!(
            "publishing to MQTT at {}:{} under {}/",
            settings.host,
            settings.port,
            settings.prefix
        );
        let sink = MqttSink::new(settings.clone(), v, spool.clone());
        mqtt_stats = Some(sink.stats.clone());
        mqtt_task = Some(SinkTask::spawn(None, |stop| sink.run(stop)));
    }
    let mut influx_task = None;
    let mut influx_stats = None;
    if let (Some(settings), Some(spool)) = (&v.influx, &spool) {
        tracing::info!(
            "writing to InfluxDB ({} API) at {}",
            match settings.api {
                InfluxApi::V1 => "v1",
                InfluxApi::V2 => "v2",
            },
            settings.url
        );
        let sink = influx::InfluxSink::new(settings.clone(), spool.clone())
            .map_err(DaemonError::Config)?;
        influx_stats = Some(sink.stats.clone());
        influx_task = Some(SinkTask::spawn(None, |stop| sink.run(stop)));
    }
    let mut outbox = Outbox::new(outbox_sinks(v));

    // HTTP: bind now, so a taken port stops the daemon before it polls anything.
    let live = Arc::new(std::sync::RwLock::new(Live::new(v)));
    let (asks_tx, mut asks_rx) = mpsc::channel::<http::Ask>(16);
    let listener = http::bind(daemon.http_listen).await.map_err(|e| {
        DaemonError::Config(format!(
            "daemon.http_listen {}: cannot listen: {e}",
            daemon.http_listen
        ))
    })?;
    let token = daemon.http_token.as_deref().map(Into::into);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("HTTP on http://{addr}/ (dashboard, API, /metrics, /healthz)");
    }
    let health = Arc::new(http::health::Health::default());
    health.beat();
    let shared = http::Shared {
        live: live.clone(),
        token,
        asks: asks_tx,
        spool: spool.clone(),
        sinks: [
            (v.mqtt.is_some(), crate::publish::mqtt::SINK),
            (v.influx.is_some(), influx::SINK),
        ]
        .into_iter()
        .filter_map(|(on, s)| on.then_some(s))
        .collect(),
        influx: influx_stats.clone(),
        mqtt: mqtt_stats.clone(),
        clock: clock.clone(),
        health: health.clone(),
        metrics_public: daemon.metrics_public,
    };
    let http_stop = CancellationToken::new();
    let http_task = tokio::spawn(http::serve(listener, shared, http_stop.clone()));

    let (tx, mut rx) = mpsc::channel::<Sample>(daemon.sample_queue);
    // The pollers hold the channel open until shutdown, so an instance with
    // no devices (an empty shard) keeps serving instead of exiting.
    let mut pollers = pollers::Pollers::start(v.devices(), clock.clone(), tx, cancel.clone());
    let mut closing = false;
    // The configuration in force once a SIGHUP has replaced the first one.
    let mut active: Option<Validated> = None;
    let mut hup = match &opts.reload {
        Some(_) => match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("cannot listen for SIGHUP ({e}); reloading is off");
                None
            }
        },
        None => None,
    };
    if v.sites.is_empty() {
        tracing::warn!("this instance owns no sites: staying up and ready, polling nothing");
    }
    tracing::info!(
        "polling {} devices on {} sites ({} requests per poll); ledger in {}",
        v.devices().count(),
        v.sites.len(),
        v.requests_per_poll(),
        daemon.state_dir.display()
    );
    let mut notifier = notify::Notifier::from_env();
    if let Some(every) = notifier
        .watchdog_every
        .filter(|e| *e < Duration::from_secs(5))
    {
        // The loop that feeds the watchdog also commits the ledger and
        // applies reloads; on a slow disk one of those can take seconds.
        tracing::warn!(
            "WatchdogSec={}s is short: a ledger commit or a reload on a slow disk can take seconds and get the daemon killed; 30s or more is safe",
            (every * 2).as_secs_f64()
        );
    }
    if v.sites.is_empty() {
        notifier.ready_now();
    }
    let mut watchdog =
        tokio::time::interval(notifier.watchdog_every.unwrap_or(Duration::from_secs(3600)));
    let mut announcer = announce::Announcer::default();
    let mut commit_soon = false;
    let mut availability = availability::Availability::default();
    let mut events = Vec::new();
    let mut commit = tokio::time::interval(COMMIT_EVERY);
    commit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut to_spool = tokio::time::interval(SPOOL_EVERY);
    let mut savings = tokio::time::interval(savings_every(v));
    savings.tick().await;
    let mut summary =
        tokio::time::interval(opts.summary_every.unwrap_or(Duration::from_secs(3600)));
    summary.tick().await;
    loop {
        tokio::select! {
            s = rx.recv() => match s {
                Some(s) => {
                    let baseline = books.on_sample(&s);
                    availability.observe(&s, opts.log_every);
                    announcer.on_sample(&s, &mut books, outbox.is_enabled(), &mut events);
                    let mut l = live.write().unwrap_or_else(|e| e.into_inner());
                    l.on_sample(&s);
                    for e in events.drain(..) {
                        update_live(&mut l, &e);
                        outbox.push(&e);
                    }
                    let ready = l.ready;
                    drop(l);
                    notifier.sample(ready);
                    // A new counter baseline must reach the disk soon (a crash would lose the
                    // energy counted from it); batch those commits on the spool tick.
                    commit_soon |= baseline;
                }
                // Every poller has stopped: the last sample is in.
                None => break,
            },
            _ = cancel.cancelled(), if !closing => {
                closing = true;
                pollers.close();
            }
            Some(()) = async { hup.as_mut()?.recv().await }, if hup.is_some() && !closing => {
                let Some(reloader) = &opts.reload else { continue };
                let old = active.as_ref().unwrap_or(v);
                let new = match (reloader.0)() {
                    Ok(new) => new,
                    Err(errors) => {
                        for e in &errors {
                            tracing::error!("reload: {e}");
                        }
                        tracing::error!("reload refused ({} errors): still running on the configuration loaded before", errors.len());
                        continue;
                    }
                };
                let d = old.diff(&new);
                if let Some(why) = reload::needs_restart(&d, old, &new) {
                    tracing::error!("reload refused: {why} cannot change while running; restart to apply. Still running on the configuration loaded before");
                    continue;
                }
                for w in &new.warnings {
                    tracing::warn!("{w}");
                }
                if d.is_empty() {
                    tracing::info!("reload: nothing changed");
                    continue;
                }
                let reopen = reload::sites_to_reopen(&d);
                if let Err(e) = tokio::task::block_in_place(|| books.reconfigure(&new.sites, &reopen)) {
                    tracing::error!("reload refused: cannot commit the ledger first ({e}); still running on the configuration loaded before");
                    continue;
                }
                let links = pollers.apply(new.devices());
                live.write().unwrap_or_else(|e| e.into_inner()).reconfigure(&new);
                if let (true, Some(settings), Some(spool)) = (reload::mqtt_restarts(&d), &new.mqtt, &spool) {
                    let mut sink = MqttSink::new(settings.clone(), &new, spool.clone());
                    if let Some(stats) = &mqtt_stats {
                        sink = sink.with_stats(stats.clone());
                    }
                    mqtt_task = Some(SinkTask::spawn(mqtt_task.take(), |stop| sink.run(stop)));
                }
                if let (true, Some(settings), Some(spool)) = (d.influxdb_changed, &new.influx, &spool) {
                    match influx::InfluxSink::new(settings.clone(), spool.clone()) {
                        Ok(mut sink) => {
                            if let Some(stats) = &influx_stats {
                                sink = sink.with_stats(stats.clone());
                            }
                            influx_task = Some(SinkTask::spawn(influx_task.take(), |stop| sink.run(stop)));
                        }
                        Err(e) => tracing::error!("reload: {e}; the InfluxDB sink keeps its old settings"),
                    }
                }
                outbox.set_sinks(outbox_sinks(&new));
                savings = tokio::time::interval(savings_every(&new));
                tracing::info!(
                    "reloaded {}: {}; links started {}, stopped {}, restarted {}",
                    new.source,
                    reload::summary(&d),
                    links.started.len(),
                    links.stopped.len(),
                    links.restarted.len()
                );
                active = Some(new);
            }
            _ = to_spool.tick() => {
                health.beat();
                for t in [&mqtt_task, &influx_task].into_iter().flatten() {
                    // A sink returns only when stopped; before that it has panicked.
                    if t.task.is_finished() && !t.stop.is_cancelled() {
                        tracing::error!("a sink task ended unexpectedly; data stays spooled, restart to resume");
                        health.sink_died();
                    }
                }
                flush(&mut outbox, spool.as_deref(), &health, &mut books.log);
                if std::mem::take(&mut commit_soon) {
                    commit_books(&mut books, &health);
                }
            }
            _ = savings.tick() => {
                announcer.all_savings(&mut books, clock.now(), &mut events);
                let mut l = live.write().unwrap_or_else(|e| e.into_inner());
                for e in events.drain(..) {
                    update_live(&mut l, &e);
                    outbox.push(&e);
                }
                for (site, a) in &books.sites {
                    let n = a.anomalies;
                    l.anomalies.insert(site.to_string(), [n.quarantined, n.resets, n.rollovers, n.transients, n.gaps, n.implausible, n.held_back, n.counter_gaps]);
                }
            }
            Some(ask) = asks_rx.recv() => answer(ask, &mut books),
            _ = summary.tick(), if opts.summary_every.is_some() => {
                for line in books.summary(clock.now()) {
                    tracing::info!("{line}");
                }
            }
            _ = commit.tick() => {
                commit_books(&mut books, &health);
                books.log.flush_to_log(false);
                availability.log.flush_to_log(false);
            }
            _ = watchdog.tick(), if notifier.watchdog_every.is_some() => {
                // This loop running is the proof of life; a dead sink is not.
                if health.problem().is_none() {
                    notifier.watchdog();
                }
            }
        }
    }
    notifier.stopping();
    pollers.join().await;
    books.log.flush_to_log(true);
    availability.log.flush_to_log(true);
    // The last figures go out with the last samples: dashboards and the
    // retained savings topic end where the ledger does.
    announcer.all_savings(&mut books, clock.now(), &mut events);
    for e in events.drain(..) {
        outbox.push(&e);
    }
    if let Some(spool) = spool.as_deref() {
        if let Err(e) = tokio::task::block_in_place(|| outbox.flush_now(spool)) {
            tracing::error!(
                "cannot write {} messages to the spool at shutdown; they are lost: {e}",
                outbox.len()
            );
        }
    }
    tokio::task::block_in_place(|| books.commit())?;
    tracing::info!("ledger and spool committed");
    for t in [mqtt_task, influx_task].into_iter().flatten() {
        t.stop.cancel();
        let _ = t.task.await;
    }
    http_stop.cancel();
    let _ = http_task.await;
    tracing::info!("stopped");
    Ok(())
}

fn commit_books(books: &mut Accountant, health: &http::health::Health) {
    if let Err(e) = tokio::task::block_in_place(|| books.commit()) {
        health
            .ledger_commit_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Keep running: the books stay in memory and the next commit retries.
        // Logged a few times a minute: a full disk fails every commit.
        let msg =
            format!("cannot commit the ledger (kept in memory, retried at the next commit): {e}");
        if books.log.admit("storage", &msg, std::time::Instant::now()) {
            tracing::error!("{msg}");
        }
    }
}

fn flush(
    outbox: &mut Outbox,
    spool: Option<&Spool>,
    health: &http::health::Health,
    log: &mut crate::log_throttle::LogThrottle,
) {
    let Some(spool) = spool else { return };
    let n = outbox.len();
    if let Err(e) = tokio::task::block_in_place(|| outbox.flush(spool)) {
        health
            .spool_write_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let msg = format!(
            "cannot write {n} messages to the spool (kept in memory up to {} MiB, retrying; {} oldest dropped so far): {e}",
            crate::outbox::MAX_PENDING_BYTES >> 20,
            outbox.dropped
        );
        if log.admit("storage", &msg, std::time::Instant::now()) {
            tracing::error!("{msg}");
        }
    }
}

/// Keeps the HTTP side's view of tariffs and savings current.
fn update_live(l: &mut Live, e: &Event) {
    match e {
        Event::Tariff {
            site,
            at,
            band,
            price,
            until,
            ..
        } => {
            if let Some(s) = l.sites.get_mut(&**site) {
                s.tariff = Some(http::live::TariffNow {
                    band: band.clone(),
                    price: *price,
                    until: crate::timefmt::rfc3339(*until),
                });
                // Band changes come at least daily, so a new month's missing
                // prices are logged on its first band change, once.
                if let Some(t) = &s.tariff_def {
                    let today = t.tz.to_datetime(*at).date();
                    let now: Vec<String> = t
                        .missing_prices(today)
                        .into_iter()
                        .chain(t.missing_holidays(today.year()))
                        .collect();
                    for w in now.iter().filter(|w| !s.tariff_warnings.contains(w)) {
                        tracing::warn!(site = %s.id, "{w}");
                    }
                    s.tariff_warnings = now;
                }
            }
        }
        Event::Savings {
            site,
            at,
            today,
            month,
            lifetime,
            ..
        } => {
            if let Some(s) = l.sites.get_mut(&**site) {
                s.today = Some((**today).clone());
                s.month_net_savings = Some(month.net_savings);
                s.lifetime_net_savings = Some(lifetime.net_savings);
                s.savings_at = Some(crate::timefmt::rfc3339(*at));
            }
        }
        _ => {}
    }
}

pub(crate) fn answer(ask: http::Ask, books: &mut Accountant) {
    match ask {
        // Copying a period's books out is cheap; building a report from
        // years of days is not, and must not hold up the samples.
        http::Ask::Report(site, period, reply) => match books.snapshot(&site, period) {
            None => {
                let _ = reply.send(None);
            }
            Some(books) => {
                tokio::task::spawn_blocking(move || {
                    let _ = reply.send(Some(books.report()));
                });
            }
        },
        http::Ask::Days(site, period, reply) => match books.snapshot(&site, period) {
            None => {
                let _ = reply.send(None);
            }
            Some(books) => {
                tokio::task::spawn_blocking(move || {
                    let _ = reply.send(Some(books.days()));
                });
            }
        },
    }
}
