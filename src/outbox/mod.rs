//! Before the spool: what the daemon produces ([`Event`]), shaped for each
//! enabled sink ([`mqtt`] topics and payloads, [`influx`] line protocol) and
//! written to the durable spool in batches (one transaction per batch, not
//! per message). Everything after the spool, the sinks that drain it, lives
//! in `publish`; nothing here knows a network.
//!
//! While the spool cannot be written (a full or failing disk) records wait
//! here, but only up to a bound: past it the oldest are dropped and counted,
//! so a disk that stays broken costs bounded memory instead of the process.
use std::collections::VecDeque;

pub mod event;
pub mod influx;
pub mod mqtt;

pub use event::Event;

use crate::spool::{Record, Spool, SpoolError};

/// The spool queue the MQTT sink drains.
pub const MQTT_QUEUE: &str = "mqtt";
/// The spool queue the InfluxDB sink drains.
pub const INFLUX_QUEUE: &str = "influxdb";

#[derive(Debug, Clone)]
pub enum Sink {
    Mqtt { prefix: String },
    Influx,
}

/// What may wait in memory for the spool.
pub const MAX_PENDING_BYTES: usize = 64 << 20;

#[derive(Debug)]
pub struct Outbox {
    sinks: Vec<Sink>,
    pending: VecDeque<(&'static str, Record)>,
    pending_bytes: usize,
    max_bytes: usize,
    /// Records dropped because the spool could not take them in time.
    pub dropped: u64,
    /// After a failed write, when to try again: a spool that cannot be
    /// written (a full disk) must not cost the loop a rewrite of everything
    /// pending at every iteration.
    retry_at: Option<std::time::Instant>,
    backoff: crate::backoff::Backoff,
}

fn size(r: &Record) -> usize {
    r.key.len() + r.payload.len() + std::mem::size_of::<(&str, Record)>()
}

impl Outbox {
    pub fn new(sinks: Vec<Sink>) -> Self {
        Self::with_bound(sinks, MAX_PENDING_BYTES)
    }

    pub fn with_bound(sinks: Vec<Sink>, max_bytes: usize) -> Self {
        Outbox {
            sinks,
            pending: VecDeque::new(),
            pending_bytes: 0,
            max_bytes,
            dropped: 0,
            retry_at: None,
            backoff: crate::backoff::Backoff::new(
                std::time::Duration::from_millis(200),
                std::time::Duration::from_secs(10),
            ),
        }
    }

    fn add(&mut self, sink: &'static str, r: Record) {
        self.pending_bytes += size(&r);
        self.pending.push_back((sink, r));
        while self.pending_bytes > self.max_bytes {
            let Some((_, old)) = self.pending.pop_front() else {
                break;
            };
            self.pending_bytes -= size(&old);
            self.dropped += 1;
        }
    }

    /// The sinks to shape events for from now on (a reload changed a prefix).
    pub fn set_sinks(&mut self, sinks: Vec<Sink>) {
        self.sinks = sinks;
    }

    pub fn is_enabled(&self) -> bool {
        !self.sinks.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn push(&mut self, e: &Event) {
        // One slot per sink kind (a config has at most one of each); no
        // allocation on this path, which runs for every event.
        debug_assert!(self.sinks.len() <= 2);
        let mut records = [None, None];
        for (slot, s) in records.iter_mut().zip(&self.sinks) {
            *slot = match s {
                Sink::Mqtt { prefix } => mqtt::encode(prefix, e).map(|r| (MQTT_QUEUE, r)),
                Sink::Influx => influx::encode(e).map(|r| (INFLUX_QUEUE, r)),
            };
        }
        for (sink, r) in records.into_iter().flatten() {
            self.add(sink, r);
        }
    }

    /// Writes what is pending; on failure it stays pending, and attempts
    /// wait (200 ms, doubling to 10 s) until one succeeds. `Ok` while waiting.
    pub fn flush(&mut self, spool: &Spool) -> Result<(), SpoolError> {
        if self.retry_at.is_some_and(|t| std::time::Instant::now() < t) {
            return Ok(());
        }
        self.flush_now(spool)
    }

    /// Writes what is pending now, whatever an earlier failure said (at shutdown).
    pub fn flush_now(&mut self, spool: &Spool) -> Result<(), SpoolError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The queue itself is the batch: no record is copied to be written.
        if let Err(e) = spool.append(self.pending.make_contiguous()) {
            self.retry_at = Some(std::time::Instant::now() + self.backoff.next_delay());
            return Err(e);
        }
        self.retry_at = None;
        self.backoff.reset();
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: u64) -> Event {
        Event::DeviceState {
            site: "s".into(),
            device: "d".into(),
            at: jiff::Timestamp::from_second(1_700_000_000 + n as i64).unwrap(),
            seq: n,
            values: vec![("p".into(), 1.5)],
            invalid: vec![],
        }
    }

    #[test]
    fn memory_waiting_for_a_broken_spool_is_bounded_and_drops_are_counted() {
        let mut o = Outbox::with_bound(
            vec![Sink::Mqtt { prefix: "b".into() }, Sink::Influx],
            20_000,
        );
        for n in 0..10_000 {
            o.push(&state(n));
        }
        assert!(o.pending_bytes <= 20_000, "{} bytes held", o.pending_bytes);
        let kept = o.len() as u64;
        assert!(kept > 10, "it keeps what fits: {kept}");
        assert_eq!(kept + o.dropped, 20_000, "every record is kept or counted");
        // The newest are the ones kept.
        let newest = &o.pending.back().unwrap().1;
        assert_eq!(newest.at_ms, (1_700_000_000 + 9_999) * 1000);
    }
}
