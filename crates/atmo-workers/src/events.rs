//! The event bus: a bounded broadcast, so a slow subscriber lags instead of slowing the engine.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use atmo_core::{Clock, Event, EventKind, EventType, Timestamp};
use futures::Stream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// Default number of events a subscriber may fall behind before it lags.
pub const DEFAULT_EVENT_BUFFER: usize = 16_384;

/// What a subscription yields.
#[derive(Clone, Debug, PartialEq)]
pub enum EventItem {
    /// An event.
    Event(Arc<Event>),
    /// The subscriber fell behind and this many events were dropped for it.
    Lagged(u64),
}

#[derive(Debug)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    /// The last sequence number. Numbering and sending happen under this lock, so every
    /// subscriber sees `seq` in order: one resuming after event N (`Last-Event-ID`) cannot miss
    /// an event numbered below N that was still on its way.
    seq: parking_lot::Mutex<u64>,
    clock: Arc<dyn Clock>,
    /// Live subscriptions. The broadcast channel counts its receivers too, but reading that
    /// count takes its lock, and the engine asks several times per request, from every thread.
    listeners: Arc<AtomicUsize>,
}

impl EventBus {
    pub(crate) fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        EventBus { tx, seq: parking_lot::Mutex::new(0), clock, listeners: Arc::new(AtomicUsize::new(0)) }
    }

    /// Whether anyone listens: the engine builds events only then, so an engine nobody watches
    /// pays nothing for them.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.listeners.load(Ordering::Acquire) > 0
    }

    pub(crate) fn emit(&self, kind: EventKind) {
        if self.active() {
            self.emit_at(self.clock.now(), kind);
        }
    }

    /// Emits the events `make` builds, only if someone listens.
    #[inline]
    pub(crate) fn emit_with(&self, make: impl FnOnce() -> EventKind) {
        if self.active() {
            self.emit(make());
        }
    }

    /// Emits an event that happened at `at` (a batch's timestamp), without reading the clock.
    pub(crate) fn emit_at(&self, at: Timestamp, kind: EventKind) {
        if !self.active() {
            return;
        }
        let mut event = Event { seq: 0, at, kind };
        let mut last = self.seq.lock();
        *last += 1;
        event.seq = *last;
        // An error only means every receiver went away meanwhile.
        let _ = self.tx.send(Arc::new(event));
        drop(last);
    }

    /// [`EventBus::emit_with`] for an event that happened at `at`.
    #[inline]
    pub(crate) fn emit_with_at(&self, at: Timestamp, make: impl FnOnce() -> EventKind) {
        if self.active() {
            self.emit_at(at, make());
        }
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        // Counted before the receiver exists: an event sent in between is built, at worst, for
        // nobody; never missed by a subscriber that is already counted.
        self.listeners.fetch_add(1, Ordering::AcqRel);
        let listening = Listening(self.listeners.clone());
        EventStream { inner: BroadcastStream::new(self.tx.subscribe()), filter: None, _listening: listening }
    }
}

/// Counts one subscription for as long as its stream lives.
struct Listening(Arc<AtomicUsize>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A stream of events (see `RequestManager::subscribe`).
///
/// Yields [`EventItem::Lagged`] when the subscriber fell more than the buffer behind.
pub struct EventStream {
    inner: BroadcastStream<Arc<Event>>,
    filter: Option<Vec<EventType>>,
    _listening: Listening,
}

impl EventStream {
    /// Only events of these types (lag notices still come through).
    pub fn only(mut self, types: impl IntoIterator<Item = EventType>) -> Self {
        self.filter = Some(types.into_iter().collect());
        self
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").field("filter", &self.filter).finish_non_exhaustive()
    }
}

impl Stream for EventStream {
    type Item = EventItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EventItem>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(ev))) => {
                    if let Some(f) = &self.filter
                        && !f.contains(&ev.kind.event_type())
                    {
                        continue;
                    }
                    return Poll::Ready(Some(EventItem::Event(ev)));
                }
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                    return Poll::Ready(Some(EventItem::Lagged(n)));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use futures::StreamExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_from_many_threads_arrive_in_sequence_order() {
        let bus = Arc::new(EventBus::new(1 << 17, Arc::new(crate::clock::SystemClock)));
        let mut stream = bus.subscribe();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let bus = bus.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        bus.emit(EventKind::SystemShutdown {});
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for want in 1..=80_000u64 {
            match stream.next().await.unwrap() {
                EventItem::Event(e) => assert_eq!(e.seq, want),
                EventItem::Lagged(n) => panic!("lagged by {n}"),
            }
        }
    }
}
