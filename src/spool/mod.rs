//! The durable queue between accounting and the network sinks: what a sink has
//! not confirmed survives a broker or database outage and a crash.
pub mod queue;

pub use queue::{Limits, Record, Spool, SpoolError, Stats};
