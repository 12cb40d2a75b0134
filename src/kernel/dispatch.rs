//! The dispatcher of one connection: who waits for which reply.
//!
//! Requests are appended to `out` and to `waiters` in the same step, so the
//! order of bytes on the wire is the order of waiters. The reader (in
//! `conn`) decodes messages and `on_bytes` feeds them to the waiter at the
//! head of the queue. A waiter whose caller gave up (timed out, cancelled)
//! keeps its place: its reply is read and dropped, so replies never shift
//! onto another caller.
//!
//! A request with a `Body` (bytes still being produced) is written head
//! first, then its chunks as they arrive; requests pushed meanwhile are
//! encoded at once but held back (`held`) until the body ends, so the wire
//! order is still the order of waiters.
//!
//! Deadlines: when a waiter's deadline passes its caller gets `TimeoutError`
//! at once and the waiter stays as a placeholder (`expire`); what happens to
//! a connection whose overdue head holds others up is `conn`'s stall rule.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

mod batch;
mod deadlines;
mod feed;
mod lost;

pub use feed::Redirected;

use super::body::{Body, Chunk};
use super::items::Items;
use super::stats::{AddrMetrics, ServiceMetrics};
use super::transport::{Addr, Connector};
use super::{Completion, KernelError, Protocol, Reason, Request, Stage};

pub(super) struct Waiter<P: Protocol> {
    pending: P::Pending,
    completion: Completion,
    summary: super::Summary,
    submitted: Instant,
    deadline: Option<Instant>,
    written: Option<Instant>,
    got_first_byte: bool,
    /// Parts of its reply were delivered to its caller (`Feed::Item`): it
    /// can never be sent again (the caller would get them twice).
    parted: bool,
    /// Past its deadline (its caller already got `TimeoutError`).
    expired: bool,
    /// What it was sent with, to send it again elsewhere if its connection
    /// is lost (`take_lost`); `None` if it had a body (not replayable).
    resend: Option<(bytes::Bytes, super::Route)>,
    /// Times it was sent again after a lost connection (`Request::resends`).
    resends: u8,
    /// Keeps the service's outstanding count until the reply is consumed.
    _guard: Option<super::stats::Outstanding>,
}

pub(super) struct Inner<P: Protocol> {
    pub(super) out: BytesMut,
    waiters: VecDeque<Waiter<P>>,
    /// Sequence number of `waiters[0]`.
    front_seq: u64,
    /// Sequence number of the first waiter not yet handed to the writer.
    unwritten: u64,
    pub(super) state: P::ConnState,
    deadlines: deadlines::Deadlines,
    /// A request body is being written to `out`.
    streaming: bool,
    /// Requests pushed while a body streams, in order, not yet in `out`.
    held: VecDeque<Held>,
}

/// Bytes of requests queued behind a streaming body, starting with waiter
/// `first_seq`; if the last of them has a body of its own, it comes next.
pub(super) struct Held {
    first_seq: u64,
    bytes: BytesMut,
    body: Option<Body>,
}

/// A live connection, shared (on the kernel thread) by its service and tasks.
pub struct Conn<P: Protocol> {
    pub id: u64,
    pub addr: Addr,
    pub(super) inner: RefCell<Inner<P>>,
    pub(super) wake_writer: Notify,
    pub(super) wake_reader: Notify,
    /// The writer wrote what was waiting (a body's producer may go on).
    pub(super) drained: Notify,
    pub(super) closed: Cell<bool>,
    pub last_activity: Cell<Instant>,
    /// When the read that is being decoded arrived (first-byte stamps).
    pub(super) last_read: Cell<Instant>,
    pub dedicated: bool,
    opened: Instant,
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    metrics: Arc<ServiceMetrics>,
    am: AddrMetrics,
    /// Opens the out-of-band cancel's connection.
    connector: Arc<dyn Connector>,
    /// Where server pushes go (`subscribe`); dropped when unset.
    sink: RefCell<Option<Arc<Items>>>,
    /// Requests sent elsewhere by the server, for the service to route.
    redirects: RefCell<Vec<Redirected<P>>>,
    /// Waiters of a shared connection that closed, with its error, until
    /// `take_lost` decides which are sent again (see `retry`).
    lost: RefCell<Vec<(Waiter<P>, KernelError)>>,
    /// `Batch::replies`' buffer between reads (kept for its capacity).
    settled: RefCell<Vec<(Completion, super::Reply)>>,
}

