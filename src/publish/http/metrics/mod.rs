//! `/metrics` in the Prometheus text format, one file per area: `polling`
//! (the daemon and its devices), `ledger` (anomalies and savings),
//! `delivery` (spool queues and sinks), written through `text`.
//!
//! Written by hand rather than with `prometheus-client`, for two reasons.
//! Every figure here is a projection of state the daemon already keeps (the
//! live view, the spool's stats, the sinks' atomics), read at scrape time;
//! an instrument registry would hold a second copy to keep in step, or need a
//! custom collector that does what this does. And `prometheus-client` writes
//! only OpenMetrics text, which would change the exposition scrapers, alert
//! rules and the tests read today. The format itself is small and is checked
//! by an independent parser (Python's `prometheus_client`) in the tests.
mod delivery;
mod ledger;
mod polling;
mod text;

use super::live::Live;
use super::Shared;

pub fn render(live: &Live, shared: &Shared) -> String {
    let mut t = text::Text::with_capacity(16 * 1024);
    polling::write(&mut t, live);
    ledger::write(&mut t, live, shared.clock.now());
    delivery::write(&mut t, shared);
    t.finish()
}

#[cfg(test)]
mod tests;
