//! Acquisition: profiles (register maps as data), the request planner, decoding,
//! transports and the per-transport polling tasks. Output: [`Sample`]s on a
//! bounded channel. Knows nothing of tariffs or sinks.
pub mod commission;
pub mod decode;
pub mod link;
pub mod planner;
pub mod plausibility;
pub mod profile;
pub mod sample;
pub mod spec;
pub mod sunspec;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::acquire::spec::DeviceSpec;
use crate::clock::SharedClock;
pub use link::Link;
pub use sample::Sample;

/// Groups devices by shared transport into links.
pub fn links<'a>(devices: impl Iterator<Item = &'a Arc<DeviceSpec>>) -> Vec<Link> {
    let mut by_key: BTreeMap<String, Vec<Arc<DeviceSpec>>> = BTreeMap::new();
    for d in devices {
        by_key.entry(d.transport.key()).or_default().push(d.clone());
    }
    by_key.into_values().map(Link::new).collect()
}

/// Starts one task per link; they stop when `cancel` fires (after their current poll)
/// or when the receiver is dropped.
pub fn spawn<'a>(
    devices: impl Iterator<Item = &'a Arc<DeviceSpec>>,
    clock: SharedClock,
    tx: mpsc::Sender<Sample>,
    cancel: CancellationToken,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for link in links(devices) {
        set.spawn(link.run(clock.clone(), tx.clone(), cancel.clone()));
    }
    set
}
