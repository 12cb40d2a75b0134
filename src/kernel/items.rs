//! Multi-shot delivery: a stream of items from the kernel to one consumer.
//!
//! A `Completion` delivers one outcome. Some replies come in parts — rows of
//! a big result, chunks of an HTTP body — and some messages nobody asked for
//! — pub/sub messages, cache invalidations, NOTIFY. Those go into `Items`:
//! a bounded buffer the kernel pushes to and one consumer takes from, either
//! a blocking thread (`next`, GIL released by the caller) or an asyncio
//! loop, which is woken through its completion queue with a marker under
//! the stream's token when the buffer goes from empty to non-empty (one
//! wake-up per burst, as for single replies).
//!
//! Backpressure: `push` never drops an item, but says when the buffer holds
//! `capacity` items; the connection then stops reading until `room()`
//! resolves (the consumer took some, or went away). A stream ends with
//! `end(outcome)`: the last item (or the error that ended it); after that
//! `next` reports the end.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::completion::{Completion, CompletionQueue, Outcome, Parts};

/// What the consumer gets from `next`.
pub enum Next {
    Item(Outcome),
    /// The stream ended and every item was taken.
    Ended,
    /// Nothing arrived within the wait.
    Empty,
}

/// The marker an asyncio consumer's queue receives under the stream's token:
/// items are waiting (take them with `try_next`).
pub struct ItemsReady;

#[derive(Default)]
struct Inner {
    buf: VecDeque<Outcome>,
    ended: bool,
    /// The consumer went away: the kernel stops waiting for room.
    closed: bool,
    /// A wake-up marker is on its way to the asyncio consumer.
    woken: bool,
}

pub struct Items {
    inner: Mutex<Inner>,
    ready: Condvar,
    room: tokio::sync::Notify,
    capacity: usize,
    wake: Option<(Arc<CompletionQueue>, u64)>,
}

impl Items {
    /// A stream for a blocking consumer.
    pub fn new(capacity: usize) -> Arc<Self> {
        Self::make(capacity, None)
    }

    /// A stream for an asyncio consumer whose loop drains `queue`.
    pub fn with_queue(capacity: usize, queue: Arc<CompletionQueue>, token: u64) -> Arc<Self> {
        Self::make(capacity, Some((queue, token)))
    }