impl<P: Protocol> Conn<P> {
    /// A connection for `addr` whose handshake left `state` (installed now,
    /// before any request can be pushed onto it).
    pub fn new(
        id: u64,
        addr: Addr,
        dedicated: bool,
        metrics: Arc<ServiceMetrics>,
        am: AddrMetrics,
        state: P::ConnState,
        connector: Arc<dyn Connector>,
    ) -> Rc<Self> {
        Rc::new(Conn {
            id,
            addr,
            dedicated,
            opened: Instant::now(),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            metrics,
            am,
            connector,
            sink: RefCell::new(None),
            redirects: RefCell::new(Vec::new()),
            lost: RefCell::new(Vec::new()),
            settled: RefCell::new(Vec::new()),
            inner: RefCell::new(Inner {
                out: BytesMut::with_capacity(16 * 1024),
                waiters: VecDeque::new(),
                front_seq: 0,
                unwritten: 0,
                state,
                deadlines: deadlines::Deadlines::default(),
                streaming: false,
                held: VecDeque::new(),
            }),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            wake_reader: Notify::new(),
            closed: Cell::new(false),
            last_activity: Cell::new(Instant::now()),
            last_read: Cell::new(Instant::now()),
        })
    }

    pub fn in_flight(&self) -> usize {
        self.inner.borrow().waiters.len()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Queue a request on this connection.
    pub fn push(
        self: &Rc<Self>,
        proto: &P,
        req: Request<P>,
        guard: Option<super::stats::Outstanding>,
    ) {
        let mut g = self.inner.borrow_mut();
        let g = &mut *g;
        let seq = g.front_seq + g.waiters.len() as u64;
        let deadline = req.deadline.map(Instant::from_std);
        if let Some(d) = deadline {
            let earlier = g.deadlines.peek().is_none_or(|(e, _)| d < e);
            g.deadlines.push(d, seq);
            if earlier {
                self.wake_reader.notify_one();
            }
        }
        if g.waiters.front().is_some_and(|w| w.expired) {
            // Someone now waits behind an overdue head: the reader's stall
            // limit applies (see `Stall::limit_at`).
            self.wake_reader.notify_one();
        }
        let mut pending = req.pending;
        let mut start = None;
        let replayable = req.body.is_none();
        if g.streaming {
            if g.held.back().is_none_or(|h| h.body.is_some()) {
                g.held.push_back(Held {
                    first_seq: seq,
                    bytes: BytesMut::new(),
                    body: None,
                });
            }
            let h = g.held.back_mut().expect("just ensured");
            proto.write_request(&mut g.state, &mut pending, &req.payload, &mut h.bytes);
            h.body = req.body;
        } else {
            proto.write_request(&mut g.state, &mut pending, &req.payload, &mut g.out);
            if let Some(b) = req.body {
                g.streaming = true;
                start = Some(b);
            }
        }
        g.waiters.push_back(Waiter {
            pending,
            completion: req.completion,
            summary: req.summary,
            submitted: Instant::from_std(req.submitted),
            deadline,
            written: None,
            got_first_byte: false,
            parted: false,
            expired: false,
            resend: replayable.then_some((req.payload, req.route)),
            resends: req.resends,
            _guard: guard,
        });
        self.metrics.in_flight.add(1.0);
        self.wake_writer.notify_one();
        if let Some(b) = start {
            tokio::task::spawn_local(stream_body(self.clone(), b));
        }
    }

    /// The request of a waiter that left the queue unanswered, rebuilt to
    /// be written again (`Feed::Retry`, `Feed::Redirect`) with its original
    /// deadline — unless nobody waits for it any more (an expired waiter's
    /// completion was already taken).
    fn unanswered(&self, w: Waiter<P>) -> Option<(Request<P>, Option<super::stats::Outstanding>)> {
        self.metrics.in_flight.add(-1.0);
        if w.completion.is_none() {
            return None;
        }
        let (payload, route) = w
            .resend
            .unwrap_or((bytes::Bytes::new(), super::Route::Shared));
        let req = Request {
            payload,
            pending: w.pending,
            completion: w.completion,
            deadline: w.deadline.map(Instant::into_std),
            route,
            submitted: w.submitted.into_std(),
            summary: w.summary,
            body: None,
            resends: w.resends,
        };
        Some((req, w._guard))
    }

    /// The streaming body ended: release the held requests up to the next
    /// body, if any, which starts streaming in turn.
    pub(super) fn body_ended(self: &Rc<Self>) {
        let mut g = self.inner.borrow_mut();
        g.streaming = false;
        let mut next = None;
        while let Some(h) = g.held.pop_front() {
            g.out.extend_from_slice(&h.bytes);
            if let Some(b) = h.body {
                g.streaming = true;
                next = Some(b);
                break;
            }
        }
        drop(g);
        self.wake_writer.notify_one();
        if let Some(b) = next {
            tokio::task::spawn_local(stream_body(self.clone(), b));
        }
    }

    /// Complete a waiter that left the queue, giving the service's
    /// outstanding slot back first so that a woken caller never sees its own
    /// request still counted.
    ///
    /// An error learns here where the request got to (`Stage`): written or
    /// not, from this waiter's own stamp.
    fn finish(&self, w: Waiter<P>, mut outcome: super::Outcome) {
        self.metrics.in_flight.add(-1.0);
        // The endpoint's share: heartbeats and replies to callers that
        // already timed out (counted then) only feed the latency estimate.
        let counted = !w.expired && !w.completion.is_none();
        let health = &self.am.health;
        let now = Instant::now();
        match &mut outcome {
            Ok(_) => {
                if let Some(t) = w.written {
                    let rtt = now - t;
                    let secs = rtt.as_secs_f64();
                    self.metrics.network.observe(secs);
                    if counted {
                        self.am.latency.observe(secs);
                        health.ok(rtt, now);
                    } else {
                        health.latency.observe(secs, now);
                    }
                }
            }
            Err(e) => {
                if e.stage != Stage::Answered {
                    e.stage = if w.written.is_some() {
                        Stage::Written
                    } else {
                        Stage::NotSent
                    };
                }
                if counted {
                    self.am.errors.add(1.0);
                    health.failed(e.kind, &e.detail, w.written.map(|t| now - t), now);
                }
            }
        }
        if counted {
            self.am.requests.add(1.0);
        }
        drop(w._guard);
        w.completion.complete_at(outcome, now.into_std());
    }

    /// The writer took everything queued so far: stamp it written.
    pub(super) fn mark_written(&self, n_bytes: usize) {
        let now = Instant::now();
        let mut g = self.inner.borrow_mut();
        let from = g.unwritten.saturating_sub(g.front_seq) as usize;
        // Requests held behind a streaming body are not on the wire yet.
        let upto = g
            .held
            .front()
            .map_or(g.front_seq + g.waiters.len() as u64, |h| h.first_seq);
        let n = upto.saturating_sub(g.front_seq) as usize;
        for w in g.waiters.iter_mut().take(n).skip(from) {
            w.written = Some(now);
            let waited = now.saturating_duration_since(w.submitted);
            self.metrics.queue_wait.observe(waited.as_secs_f64());
        }
        g.unwritten = g.unwritten.max(upto);
        drop(g);
        self.bytes_out.set(self.bytes_out.get() + n_bytes as u64);
        self.am.bytes_written.add(n_bytes as f64);
        self.metrics.writes.add(1.0);
    }

    /// Requests written and not answered yet, and the bytes read so far
    /// (the writer's hold, `conn::Hold`).
    pub(super) fn unanswered_and_read(&self) -> (u64, u64) {
        let g = self.inner.borrow();
        let upto = g.unwritten.min(g.front_seq + g.waiters.len() as u64);
        (upto.saturating_sub(g.front_seq), self.bytes_in.get())
    }

    pub(super) fn on_read(&self, n: usize, now: Instant) {
        self.bytes_in.set(self.bytes_in.get() + n as u64);
        self.am.bytes_read.add(n as f64);
        self.last_read.set(now);
    }

    /// For `/status`.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "address": self.addr.to_string(),
            "dedicated": self.dedicated,
            "in_flight": self.in_flight(),
            "age_s": self.opened.elapsed().as_secs_f64(),
            "bytes_in": self.bytes_in.get(),
            "bytes_out": self.bytes_out.get(),
        })
    }

    /// For `/inflight`: each request waiting on this connection.
    pub fn inflight(&self, service: &str, out: &mut Vec<serde_json::Value>, max: usize) {
        let now = Instant::now();
        for w in self.inner.borrow().waiters.iter() {
            if out.len() >= max {
                return;
            }
            if w.completion.is_none() && !w.expired {
                continue; // heartbeats
            }
            out.push(serde_json::json!({
                "service": service,
                "address": self.addr.to_string(),
                "connection": self.id,
                "command": w.summary.as_str(),
                "age_ms": (now - w.submitted).as_secs_f64() * 1000.0,
                "written": w.written.is_some(),
                "timed_out": w.expired,
            }));
        }
    }

    /// Close: the tasks stop and every waiter gets `err`.
    pub fn close(&self, err: &KernelError) {
        self.closed.set(true);
        self.wake_reader.notify_one();
        self.wake_writer.notify_one();
        self.drained.notify_waiters();
        let (waiters, held) = {
            let mut g = self.inner.borrow_mut();
            (std::mem::take(&mut g.waiters), std::mem::take(&mut g.held))
        };
        drop(held); // their producers see the body gone
        if err.kind == super::ErrorKind::Connection {
            // The connection's `run` decides which are sent again (none of
            // a dedicated connection's) and what their callers are told.
            let mut lost = self.lost.borrow_mut();
            lost.extend(waiters.into_iter().map(|w| (w, err.clone())));
        } else {
            for w in waiters {
                let e = err.unknown_outcome(w.written.is_some());
                self.finish(w, Err(e));
            }
        }
        if let Some(sink) = self.sink.borrow_mut().take() {
            // Not the end of the subscription: a gap in it (pushes sent
            // while no connection is up are lost). The service re-subscribes.
            sink.push(Err(err.clone()));
        }
    }

    /// Hand this connection's server pushes to `sink` (see `Protocol::push`).
    pub fn subscribe(&self, sink: Arc<Items>) {
        *self.sink.borrow_mut() = Some(sink);
    }

    /// Requests a server sent elsewhere (`Feed::Redirect`) since last asked.
    pub(super) fn take_redirects(&self) -> Vec<Redirected<P>> {
        std::mem::take(&mut *self.redirects.borrow_mut())
    }

    /// Give every waiter whose deadline passed a timeout. The waiter keeps
    /// its place (its reply will be read and dropped).
    pub(super) fn expire(&self, now: Instant) {
        let mut expired = Vec::new();
        {
            let mut g = self.inner.borrow_mut();
            while let Some((d, seq)) = g.deadlines.peek() {
                if d > now {
                    break;
                }
                g.deadlines.pop();
                if seq < g.front_seq {
                    continue; // already answered
                }
                let idx = (seq - g.front_seq) as usize;
                if let Some(w) = g.waiters.get_mut(idx) {
                    w.expired = true;
                    if !w.completion.is_none() {
                        let stage = if w.written.is_some() {
                            Stage::Written
                        } else {
                            Stage::NotSent
                        };
                        expired.push((
                            std::mem::replace(&mut w.completion, Completion::none()),
                            stage,
                            w.written,
                        ));
                    }
                }
            }
        }
        for (c, stage, written) in expired {
            let e = KernelError::timeout(format!(
                "no reply from {} within the timeout; raise timeout= if the command is expected to be slow",
                self.addr
            ))
            .because(Reason::ReplyTimeout)
            .at(stage);
            self.am.requests.add(1.0);
            self.am.errors.add(1.0);
            self.am
                .health
                .failed(e.kind, &e.detail, written.map(|t| now - t), now);
            c.complete(Err(e));
        }
    }

    /// The head of the queue timed out: if the protocol can cancel it out of
    /// band, do so on a separate short-lived connection, so the server stops
    /// working on it and answers the requests behind it.
    pub(super) fn cancel_head(&self, proto: &P) {
        let (bytes, via) = {
            let mut g = self.inner.borrow_mut();
            (
                proto.cancel_request(&mut g.state),
                proto.cancel_connector(&g.state),
            )
        };
        let Some(bytes) = bytes else {
            return;
        };
        let opening = via.as_ref().unwrap_or(&self.connector).connect(&self.addr);
        tokio::task::spawn_local(async move {
            let send = async {
                let mut s = opening.await.ok()?;
                s.write_all(&bytes).await.ok()?;
                s.flush().await.ok()?;
                let mut sink = [0u8; 64];
                let _ = s.read(&mut sink).await; // the server closes it when done
                Some(())
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), send).await;
        });
    }

    /// The sequence number of the head of the queue if it is past its deadline.
    pub(super) fn head_expired(&self) -> Option<u64> {
        let g = self.inner.borrow();
        g.waiters.front().filter(|w| w.expired).map(|_| g.front_seq)
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.inner.borrow().deadlines.peek().map(|(d, _)| d)
    }
}

