//! MQTT: topics and payloads as the contract fixes them, and the sink that
//! drains the spool to the broker.
//!
//! rumqttc keeps its queue in memory and reconnects instantly by itself, so
//! the sink owns both concerns: every message goes through the spool and is
//! removed only on its PUBACK, and a lost connection is dropped whole and
//! reopened with exponential backoff and jitter, resending the unacknowledged
//! tail in order (at least once). The session is persistent
//! (clean_session=false, stable client id = `daemon.instance`), the last will
//! marks the instance offline, and a retained `online` follows every connect.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event as MqttEvent, EventLoop, LastWill,
    MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::event::Event;
use super::mqtt_acks::Acks;
use crate::account::report::Report;
use crate::backoff::Backoff;
use crate::config::validate::Validated;
use crate::config::Mqtt;
use crate::role::Role;
use crate::spool::{Record, Spool};
use crate::timefmt::rfc3339;

/// The spool queue this sink drains.
pub const SINK: &str = "mqtt";
/// Messages in flight (sent, PUBACK pending) at most.
const WINDOW: usize = 500;

#[derive(Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsConfiguration>,
    pub prefix: String,
    pub instance: String,
    pub username: Option<String>,
    password: Option<String>,
    pub qos: QoS,
    pub homeassistant: Option<String>,
    pub state_dir: PathBuf,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is never printed.
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("prefix", &self.prefix)
            .field("instance", &self.instance)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path, key: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("mqtt.{key}: cannot read {}: {e}", path.display()))
}

/// Splits `mqtt://host:port` / `mqtts://[::1]:8883` into (tls, host, port).
pub fn parse_url(url: &str) -> Result<(bool, String, u16), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(format!(
            "mqtt.url: `{url}` must start with mqtt:// or mqtts://"
        ));
    };
    let rest = rest.trim_end_matches('/');
    let default = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| format!("mqtt.url: `{url}`: unclosed ["))?;
        (h.to_string(), after.strip_prefix(':').map(str::to_string))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (rest.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("mqtt.url: `{url}`: `{p}` is not a port"))?,
        None => default,
    };
    if host.is_empty() {
        return Err(format!("mqtt.url: `{url}` has no host"));
    }
    Ok((tls, host, port))
}

impl Settings {
    pub fn from_config(m: &Mqtt, instance: &str, state_dir: &Path) -> Result<Settings, String> {
        let (tls, host, port) = parse_url(&m.url)?;
        let password = match (&m.password, &m.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => {
                let p = String::from_utf8(read(f, "password_file")?)
                    .map_err(|_| format!("mqtt.password_file: {} is not UTF-8", f.display()))?;
                Some(p.trim_end_matches(['\n', '\r']).to_string())
            }
            (None, None) => None,
        };
        let tls = if tls {
            crate::tls::install_provider();
            let client_auth = match (&m.client_cert_file, &m.client_key_file) {
                (Some(c), Some(k)) => {
                    Some((read(c, "client_cert_file")?, read(k, "client_key_file")?))
                }
                (None, None) => None,
                _ => {
                    return Err("mqtt.client_cert_file and mqtt.client_key_file go together".into())
                }
            };
            Some(match &m.ca_file {
                Some(ca) => TlsConfiguration::Simple {
                    ca: read(ca, "ca_file")?,
                    alpn: None,
                    client_auth,
                },
                None if client_auth.is_none() => TlsConfiguration::default(),
                None => return Err("mqtt.client_cert_file needs mqtt.ca_file".into()),
            })
        } else {
            None
        };
        Ok(Settings {
            host,
            port,
            tls,
            prefix: m.topic_prefix.clone(),
            instance: instance.to_string(),
            username: m.username.clone(),
            password,
            qos: match m.qos {
                0 => QoS::AtMostOnce,
                2 => QoS::ExactlyOnce,
                _ => QoS::AtLeastOnce,
            },
            homeassistant: m
                .homeassistant
                .as_ref()
                .filter(|h| h.enabled)
                .map(|h| h.discovery_prefix.clone()),
            state_dir: state_dir.to_path_buf(),
        })
    }

    pub fn status_topic(&self) -> String {
        format!("{}/{}/status", self.prefix, self.instance)
    }