    fn make(capacity: usize, wake: Option<(Arc<CompletionQueue>, u64)>) -> Arc<Self> {
        Arc::new(Items {
            inner: Mutex::new(Inner::default()),
            ready: Condvar::new(),
            room: tokio::sync::Notify::new(),
            capacity: capacity.max(1),
            wake,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Kernel side: add an item. Returns false when the buffer is full (or
    /// the stream ended): stop reading until `room()`.
    pub fn push(&self, item: Outcome) -> bool {
        let mut g = self.lock();
        if g.ended || g.closed {
            return !g.ended; // nobody will take it; never hold a reader up
        }
        g.buf.push_back(item);
        let room = g.buf.len() < self.capacity;
        self.wake_consumer(g);
        room
    }

    /// Kernel side: the last item; the stream ends after it.
    pub fn end(&self, last: Outcome) {
        let mut g = self.lock();
        if g.ended {
            return;
        }
        g.ended = true;
        if !g.closed {
            g.buf.push_back(last);
        }
        self.wake_consumer(g);
    }

    fn wake_consumer(&self, mut g: std::sync::MutexGuard<'_, Inner>) {
        let marker = match &self.wake {
            Some(w) if !g.woken => {
                g.woken = true;
                Some(w.clone())
            }
            _ => None,
        };
        drop(g);
        self.ready.notify_one();
        if let Some((q, token)) = marker {
            Completion::queue(q, token).complete(Ok(Box::new(ItemsReady)));
        }
    }

    /// Kernel side: resolves when the consumer has made room (or is gone).
    pub async fn room(&self) {
        loop {
            let notified = self.room.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let g = self.lock();
                if g.closed || g.buf.len() < self.capacity {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Consumer side: the next item without waiting.
    pub fn try_next(&self) -> Next {
        let mut g = self.lock();
        let out = match g.buf.pop_front() {
            Some(item) => Next::Item(item),
            None if g.ended => Next::Ended,
            None => {
                g.woken = false; // the next push wakes the loop again
                Next::Empty
            }
        };
        let room = matches!(out, Next::Item(_)) && g.buf.len() < self.capacity;
        drop(g);
        if room {
            self.room.notify_waiters();
        }
        out
    }

    /// Consumer side: wait up to `max` for the next item.
    pub fn next(&self, max: Duration) -> Next {
        let end = Instant::now() + max;
        loop {
            match self.try_next() {
                Next::Empty => {}
                other => return other,
            }
            let g = self.lock();
            let now = Instant::now();
            if now >= end {
                return Next::Empty;
            }
            if g.buf.is_empty() && !g.ended {
                drop(
                    self.ready
                        .wait_timeout(g, end - now)
                        .unwrap_or_else(|e| e.into_inner()),
                );
            }
        }
    }

    /// Consumer side: stop the stream; items not taken are dropped and the
    /// kernel no longer waits for room.
    pub fn close(&self) {
        let mut g = self.lock();
        g.closed = true;
        g.buf.clear();
        drop(g);
        self.room.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.lock().buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Parts for Items {
    fn push(&self, part: Outcome) -> bool {
        Items::push(self, part)
    }
    fn end(&self, last: Outcome) {
        Items::end(self, last)
    }
    fn room(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(Items::room(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(items: &Items) -> Option<u32> {
        match items.try_next() {
            Next::Item(Ok(r)) => Some(*r.downcast::<u32>().unwrap()),
            _ => None,
        }
    }

    #[test]
    fn push_reports_full_and_room_follows_the_consumer() {
        let items = Items::new(2);
        assert!(items.push(Ok(Box::new(1u32))));
        assert!(!items.push(Ok(Box::new(2u32))), "full at capacity");
        assert!(!items.push(Ok(Box::new(3u32))), "never dropped, still full");
        assert_eq!(take(&items), Some(1));
        assert_eq!(take(&items), Some(2));
        assert_eq!(take(&items), Some(3));
        assert!(matches!(items.try_next(), Next::Empty));
        items.end(Ok(Box::new(4u32)));
        assert_eq!(take(&items), Some(4));
        assert!(matches!(items.try_next(), Next::Ended));
    }

    #[test]
    fn asyncio_consumer_gets_one_marker_per_burst() {
        let q = CompletionQueue::new().unwrap();
        let items = Items::with_queue(8, q.clone(), 7);
        items.push(Ok(Box::new(1u32)));
        items.push(Ok(Box::new(2u32)));
        let got = q.drain();
        assert_eq!(got.len(), 1, "one marker for two items");
        assert_eq!(got[0].token, 7);
        assert_eq!(take(&items), Some(1));
        assert_eq!(take(&items), Some(2));
        assert!(matches!(items.try_next(), Next::Empty));
        items.push(Ok(Box::new(3u32)));
        assert_eq!(q.drain().len(), 1, "emptied, so the next push wakes again");
    }

    #[test]
    fn blocking_consumer_waits_for_items_and_sees_the_end() {
        let items = Items::new(4);
        let producer = {
            let items = items.clone();
            std::thread::spawn(move || {
                items.push(Ok(Box::new(1u32)));
                items.end(Ok(Box::new(2u32)));
            })
        };
        let mut seen = Vec::new();
        loop {
            match items.next(Duration::from_secs(10)) {
                Next::Item(Ok(r)) => seen.push(*r.downcast::<u32>().unwrap()),
                Next::Item(Err(e)) => panic!("{e}"),
                Next::Ended => break,
                Next::Empty => panic!("nothing within 10 s"),
            }
        }
        producer.join().unwrap();
        assert_eq!(seen, vec![1, 2]);
    }

    #[test]
    fn a_closed_consumer_never_holds_the_kernel_up() {
        let items = Items::new(1);
        assert!(!items.push(Ok(Box::new(1u32))));
        items.close();
        assert!(items.push(Ok(Box::new(2u32))), "dropped, and room reported");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(items.room());
    }
}
