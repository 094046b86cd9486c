//! InfluxDB: line protocol for the contract's measurements, and the sink that
//! drains the spool to `/api/v2/write` (InfluxDB 2 and 3, 1.8+, VictoriaMetrics)
//! or the v1 `/write` endpoint.
//!
//! A batch leaves the spool only on a 2xx. 429, 5xx and network errors are
//! retried with backoff and jitter (honouring Retry-After, in seconds or as an
//! HTTP date); a 413 halves the batch size and retries, since a proxy's or the
//! server's body limit is no reason to drop data; any other 4xx (a bad token,
//! a missing bucket, a field type conflict) cannot succeed by retrying, so the
//! batch goes to a dead-letter file with the server's message and the sink
//! moves on: one bad batch never blocks the rest.
//! Every number is written as a float and every flag as a boolean, always, so
//! InfluxDB never sees a field change type.
//!
//! One concept per file: `outcome` (what each answer means and what the sink
//! does next, as plain functions), `sink` (the loop that drains the
//! spool and what each write outcome does), `dead_letter` (where rejected
//! batches go).
mod dead_letter;
mod outcome;
mod sink;

pub use crate::config::InfluxSettings;
pub use sink::{InfluxSink, InfluxStats};

/// The spool queue this sink drains.
pub const SINK: &str = crate::outbox::INFLUX_QUEUE;
