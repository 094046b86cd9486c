//! The running daemon: acquisition feeding accounting, accounting feeding the
//! spool, each sink draining its spool queue. One cancellation token stops it:
//! pollers finish their current poll, the channel drains, the books and the
//! spool are committed, then the sinks get a short grace period to deliver
//! and say goodbye.
mod announce;
mod availability;
mod notify;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::account::accountant::Accountant;
use crate::acquire::{self, Sample};
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
    let mut outbox_sinks = Vec::new();
    let mut sinks = JoinSet::new();
    let sinks_stop = CancellationToken::new();
    let spool = if v.mqtt.is_some() || v.influx.is_some() {
        let limits = v.spool;
        Some(Arc::new(tokio::task::block_in_place(|| {
            Spool::open(&daemon.state_dir, limits)
        })?))
    } else {
        None
    };
    // The API shows today's savings, and InfluxDB wants them at least once a
    // minute; MQTT may ask for them more often still.
    let mut savings_every = Duration::from_secs(10);
    let mut mqtt_stats = None;
    if let (Some(settings), Some(spool)) = (&v.mqtt, &spool) {
        savings_every = savings_every.min(settings.savings_interval);
        tracing::info!(
            "publishing to MQTT at {}:{} under {}/",
            settings.host,
            settings.port,
            settings.prefix
        );
        outbox_sinks.push(Sink::Mqtt {
            prefix: settings.prefix.clone(),
        });
        let sink = MqttSink::new(settings.clone(), v, spool.clone());
        mqtt_stats = Some(sink.stats.clone());
        sinks.spawn(sink.run(sinks_stop.clone()));
    }
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
        outbox_sinks.push(Sink::Influx);
        let sink = influx::InfluxSink::new(settings.clone(), spool.clone())
            .map_err(DaemonError::Config)?;
        influx_stats = Some(sink.stats.clone());
        sinks.spawn(sink.run(sinks_stop.clone()));
    }
    let mut outbox = Outbox::new(outbox_sinks);

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
        influx: influx_stats,
        mqtt: mqtt_stats,
        clock: clock.clone(),
        health: health.clone(),
        metrics_public: daemon.metrics_public,
    };
    let http_stop = CancellationToken::new();
    let http_task = tokio::spawn(http::serve(listener, shared, http_stop.clone()));

    let (tx, mut rx) = mpsc::channel::<Sample>(daemon.sample_queue);
    // Held until shutdown, so an instance with no devices (an empty shard)
    // keeps serving instead of finding its channel closed and exiting.
    let mut hold_open = Some(tx.clone());
    let mut pollers = acquire::spawn(v.devices(), clock.clone(), tx, cancel.clone());
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
    let mut savings = tokio::time::interval(savings_every);
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
            _ = cancel.cancelled(), if hold_open.is_some() => hold_open = None,
            _ = to_spool.tick() => {
                health.beat();
                while let Some(ended) = sinks.try_join_next() {
                    // A sink returns only when stopped; before that it has panicked.
                    tracing::error!("a sink task ended unexpectedly ({ended:?}); data stays spooled, restart to resume");
                    health.sink_died();
                }
                flush(&mut outbox, spool.as_deref());
                if std::mem::take(&mut commit_soon) {
                    commit_books(&mut books);
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
            Some(ask) = asks_rx.recv() => answer(ask, &mut books, clock.now()),
            _ = summary.tick(), if opts.summary_every.is_some() => {
                for line in books.summary(clock.now()) {
                    tracing::info!("{line}");
                }
            }
            _ = commit.tick() => {
                commit_books(&mut books);
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
    while pollers.join_next().await.is_some() {}
    books.log.flush_to_log(true);
    availability.log.flush_to_log(true);
    flush(&mut outbox, spool.as_deref());
    tokio::task::block_in_place(|| books.commit())?;
    tracing::info!("ledger and spool committed");
    sinks_stop.cancel();
    while sinks.join_next().await.is_some() {}
    http_stop.cancel();
    let _ = http_task.await;
    tracing::info!("stopped");
    Ok(())
}

fn commit_books(books: &mut Accountant) {
    if let Err(e) = tokio::task::block_in_place(|| books.commit()) {
        // Keep running: the books stay in memory and the next commit retries.
        tracing::error!("cannot commit the ledger: {e}");
    }
}

fn flush(outbox: &mut Outbox, spool: Option<&Spool>) {
    let Some(spool) = spool else { return };
    let n = outbox.len();
    if let Err(e) = tokio::task::block_in_place(|| outbox.flush(spool)) {
        tracing::error!(
            "cannot write {n} messages to the spool (kept in memory up to {} MiB, retrying; {} oldest dropped so far): {e}",
            crate::outbox::MAX_PENDING_BYTES >> 20,
            outbox.dropped
        );
    }
}

/// Keeps the HTTP side's view of tariffs and savings current.
fn update_live(l: &mut Live, e: &Event) {
    match e {
        Event::Tariff {
            site,
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
            }
        }
        Event::Savings { site, today, .. } => {
            if let Some(s) = l.sites.get_mut(&**site) {
                s.today = Some((**today).clone());
            }
        }
        _ => {}
    }
}

fn answer(ask: http::Ask, books: &mut Accountant, now: jiff::Timestamp) {
    match ask {
        http::Ask::Report(site, period, reply) => {
            let _ = reply.send(books.report(&site, period));
        }
        http::Ask::Days(site, period, reply) => {
            let _ = reply.send(books.days(&site, period));
        }
        http::Ask::Bands(site, reply) => {
            let bands = books.sites.get(&*site).map(|a| {
                let t = &a.setup.tariff;
                let mut out = Vec::new();
                let mut at = now - jiff::SignedDuration::from_hours(24);
                while at < now && out.len() < 500 {
                    let seg = t.segment_at(at);
                    out.push(serde_json::json!({
                        "start": seg.start.as_millisecond(), "end": seg.end.as_millisecond(),
                        "band": t.bands[seg.band as usize], "price": seg.price,
                    }));
                    at = seg.end;
                }
                out
            });
            let _ = reply.send(bands);
        }
    }
}
