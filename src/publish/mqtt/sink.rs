//! The sink: one persistent session at a time, draining the spool into it
//! and acknowledging in the spool what the broker confirmed.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event as MqttEvent, EventLoop, Outgoing, Packet, QoS};
use tokio_util::sync::CancellationToken;

use super::acks::Acks;
use super::connect::{announcements, is_birth, rebirth, refusal};
use super::discovery::retained_topics;
use super::options::{options, qos};
use super::registry::{load_registry, save_registry};
use super::{SINK, WINDOW};
use crate::backoff::Backoff;
use crate::config::validate::Validated;
use crate::config::MqttSettings;
use crate::spool::Spool;

pub struct MqttSink {
    pub settings: MqttSettings,
    spool: Arc<Spool>,
    topics: BTreeSet<String>,
    /// What the sites other shards own publish: never cleared from here.
    elsewhere: BTreeSet<String>,
    discovery: Vec<(String, String)>,
    pub stats: Arc<MqttStats>,
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct MqttStats {
    /// Spooled messages the broker acknowledged (or sent, at QoS 0).
    pub delivered: AtomicU64,
    pub connected: AtomicBool,
    /// Connection attempts that failed (refused, unreachable, TLS).
    pub connect_failures: AtomicU64,
    /// Established connections that were lost.
    pub connections_lost: AtomicU64,
}

/// How a connection ended.
enum Ended {
    Lost(String),
    Stopped,
}

impl MqttSink {
    /// A sink with no config behind it (benchmarks): no discovery, no retained cleanup.
    pub fn bare(settings: MqttSettings, spool: Arc<Spool>) -> Self {
        MqttSink {
            settings,
            spool,
            topics: BTreeSet::new(),
            elsewhere: BTreeSet::new(),
            discovery: Vec::new(),
            stats: Arc::default(),
        }
    }

    pub fn new(settings: MqttSettings, v: &Validated, spool: Arc<Spool>) -> Self {
        let (topics, discovery) = retained_topics(&settings, &v.sites);
        let (elsewhere, _) = retained_topics(&settings, &v.elsewhere);
        MqttSink {
            settings,
            spool,
            topics,
            elsewhere,
            discovery,
            stats: Arc::default(),
        }
    }