    fn options(&self) -> MqttOptions {
        let mut o = MqttOptions::new(self.instance.clone(), self.host.clone(), self.port);
        o.set_clean_session(false);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_inflight(WINDOW as u16);
        o.set_max_packet_size(1 << 20, 1 << 20);
        o.set_last_will(LastWill::new(
            self.status_topic(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(u) = &self.username {
            o.set_credentials(u.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(t) = &self.tls {
            o.set_transport(Transport::tls_with_config(t.clone()));
        }
        o
    }
}

fn summary(r: &Report) -> Value {
    let t = &r.total;
    json!({
        "charge_kwh": t.charge_kwh,
        "discharge_kwh": t.discharge_kwh,
        "charge_cost": t.charge_cost,
        "discharge_value": t.discharge_value,
        "savings": t.savings,
        "aux_kwh": t.aux_kwh,
        "aux_cost": t.aux_cost,
        "net_savings": r.net_savings,
        "savings_range": r.savings_range,
        "net_savings_range": r.net_savings_range,
        "unattributed": r.unattributed,
        "quarantined_kwh": r.quarantined_kwh,
        "held_back": r.held_back,
        "equivalent_cycles": r.equivalent_cycles,
        "round_trip_efficiency": r.round_trip_efficiency,
        "overall_efficiency": r.overall_efficiency,
        "demand_savings": r.demand_savings,
        "demand": r.demand,
        "bands": r.bands,
    })
}

/// The topic and payload of an event, or None for events MQTT does not carry.
pub fn encode(prefix: &str, e: &Event) -> Option<Record> {
    let at_ms = e.at().as_millisecond();
    let (key, payload) = match e {
        Event::DeviceState { site, device, at, seq, values, invalid } => {
            let values: serde_json::Map<String, Value> = values.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            (
                format!("{prefix}/{site}/{device}/state"),
                json!({ "ts": rfc3339(*at), "seq": seq, "values": values, "invalid": invalid.iter().map(|s| s.to_string()).collect::<Vec<_>>() }).to_string(),
            )
        }
        Event::Availability { site, device, online, .. } => {
            (format!("{prefix}/{site}/{device}/availability"), if *online { "online" } else { "offline" }.to_string())
        }
        Event::Tariff { site, band, price, currency, until, .. } => (
            format!("{prefix}/{site}/tariff"),
            json!({ "band": band, "price": price, "currency": currency, "until": rfc3339(*until) }).to_string(),
        ),
        Event::Savings { site, currency, today, month, lifetime, at } => (
            format!("{prefix}/{site}/savings"),
            json!({ "ts": rfc3339(*at), "currency": currency, "today": summary(today), "month": summary(month), "lifetime": summary(lifetime) })
                .to_string(),
        ),
        Event::PollStatus { .. } => return None,
    };
    Some(Record {
        at_ms,
        key,
        payload: payload.into_bytes(),
    })
}

/// Retained topics the current config publishes, with Home Assistant discovery
/// configs (topic, payload) when enabled.
pub fn retained_topics(s: &Settings, v: &Validated) -> (BTreeSet<String>, Vec<(String, String)>) {
    let p = &s.prefix;
    let mut topics = BTreeSet::new();
    let mut discovery = Vec::new();
    for site in &v.sites {
        topics.insert(format!("{p}/{}/tariff", site.id));
        topics.insert(format!("{p}/{}/savings", site.id));
        for d in &site.devices {
            topics.insert(format!("{p}/{}/{}/state", site.id, d.id));
            topics.insert(format!("{p}/{}/{}/availability", site.id, d.id));
        }
        let Some(ha) = &s.homeassistant else { continue };
        let role_source = |role: Role| {
            site.devices.iter().find_map(|d| {
                d.profile
                    .point_with_role(role)
                    .map(|(_, pt)| (d.id.clone(), pt.name.clone()))
            })
        };
        let device = json!({
            "identifiers": [format!("bessmon_{}_{}", s.instance, site.id)],
            "name": site.name,
            "manufacturer": "bessmon",
            "model": format!("{} kWh / {} kW", site.capacity_kwh, site.rated_power_kw),
        });
        let mut sensors: Vec<(&str, String, String, Value)> = Vec::new();
        if let Some((dev, pt)) = role_source(Role::Soc) {
            sensors.push(("soc", "State of charge".into(), format!("{p}/{}/{dev}/state", site.id), json!({
                "value_template": format!("{{{{ value_json['values']['{pt}'] }}}}"), "unit_of_measurement": "%", "device_class": "battery", "state_class": "measurement" })));
        }
        if let Some((dev, pt)) = role_source(Role::BatteryPower) {
            sensors.push(("battery_power", "Battery power".into(), format!("{p}/{}/{dev}/state", site.id), json!({
                "value_template": format!("{{{{ value_json['values']['{pt}'] }}}}"), "unit_of_measurement": "kW", "device_class": "power", "state_class": "measurement" })));
        }
        // Net of what the auxiliaries cost: the figure an owner is paid on.
        sensors.push(("savings_today", "Net savings today".into(), format!("{p}/{}/savings", site.id), json!({
            "value_template": "{{ value_json.today.net_savings }}", "unit_of_measurement": site.tariff.currency, "device_class": "monetary" })));
        sensors.push((
            "tariff_band",
            "Tariff band".into(),
            format!("{p}/{}/tariff", site.id),
            json!({ "value_template": "{{ value_json.band }}" }),
        ));
        for (key, name, state_topic, mut extra) in sensors {
            let object = format!("{}_{}_{}", s.instance, site.id, key).replace(['.', '-'], "_");
            let topic = format!("{ha}/sensor/{object}/config");
            let obj = extra.as_object_mut().expect("built as an object");
            obj.insert("name".into(), json!(name));
            obj.insert("unique_id".into(), json!(format!("bessmon_{object}")));
            obj.insert("state_topic".into(), json!(state_topic));
            obj.insert("availability_topic".into(), json!(s.status_topic()));
            obj.insert("device".into(), device.clone());
            topics.insert(topic.clone());
            discovery.push((topic, extra.to_string()));
        }
    }
    (topics, discovery)
}

/// What was published retained last time, kept beside the spool so a device
/// removed from the config can have its retained topics cleared.
fn registry_path(dir: &Path) -> PathBuf {
    dir.join("mqtt-retained.json")
}

fn load_registry(dir: &Path) -> BTreeSet<String> {
    std::fs::read(registry_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_registry(dir: &Path, topics: &BTreeSet<String>) {
    let path = registry_path(dir);
    let tmp = path.with_extension("json.tmp");
    let ok = serde_json::to_vec(topics)
        .ok()
        .and_then(|b| std::fs::write(&tmp, b).ok())
        .and_then(|_| std::fs::rename(&tmp, &path).ok());
    if ok.is_none() {
        tracing::warn!(
            "cannot write {}: removed devices' retained topics may not be cleared next time",
            path.display()
        );
    }
}

pub struct MqttSink {
    pub settings: Settings,
    spool: Arc<Spool>,
    topics: BTreeSet<String>,
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
    pub fn bare(settings: Settings, spool: Arc<Spool>) -> Self {
        MqttSink {
            settings,
            spool,
            topics: BTreeSet::new(),
            discovery: Vec::new(),
            stats: Arc::default(),
        }
    }

    pub fn new(settings: Settings, v: &Validated, spool: Arc<Spool>) -> Self {
        let (topics, discovery) = retained_topics(&settings, v);
        MqttSink {
            settings,
            spool,
            topics,
            discovery,
            stats: Arc::default(),
        }
    }

    /// Runs until `stop` fires, then delivers what it can for up to 2 s, marks the
    /// instance offline and disconnects.
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut announced = false;
        let mut last_error = String::new();
        loop {
            if stop.is_cancelled() {
                return;
            }
            let (client, mut el) = AsyncClient::new(self.settings.options(), 2 * WINDOW + 64);
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
            let ended = self.session(&client, &mut el, &stop, &mut announced).await;
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
                    Err(ConnectionError::ConnectionRefused(code)) => return Err(Some(match code {
                        ConnectReturnCode::BadUserNamePassword => "the broker refused the username or password".to_string(),
                        // Mosquitto answers a wrong password with "not authorised".
                        ConnectReturnCode::NotAuthorized => "the broker refused the connection as not authorised (check mqtt.username and the password)".to_string(),
                        other => format!("the broker refused the connection ({other:?})"),
                    })),
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
    ) -> Ended {
        let mut acks = Acks::default();
        let direct = |topic: String, payload: String, acks: &mut Acks| {
            acks.publish(None, || {
                client
                    .try_publish(topic, QoS::AtLeastOnce, true, payload)
                    .is_ok()
            })
        };
        direct(self.settings.status_topic(), "online".into(), &mut acks);
        if !*announced {
            let dir = &self.settings.state_dir;
            for stale in load_registry(dir).difference(&self.topics) {
                // An empty retained payload deletes the retained message.
                direct(stale.clone(), String::new(), &mut acks);
                tracing::info!("mqtt: cleared retained {stale} (no longer configured)");
            }
            for (topic, payload) in &self.discovery {
                direct(topic.clone(), payload.clone(), &mut acks);
            }
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
            let room = WINDOW.saturating_sub(acks.pending());
            // Without `more`, every PUBACK would cost a redb read transaction even
            // when the spool holds nothing new. (Waiting for a quarter of the window
            // to free up instead cut the catch-up rate by three quarters.)
            if more && room > 0 {
                let batch = tokio::task::block_in_place(|| self.spool.read(SINK, next, room));
                match batch {
                    Ok(b) => {
                        more = b.len() == room;
                        for (seq, r) in b {
                            let qos = self.settings.qos;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            (false, "127.0.0.1".into(), 1883)
        );
        assert_eq!(
            parse_url("mqtts://broker.example").unwrap(),
            (true, "broker.example".into(), 8883)
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1884").unwrap(),
            (false, "::1".into(), 1884)
        );
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("mqtt://x:notaport").is_err());
    }

    #[test]
    fn state_payload_shape() {
        let e = Event::DeviceState {
            site: "s".into(),
            device: "pcs".into(),
            at: "2026-11-28T04:00:00.250Z".parse().unwrap(),
            seq: 7,
            values: vec![("active_power".into(), -187.9)],
            invalid: vec!["frequency".into()],
        };
        let r = encode("bessmon", &e).unwrap();
        assert_eq!(r.key, "bessmon/s/pcs/state");
        let v: Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(v["ts"], "2026-11-28T04:00:00.250Z");
        assert_eq!(v["values"]["active_power"], -187.9);
        assert_eq!(v["invalid"][0], "frequency");
        assert_eq!(v["seq"], 7);
        assert_eq!(r.at_ms, 1_795_838_400_250);
    }
}
