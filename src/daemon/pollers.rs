//! The polling tasks, one per transport (a TCP connection or a serial bus),
//! kept by transport key so a reload stops, starts or restarts only the links
//! whose devices changed and leaves every other connection alone.
use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::acquire::spec::DeviceSpec;
use crate::acquire::{Link, Sample};
use crate::clock::SharedClock;

struct Running {
    devices: Vec<Arc<DeviceSpec>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

pub struct Pollers {
    links: BTreeMap<String, Running>,
    clock: SharedClock,
    /// Held while the daemon runs, so the channel stays open with no link at
    /// all (an empty shard); dropped at shutdown so it can close.
    tx: Option<mpsc::Sender<Sample>>,
    cancel: CancellationToken,
}

/// What a reload did to the links, by transport key.
#[derive(Debug, Default, PartialEq)]
pub struct LinkChanges {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub restarted: Vec<String>,
}

/// Devices by transport key, in configuration order.
pub fn by_link<'a>(
    devices: impl Iterator<Item = &'a Arc<DeviceSpec>>,
) -> BTreeMap<String, Vec<Arc<DeviceSpec>>> {
    let mut links: BTreeMap<String, Vec<Arc<DeviceSpec>>> = BTreeMap::new();
    for d in devices {
        links.entry(d.transport.key()).or_default().push(d.clone());
    }
    links
}

/// Which links must stop, start or restart to go from `old` to `new`.
pub fn plan(
    old: &BTreeMap<String, Vec<Arc<DeviceSpec>>>,
    new: &BTreeMap<String, Vec<Arc<DeviceSpec>>>,
) -> LinkChanges {
    let mut c = LinkChanges::default();
    for (key, devices) in old {
        match new.get(key) {
            None => c.stopped.push(key.clone()),
            Some(now) if now != devices => c.restarted.push(key.clone()),
            Some(_) => {}
        }
    }
    c.started = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .cloned()
        .collect();
    c
}

impl Pollers {
    pub fn start<'a>(
        devices: impl Iterator<Item = &'a Arc<DeviceSpec>>,
        clock: SharedClock,
        tx: mpsc::Sender<Sample>,
        cancel: CancellationToken,
    ) -> Pollers {
        let mut p = Pollers {
            links: BTreeMap::new(),
            clock,
            tx: Some(tx),
            cancel,
        };
        for (key, devices) in by_link(devices) {
            p.spawn(key, devices, None);
        }
        p
    }

    /// Starts a link; after `after` ends when given (a restarted link waits
    /// for its predecessor, so a serial port is never opened twice).
    fn spawn(&mut self, key: String, devices: Vec<Arc<DeviceSpec>>, after: Option<JoinHandle<()>>) {
        let Some(tx) = self.tx.clone() else { return };
        let stop = self.cancel.child_token();
        let link = Link::new(devices.clone());
        let (clock, token) = (self.clock.clone(), stop.clone());
        let task = tokio::spawn(async move {
            if let Some(previous) = after {
                let _ = previous.await;
            }
            link.run(clock, tx, token).await
        });
        self.links.insert(
            key,
            Running {
                devices,
                stop,
                task,
            },
        );
    }

    /// Brings the running links in line with `devices`.
    pub fn apply<'a>(&mut self, devices: impl Iterator<Item = &'a Arc<DeviceSpec>>) -> LinkChanges {
        let mut new = by_link(devices);
        let old: BTreeMap<String, Vec<Arc<DeviceSpec>>> = self
            .links
            .iter()
            .map(|(k, r)| (k.clone(), r.devices.clone()))
            .collect();
        let changes = plan(&old, &new);
        for key in &changes.stopped {
            if let Some(r) = self.links.remove(key) {
                r.stop.cancel();
            }
        }
        for key in &changes.restarted {
            if let (Some(r), Some(devices)) = (self.links.remove(key), new.remove(key)) {
                r.stop.cancel();
                self.spawn(key.clone(), devices, Some(r.task));
            }
        }
        for key in &changes.started {
            if let Some(devices) = new.remove(key) {
                self.spawn(key.clone(), devices, None);
            }
        }
        changes
    }

    /// Lets the sample channel close once the links have stopped.
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// Waits for every link to finish its current poll and stop.
    pub async fn join(self) {
        for (_, r) in self.links {
            let _ = r.task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::lab_config;

    #[test]
    fn only_links_whose_devices_changed_restart() {
        let a = lab_config("", "");
        let one = by_link(a.devices());
        assert_eq!(plan(&one, &one), LinkChanges::default());
        // Another port: the old link stops, a new one starts.
        let moved: Vec<Arc<DeviceSpec>> = a
            .devices()
            .map(|d| {
                let mut d = (**d).clone();
                d.transport = crate::acquire::spec::Transport::Tcp {
                    host: "127.0.0.1".into(),
                    port: 1502,
                    close_after_poll: false,
                    pause: None,
                };
                Arc::new(d)
            })
            .collect();
        let two = by_link(moved.iter());
        assert_eq!(
            plan(&one, &two),
            LinkChanges {
                started: vec!["tcp://127.0.0.1:1502".into()],
                stopped: vec!["tcp://127.0.0.1:502".into()],
                restarted: vec![],
            }
        );
        // Same port, another timeout: that link restarts.
        let slower: Vec<Arc<DeviceSpec>> = a
            .devices()
            .map(|d| {
                let mut d = (**d).clone();
                d.timeout *= 2;
                Arc::new(d)
            })
            .collect();
        assert_eq!(
            plan(&one, &by_link(slower.iter())).restarted,
            ["tcp://127.0.0.1:502"]
        );
    }
}
