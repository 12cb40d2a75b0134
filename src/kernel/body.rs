//! Request bodies that are still being produced when the request is sent.
//!
//! PostgreSQL's `executemany` uses one: its caller hands the kernel the
//! first rows at once and encodes the rest while the server already works
//! on them, instead of encoding the whole batch before a byte leaves.
//!
//! A connection writes a body's chunks right after its request's own bytes,
//! in order, and holds back the bytes of requests queued behind it until the
//! body ends, so nothing interleaves with it on the wire. A producer that
//! stops without `finish` (its caller's encoding failed) leaves a request
//! the server has only partly received; the kernel then writes the body's
//! `on_abandon` bytes, chosen by the protocol glue so that the server ends
//! that request cleanly, or resets the connection when there are none.
//!
//! Flow control: the connection takes a chunk only while less than
//! `OUT_HIGH` bytes wait to be written, and `BodyTx::queued` tells the
//! producer how many bytes it has sent that the connection has not taken
//! yet, so a producer faster than the network can wait instead of filling
//! memory (`queued`, `is_closed`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

/// The connection takes no more of a body while this much waits to be
/// written to the socket.
pub(crate) const OUT_HIGH: usize = 1 << 20;

pub(crate) enum Chunk {
    More(Bytes),
    Last(Bytes),
}

/// The producer's end, usable from any thread.
pub struct BodyTx {
    tx: mpsc::UnboundedSender<Chunk>,
    queued: Arc<AtomicUsize>,
}

impl BodyTx {
    /// Queue a chunk. False when the request is gone (its connection
    /// closed): the producer can stop.
    pub fn send(&self, chunk: Bytes) -> bool {
        let n = chunk.len();
        self.queued.fetch_add(n, Ordering::Relaxed);
        let ok = self.tx.send(Chunk::More(chunk)).is_ok();
        if !ok {
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
        ok
    }

    /// Bytes sent that the connection has not taken yet.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The request is gone (its connection closed): stop producing.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queue the last chunk: the request is complete.
    pub fn finish(self, last: Bytes) {
        let _ = self.tx.send(Chunk::Last(last));
    }
}

/// The kernel's end, carried by the `Request`.
pub struct Body {
    pub(crate) rx: mpsc::UnboundedReceiver<Chunk>,
    pub(crate) on_abandon: Option<Bytes>,
    pub(crate) queued: Arc<AtomicUsize>,
}

/// A body and its producer. `on_abandon`: what to write if the producer is
/// dropped before `finish` (None: reset the connection instead).
pub fn channel(on_abandon: Option<Bytes>) -> (BodyTx, Body) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        BodyTx {
            tx,
            queued: queued.clone(),
        },
        Body {
            rx,
            on_abandon,
            queued,
        },
    )
}