/// Append a body's chunks to `out` as the producer sends them.
async fn stream_body<P: Protocol>(conn: Rc<Conn<P>>, mut body: Body) {
    loop {
        // Flow control: take no more while the socket is behind.
        loop {
            let drained = conn.drained.notified();
            if conn.is_closed() || conn.inner.borrow().out.len() < crate::kernel::body::OUT_HIGH {
                break;
            }
            drained.await;
        }
        let chunk = body.rx.recv().await;
        if let Some(Chunk::More(b)) = &chunk {
            body.queued
                .fetch_sub(b.len(), std::sync::atomic::Ordering::Relaxed);
        }
        if conn.is_closed() {
            return;
        }
        let (bytes, last) = match chunk {
            Some(Chunk::More(b)) => (b, false),
            Some(Chunk::Last(b)) => (b, true),
            None => match body.on_abandon.take() {
                Some(b) => (b, true),
                None => {
                    conn.close(&KernelError::connection(format!(
                        "{}: a request's producer stopped before the request was complete; \
                         the connection was reset",
                        conn.addr
                    )));
                    return;
                }
            },
        };
        conn.inner.borrow_mut().out.extend_from_slice(&bytes);
        conn.wake_writer.notify_one();
        if last {
            conn.body_ended();
            return;
        }
    }
}
