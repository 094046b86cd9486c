//! InfluxDB: line protocol for the contract's measurements, and the sink that
//! drains the spool to `/api/v2/write` (InfluxDB 2 and 3, 1.8+, VictoriaMetrics)
//! or the v1 `/write` endpoint.
//!
//! A batch leaves the spool only on a 2xx. 429, 5xx and network errors are
//! retried with backoff and jitter (honouring Retry-After, in seconds or as an
//! HTTP date); a 413 halves the batch size and retries, since a proxy's or the
//! server's body limit is no reason to drop data. 401, 403, 404 and other 4xx
//! mean the sink is set up wrong (a token, a bucket, a URL): the data is good,
//! so it stays spooled and is retried with backoff, logged as an error and
//! reported on `/readyz`, until the setup is fixed. Only 400 and 422 say the
//! data is bad: the batch is written again in halves until the bad records are
//! alone, and those go to a bounded dead-letter folder with the server's
//! message; one bad record never blocks the rest.
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
pub use outcome::Misconfig;
pub use sink::{InfluxSink, InfluxStats};

/// The spool queue this sink drains.
pub const SINK: &str = crate::outbox::INFLUX_QUEUE;