    /// Counts into `stats` (a sink restarted by a reload keeps its figures).
    pub fn with_stats(mut self, stats: Arc<MqttStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Runs until `stop` fires, then delivers what it can for up to 2 s, marks the
    /// instance offline and disconnects.
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut announced = false;
        // The latest payload of every retained topic published, to restore
        // them all after a reconnect (a broker restarted without persistence
        // has none) and when Home Assistant comes back.
        let mut latest: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut last_error = String::new();
        loop {
            if stop.is_cancelled() {
                return;
            }
            let (client, mut el) = AsyncClient::new(options(&self.settings), 2 * WINDOW + 64);
            match self.connect(&mut el, &stop).await {
                Ok(()) => {
                    self.stats.connected.store(true, Relaxed);
                    if backoff.attempts() > 0 {
                        tracing::info!(
                            "mqtt {}:{}: connected",
                            self.settings.host,
                            self.settings.port
                        );
                    }
                    backoff.reset();
                    last_error.clear();
                }
                Err(None) => return,
                Err(Some(e)) => {
                    self.stats.connect_failures.fetch_add(1, Relaxed);
                    let delay = backoff.next_delay();
                    if e != last_error {
                        tracing::error!(
                            "mqtt {}:{}: {e}; retrying with backoff (next in {:.1}s)",
                            self.settings.host,
                            self.settings.port,
                            delay.as_secs_f64()
                        );
                        last_error = e;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            }
            let ended = self
                .session(&client, &mut el, &stop, &mut announced, &mut latest)
                .await;
            self.stats.connected.store(false, Relaxed);
            match ended {
                Ended::Stopped => return,
                Ended::Lost(e) => {
                    self.stats.connections_lost.fetch_add(1, Relaxed);
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        "mqtt {}:{}: connection lost ({e}); reconnecting in {:.1}s",
                        self.settings.host,
                        self.settings.port,
                        delay.as_secs_f64()
                    );
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Waits for CONNACK. `Err(None)` when stopped meanwhile.
    async fn connect(
        &self,
        el: &mut EventLoop,
        stop: &CancellationToken,
    ) -> Result<(), Option<String>> {
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Err(None),
                _ = &mut deadline => return Err(Some("no CONNACK within 10 s".into())),
                ev = el.poll() => match ev {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(ConnectionError::ConnectionRefused(code)) => return Err(Some(refusal(code))),
                    Err(e) => return Err(Some(e.to_string())),
                },
            }
        }
    }

    async fn session(
        &self,
        client: &AsyncClient,
        el: &mut EventLoop,
        stop: &CancellationToken,
        announced: &mut bool,
        latest: &mut BTreeMap<String, Vec<u8>>,
    ) -> Ended {
        let mut acks = Acks::default();
        let dir = &self.settings.state_dir;
        let last = if *announced {
            BTreeSet::new()
        } else {
            load_registry(dir)
        };
        let status = self.settings.status_topic();
        // Sent before any spooled message, paced by the window like them: a
        // large fleet's state would overflow rumqttc's request queue at once.
        let mut direct: VecDeque<(String, Vec<u8>)> = announcements(
            &status,
            !*announced,
            &last,
            &self.topics,
            &self.elsewhere,
            &self.discovery,
            latest,
        )
        .into();
        for (topic, _) in direct.iter().filter(|(_, p)| p.is_empty()) {
            tracing::info!("mqtt: clearing retained {topic} (no longer configured)");
        }
        if let Some(ha) = &self.settings.homeassistant {
            let _ = client.try_subscribe(format!("{ha}/status"), QoS::AtLeastOnce);
        }
        if !*announced {
            save_registry(dir, &self.topics);
            *announced = true;
        }
        let notify = self.spool.notifier(SINK);
        let mut next = self.spool.stats(SINK).first_seq;
        let mut flush = tokio::time::interval(Duration::from_millis(100));
        let mut stopping: Option<tokio::time::Instant> = None;
        // The spool may hold messages not yet read: cleared by a read that drains
        // it, set again by the spool's notification.
        let mut more = true;
        loop {
            if stopping.is_none() && stop.is_cancelled() {
                stopping = Some(tokio::time::Instant::now() + Duration::from_secs(2));
            }
            let mut room = WINDOW.saturating_sub(acks.pending());
            while room > 0 {
                let Some((topic, payload)) = direct.pop_front() else {
                    break;
                };
                let (t, p) = (topic.clone(), payload.clone());
                let queued = acks.publish(None, || {
                    client.try_publish(t, QoS::AtLeastOnce, true, p).is_ok()
                });
                if !queued {
                    direct.push_front((topic, payload));
                    break;
                }
                room -= 1;
            }
            // Without `more`, every PUBACK would cost a redb read transaction even
            // when the spool holds nothing new. (Waiting for a quarter of the window
            // to free up instead cut the catch-up rate by three quarters.)
            if more && room > 0 && direct.is_empty() {
                let batch = tokio::task::block_in_place(|| self.spool.read(SINK, next, room));
                match batch {
                    Ok(b) => {
                        more = b.len() == room;
                        for (seq, r) in b {
                            let qos = qos(self.settings.qos);
                            // Noted before it is handed over (a refused one is read
                            // again and noted again): a topic seen before keeps its
                            // buffer, so steady state copies the payload and nothing else.
                            // An empty retained payload deletes the topic.
                            if r.payload.is_empty() {
                                latest.remove(&r.key);
                            } else if let Some(p) = latest.get_mut(&r.key) {
                                p.clear();
                                p.extend_from_slice(&r.payload);
                            } else {
                                latest.insert(r.key.clone(), r.payload.clone());
                            }
                            let accepted = acks.publish(Some(seq), || {
                                client.try_publish(r.key, qos, true, r.payload).is_ok()
                            });
                            if !accepted {
                                more = true;
                                break;
                            }
                            next = seq + 1;
                        }
                    }
                    Err(e) => tracing::error!("{e}"),
                }
            }
            if let Some(deadline) = stopping {
                let idle = acks.pending() == 0 && !more;
                if idle || tokio::time::Instant::now() >= deadline {
                    self.commit_acks(&mut acks.done);
                    let _ = client.try_publish(
                        self.settings.status_topic(),
                        QoS::AtLeastOnce,
                        true,
                        "offline",
                    );
                    // Let the offline message and the DISCONNECT go out.
                    let _ = client.try_disconnect();
                    let until = tokio::time::Instant::now() + Duration::from_secs(1);
                    while tokio::time::Instant::now() < until {
                        match tokio::time::timeout_at(until, el.poll()).await {
                            Ok(Ok(MqttEvent::Outgoing(Outgoing::Disconnect)))
                            | Ok(Err(_))
                            | Err(_) => break,
                            Ok(Ok(_)) => {}
                        }
                    }
                    return Ended::Stopped;
                }
            }
            tokio::select! {
                ev = el.poll() => match ev {
                    Ok(MqttEvent::Outgoing(Outgoing::Publish(pkid))) => acks.sent(pkid),
                    Ok(MqttEvent::Incoming(Packet::PubAck(a))) => acks.confirmed(a.pkid),
                    Ok(MqttEvent::Incoming(Packet::PubComp(c))) => acks.confirmed(c.pkid),
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        let ha = self.settings.homeassistant.as_deref();
                        // A retained "online" is an old birth, replayed by the broker
                        // on every subscribe: the connect has sent everything already.
                        if !p.retain && ha.is_some_and(|ha| is_birth(ha, &p.topic, &p.payload)) {
                            tracing::info!("mqtt: Home Assistant is back; publishing discovery and the latest states again");
                            direct.extend(rebirth(&self.discovery, latest));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.commit_acks(&mut acks.done);
                        return Ended::Lost(e.to_string());
                    }
                },
                _ = notify.notified(), if !more => more = true,
                _ = flush.tick() => self.commit_acks(&mut acks.done),
                _ = stop.cancelled(), if stopping.is_none() => {}
            }
        }
    }

    fn commit_acks(&self, acks: &mut Vec<u64>) {
        if acks.is_empty() {
            return;
        }
        match tokio::task::block_in_place(|| self.spool.ack(SINK, acks)) {
            Ok(()) => {
                self.stats.delivered.fetch_add(acks.len() as u64, Relaxed);
                acks.clear()
            }
            Err(e) => tracing::error!("{e}"),
        }
    }
}
