//! Publishing: sinks that drain their spool queue and acknowledge what the
//! far side confirmed. `event` is the vocabulary, each sink module shapes it
//! for its protocol.
pub mod event;
pub mod http;
pub mod influx;
pub mod mqtt;
pub mod outbox;

pub use event::Event;
