//! Which spool entry each MQTT publish carries, from the moment rumqttc
//! accepts it to the broker's PUBACK, so the spool is acknowledged for exactly
//! what the broker confirmed.
//!
//! rumqttc reports publishes as they leave, in the order they were queued, with
//! the packet id it chose; the PUBACK names that id. Publishes that do not come
//! from the spool (status, discovery, cleared topics) are tracked too, as
//! `None`, so the order stays matched. A publish is recorded only once rumqttc
//! has accepted it: a refused one leaves no entry, or every later PUBACK would
//! be matched to the message before it.
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Default)]
pub struct Acks {
    /// Accepted by rumqttc, not yet sent, oldest first.
    queued: VecDeque<Option<u64>>,
    /// Sent with a packet id, waiting for its PUBACK (or PUBCOMP).
    inflight: HashMap<u16, Option<u64>>,
    /// Spool entries the broker confirmed, to acknowledge in the spool.
    pub done: Vec<u64>,
}

impl Acks {
    /// Offers a publish to rumqttc with `publish` and records `seq` (the spool
    /// entry, `None` for a direct publish) only if it was accepted.
    pub fn publish(&mut self, seq: Option<u64>, publish: impl FnOnce() -> bool) -> bool {
        let accepted = publish();
        if accepted {
            self.queued.push_back(seq);
        }
        accepted
    }

    /// rumqttc sent the oldest queued publish with packet id `pkid` (0 at QoS 0,
    /// where nothing more will come: done at once).
    pub fn sent(&mut self, pkid: u16) {
        if let Some(seq) = self.queued.pop_front() {
            if pkid == 0 {
                self.done.extend(seq);
            } else {
                self.inflight.insert(pkid, seq);
            }
        }
    }

    /// The broker confirmed packet `pkid`.
    pub fn confirmed(&mut self, pkid: u16) {
        if let Some(Some(seq)) = self.inflight.remove(&pkid) {
            self.done.push(seq);
        }
    }

    /// Publishes accepted and not yet confirmed.
    pub fn pending(&self) -> usize {
        self.queued.len() + self.inflight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_direct_publish_does_not_shift_later_acknowledgements() {
        let mut a = Acks::default();
        // The status message could not be queued (rumqttc's request channel was full).
        assert!(!a.publish(None, || false));
        assert!(a.publish(Some(7), || true));
        assert!(a.publish(Some(8), || true));
        a.sent(1);
        a.sent(2);
        a.confirmed(1);
        assert_eq!(
            a.done,
            vec![7],
            "the first PUBACK is the first spool message's"
        );
        a.confirmed(2);
        assert_eq!(a.done, vec![7, 8]);
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn direct_publishes_keep_the_order_and_are_never_acknowledged_in_the_spool() {
        let mut a = Acks::default();
        a.publish(None, || true);
        a.publish(Some(3), || true);
        a.sent(10);
        a.sent(11);
        a.confirmed(11);
        a.confirmed(10);
        assert_eq!(a.done, vec![3]);
    }

    #[test]
    fn qos_0_is_done_when_sent_and_unknown_packet_ids_are_ignored() {
        let mut a = Acks::default();
        a.publish(Some(1), || true);
        a.sent(0);
        a.confirmed(99);
        assert_eq!(a.done, vec![1]);
        assert_eq!(a.pending(), 0);
    }
}
