//! The server's event hub: one subscription to the engine feeds a ring buffer (so a client can
//! resume with `Last-Event-ID`) and a broadcast to every connected event stream.

use std::collections::VecDeque;
use std::sync::Arc;

use atmo_workers::Event;
use parking_lot::Mutex;
use tokio::sync::broadcast;

/// What the hub passes on to event streams.
#[derive(Clone, Debug)]
pub(crate) enum HubItem {
    /// An engine event.
    Event(Arc<Event>),
    /// The hub itself fell behind the engine and lost this many events.
    Lagged(u64),
}

/// The backlog a new subscriber starts with.
pub(crate) struct Resume {
    /// Buffered events after the client's `Last-Event-ID`, oldest first.
    pub(crate) backlog: Vec<Arc<Event>>,
    /// Events the client missed that the buffer no longer holds (0 when none).
    pub(crate) missed: u64,
    /// Everything pushed after the backlog was taken.
    pub(crate) live: broadcast::Receiver<HubItem>,
}

#[derive(Debug)]
pub(crate) struct EventHub {
    ring: Mutex<VecDeque<Arc<Event>>>,
    capacity: usize,
    tx: broadcast::Sender<HubItem>,
}

impl EventHub {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(16);
        let (tx, _) = broadcast::channel(capacity);
        EventHub { ring: Mutex::new(VecDeque::with_capacity(capacity)), capacity, tx }
    }

    pub(crate) fn push(&self, item: HubItem) {
        // Sending under the ring's lock orders the push against `subscribe`: an event is either
        // in a new subscriber's backlog or in its live feed, never in both or neither.
        let mut ring = self.ring.lock();
        if let HubItem::Event(e) = &item {
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(e.clone());
        }
        // An error only means no stream is connected.
        let _ = self.tx.send(item);
    }

    /// Subscribes; `last_seen` is the `Last-Event-ID` of a resuming client.
    pub(crate) fn subscribe(&self, last_seen: Option<u64>) -> Resume {
        let ring = self.ring.lock();
        let live = self.tx.subscribe();
        let Some(last) = last_seen else {
            return Resume { backlog: Vec::new(), missed: 0, live };
        };
        let backlog: Vec<Arc<Event>> = ring.iter().filter(|e| e.seq > last).cloned().collect();
        let missed = match ring.front() {
            Some(oldest) if oldest.seq > last.saturating_add(1) => oldest.seq - last - 1,
            _ => 0,
        };
        Resume { backlog, missed, live }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atmo_workers::{EventKind, Timestamp};

    fn ev(seq: u64) -> HubItem {
        HubItem::Event(Arc::new(Event {
            seq,
            at: Timestamp::from_millis(0),
            kind: EventKind::WorkerIdle { worker_id: Arc::from("b/0") },
        }))
    }

    #[test]
    fn resume_returns_the_events_after_the_last_seen_and_counts_what_fell_out() {
        let hub = EventHub::new(16);
        for seq in 1..=20 {
            hub.push(ev(seq));
        }
        let r = hub.subscribe(Some(10));
        assert_eq!(r.backlog.iter().map(|e| e.seq).collect::<Vec<_>>(), (11..=20).collect::<Vec<_>>());
        assert_eq!(r.missed, 0);
        let r = hub.subscribe(Some(2));
        assert_eq!(r.backlog.first().map(|e| e.seq), Some(5));
        assert_eq!(r.missed, 2);
        let r = hub.subscribe(None);
        assert!(r.backlog.is_empty());
    }
}
