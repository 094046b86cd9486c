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
//!
//! One concept per file: `options` (the validated settings as rumqttc's
//! options), `connect` (what a connect publishes first, what a refusal
//! means), `discovery` (the retained topics
//! and Home Assistant configs a configuration publishes), `registry` (what
//! was retained last time), `acks` (which spool entry each PUBACK confirms)
//! and `sink` (the connection loop that calls them).
mod acks;
mod connect;
mod discovery;
mod options;
mod registry;
mod sink;

pub use crate::config::MqttSettings;
pub use discovery::retained_topics;
pub use sink::{MqttSink, MqttStats};

/// The spool queue this sink drains.
pub const SINK: &str = crate::outbox::MQTT_QUEUE;
/// Messages in flight (sent, PUBACK pending) at most.
const WINDOW: usize = 500;
