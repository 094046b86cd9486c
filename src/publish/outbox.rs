//! Events shaped for each enabled sink and written to the spool in batches
//! (one transaction per batch, not per message).
use super::event::Event;
use super::{influx, mqtt};
use crate::spool::{Record, Spool, SpoolError};

#[derive(Debug, Clone)]
pub enum Sink {
    Mqtt { prefix: String },
    Influx,
}

#[derive(Debug, Default)]
pub struct Outbox {
    sinks: Vec<Sink>,
    pending: Vec<(&'static str, Record)>,
}

impl Outbox {
    pub fn new(sinks: Vec<Sink>) -> Self {
        Outbox {
            sinks,
            pending: Vec::new(),
        }
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
        for s in &self.sinks {
            match s {
                Sink::Mqtt { prefix } => {
                    if let Some(r) = mqtt::encode(prefix, e) {
                        self.pending.push((mqtt::SINK, r));
                    }
                }
                Sink::Influx => {
                    if let Some(r) = influx::encode(e) {
                        self.pending.push((influx::SINK, r));
                    }
                }
            }
        }
    }

    /// Writes what is pending; on failure it stays pending for the next try.
    pub fn flush(&mut self, spool: &Spool) -> Result<(), SpoolError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch: Vec<(&str, Record)> =
            self.pending.iter().map(|(s, r)| (*s, r.clone())).collect();
        spool.append(&batch)?;
        self.pending.clear();
        Ok(())
    }
}
