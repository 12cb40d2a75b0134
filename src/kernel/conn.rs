//! One connection: coalesced writes, in-order reply matching, deadlines.
//!
//! Requests are appended to `out` and to `waiters` in the same step, so the
//! order of bytes on the wire is the order of waiters. The writer task writes
//! everything appended since its last write in one call. The reader decodes
//! messages and feeds them to the waiter at the head of the queue. A waiter
//! whose caller gave up (timed out, cancelled) keeps its place: its reply is
//! read and dropped, so replies never shift onto another caller.
//!
//! A request with a `Body` (bytes still being produced) is written head
//! first, then its chunks as they arrive; requests pushed meanwhile are
//! encoded at once but held back (`held`) until the body ends, so the wire
//! order is still the order of waiters.
//!
//! Deadlines: when a waiter's deadline passes its caller gets `TimeoutError`
//! at once and the waiter stays as a placeholder; its late reply is read and
//! dropped, and nobody else is disturbed. If the request at the *head* is
//! overdue and stays silent for `CANCEL_SILENCE`, a protocol that can cancel
//! out of band (PostgreSQL) is asked to, so the server stops working on it
//! and moves on to the requests behind. If the server then still sends
//! nothing for `STALL_GRACE`, it is considered stalled: the connection is
//! reset (the requests behind get `ConnectionError`) and the service
//! reconnects.
//!
//! Bytes arriving do not keep an overdue head alive for ever: a reply header
//! that claims more than the server really sends (`$536870000` from a broken
//! proxy) swallows the replies behind it as its payload, and callers who
//! retry keep the bytes flowing. So while requests wait behind an overdue
//! head, the head is cancelled `CANCEL_SILENCE` after it became overdue and
//! the connection is reset after `STALL_GRACE`, bytes or not: nobody wants
//! the head's reply any more, and the requests behind it are being hurt.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::body::{Body, Chunk};
use super::stats::{AddrMetrics, ServiceMetrics};
use super::{Completion, Feed, KernelError, Protocol, Request};

/// How long a server may stay silent after the request at the head of the
/// queue timed out before the connection is declared stalled and reset. A
/// caller's timeout alone never disturbs the requests behind it.
pub const STALL_GRACE: Duration = Duration::from_secs(1);

/// How long an overdue head must stay silent before it is cancelled out of
/// band (`Protocol::cancel_request`). A request that is about to finish sends
/// bytes within this time; one still executing sends nothing. Cancelling only
/// silent heads keeps the cancel from landing on the next request, which the
/// server would otherwise abort instead (it cancels whatever is running).
pub const CANCEL_SILENCE: Duration = Duration::from_millis(250);

/// The head of the queue is overdue: when to cancel it, when to give up.
///
/// Alone on the connection, the head may take its time as long as bytes
/// keep coming (a large reply): cancel after `CANCEL_SILENCE` of silence,
/// reset after `STALL_GRACE` more. With requests waiting behind it, bytes
/// do not buy time: cancel at `CANCEL_SILENCE` after it became overdue and
/// reset at `STALL_GRACE`, since nobody wants its reply and they do.
#[derive(Clone, Copy)]
struct Stall {
    seq: u64,
    /// When the head was found overdue.
    since: Instant,
    /// When bytes last arrived (or `since`).
    heard: Instant,
    cancelled: bool,
}

impl Stall {
    fn new(seq: u64, now: Instant) -> Self {
        Stall {
            seq,
            since: now,
            heard: now,
            cancelled: false,
        }
    }
    fn cancel_at(&self, behind: bool) -> Option<Instant> {
        let from = if behind { self.since } else { self.heard };
        (!self.cancelled).then_some(from + CANCEL_SILENCE)
    }
    fn reset_at(&self, behind: bool) -> Instant {
        let silent = self.heard + CANCEL_SILENCE + STALL_GRACE;
        if behind {
            silent.min(self.since + STALL_GRACE)
        } else {
            silent
        }
    }
    fn next(&self, behind: bool) -> Instant {
        let reset = self.reset_at(behind);
        self.cancel_at(behind).map_or(reset, |c| c.min(reset))
    }
    /// Why the connection is reset.
    fn error(&self, addr: &Addr, behind: usize) -> KernelError {
        let grace = STALL_GRACE.as_secs_f64();
        KernelError::connection(if self.heard == self.since {
            format!(
                "{addr}: the server sent nothing for {grace}s after a request timed out; it looks stalled, so \
                 the connection was reset (requests behind it could not be answered)"
            )
        } else {
            format!(
                "{addr}: the reply to a request that timed out was still incomplete {grace}s later while \
                 {behind} request(s) waited behind it, so the connection was reset (they could not be \
                 answered). A reply longer than its header claimed (a corrupting proxy?) or one far larger \
                 than expected does this; raise timeout= for large values"
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    Tcp(String, u16),
    Unix(PathBuf),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Addr::Tcp(h, p) => write!(f, "{h}:{p}"),
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

pub type Reader = Box<dyn AsyncRead + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Unpin>;

fn set_keepalive(fd: i32) {
    let on: libc::c_int = 1;
    let idle: libc::c_int = 30;
    let intvl: libc::c_int = 5;
    let cnt: libc::c_int = 3;
    let sz = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt on a valid socket fd with pointers to live c_ints.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&on as *const libc::c_int).cast(),
            sz,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPIDLE,
            (&idle as *const libc::c_int).cast(),
            sz,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            (&intvl as *const libc::c_int).cast(),
            sz,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPCNT,
            (&cnt as *const libc::c_int).cast(),
            sz,
        );
    }
}

/// Open a socket to `addr` (no handshake).
pub async fn open(addr: &Addr) -> std::io::Result<(Reader, Writer)> {
    match addr {
        Addr::Tcp(host, port) => {
            let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            s.set_nodelay(true)?;
            set_keepalive(s.as_raw_fd());
            let (r, w) = s.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        Addr::Unix(path) => {
            let s = tokio::net::UnixStream::connect(path).await?;
            let (r, w) = s.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
    }
}

/// What a protocol's handshake gets: send bytes, read whole messages.
pub struct HandshakeIo<'a, P: Protocol> {
    pub proto: &'a P,
    pub addr: &'a Addr,
    pub state: &'a mut P::ConnState,
    reader: &'a mut Reader,
    writer: &'a mut Writer,
    buf: &'a mut BytesMut,
}

impl<P: Protocol> HandshakeIo<'_, P> {
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), KernelError> {
        let addr = self.addr;
        self.writer.write_all(bytes).await.map_err(|e| {
            KernelError::connection(format!("{addr}: write failed during handshake: {e}"))
        })
    }

    /// The next message that is not unsolicited.
    pub async fn recv(&mut self) -> Result<P::Msg, KernelError> {
        loop {
            match self.proto.decode(self.state, self.buf) {
                Ok(Some(m)) if self.proto.is_unsolicited(&m) => continue,
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => return Err(KernelError::protocol(format!("{}: {e}", self.addr))),
            }
            let n = self.reader.read_buf(self.buf).await.map_err(|e| {
                KernelError::connection(format!("{}: read failed during handshake: {e}", self.addr))
            })?;
            if n == 0 {
                return Err(KernelError::connection(format!(
                    "{}: the server closed the connection during the handshake",
                    self.addr
                )));
            }
        }
    }
}

/// Connect and run the protocol handshake, all within `timeout`.
pub async fn connect<P: Protocol>(
    proto: &P,
    addr: &Addr,
    timeout: Duration,
) -> Result<Connected<P>, KernelError> {
    let work = async {
        let (mut r, mut w) = open(addr).await.map_err(|e| {
            KernelError::connection(format!("cannot connect to {} {addr}: {e}", proto.name()))
        })?;
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let mut state = P::ConnState::default();
        let mut io = HandshakeIo {
            proto,
            addr,
            state: &mut state,
            reader: &mut r,
            writer: &mut w,
            buf: &mut buf,
        };
        proto.handshake(&mut io).await?;
        Ok(Connected {
            reader: r,
            writer: w,
            buf,
            state,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(res) => res,
        Err(_) => Err(KernelError::connection(format!(
            "cannot connect to {} {addr}: no answer within {:.1}s (connect_timeout)",
            proto.name(),
            timeout.as_secs_f64()
        ))),
    }
}

/// A socket that finished its handshake.
pub struct Connected<P: Protocol> {
    pub reader: Reader,
    pub writer: Writer,
    /// Bytes read past the handshake.
    pub buf: BytesMut,
    pub state: P::ConnState,
}

struct Waiter<P: Protocol> {
    pending: P::Pending,
    completion: Completion,
    summary: super::Summary,
    submitted: Instant,
    deadline: Option<Instant>,
    written: Option<Instant>,
    got_first_byte: bool,
    /// Past its deadline (its caller already got `TimeoutError`).
    expired: bool,
    /// Keeps the service's outstanding count until the reply is consumed.
    _guard: Option<super::service::Outstanding>,
}

struct Inner<P: Protocol> {
    out: BytesMut,
    waiters: VecDeque<Waiter<P>>,
    /// Sequence number of `waiters[0]`.
    front_seq: u64,
    /// Sequence number of the first waiter not yet handed to the writer.
    unwritten: u64,
    state: P::ConnState,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// A request body is being written to `out`.
    streaming: bool,
    /// Requests pushed while a body streams, in order, not yet in `out`.
    held: VecDeque<Held>,
}

/// Bytes of requests queued behind a streaming body, starting with waiter
/// `first_seq`; if the last of them has a body of its own, it comes next.
struct Held {
    first_seq: u64,
    bytes: BytesMut,
    body: Option<Body>,
}

/// A live connection, shared (on the kernel thread) by its service and tasks.
pub struct Conn<P: Protocol> {
    pub id: u64,
    pub addr: Addr,
    inner: RefCell<Inner<P>>,
    wake_writer: Notify,
    wake_reader: Notify,
    closed: Cell<bool>,
    pub last_activity: Cell<Instant>,
    /// When the read that is being decoded arrived (first-byte stamps).
    last_read: Cell<Instant>,
    pub dedicated: bool,
    opened: Instant,
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    metrics: Arc<ServiceMetrics>,
    am: AddrMetrics,
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
            inner: RefCell::new(Inner {
                out: BytesMut::with_capacity(16 * 1024),
                waiters: VecDeque::new(),
                front_seq: 0,
                unwritten: 0,
                state,
                deadlines: BinaryHeap::new(),
                streaming: false,
                held: VecDeque::new(),
            }),
            wake_writer: Notify::new(),
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
        guard: Option<super::service::Outstanding>,
    ) {
        let mut g = self.inner.borrow_mut();
        let g = &mut *g;
        let seq = g.front_seq + g.waiters.len() as u64;
        let deadline = req.deadline.map(Instant::from_std);
        if let Some(d) = deadline {
            let earlier = g.deadlines.peek().is_none_or(|Reverse((e, _))| d < *e);
            g.deadlines.push(Reverse((d, seq)));
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
            expired: false,
            _guard: guard,
        });
        self.metrics.in_flight.add(1.0);
        self.wake_writer.notify_one();
        if let Some(b) = start {
            tokio::task::spawn_local(stream_body(self.clone(), b));
        }
    }

    /// Write a request again (`Feed::Retry`) at the back of the queue, with
    /// its original deadline, unless nobody waits for it any more (an
    /// expired waiter's completion was already taken).
    fn retry(self: &Rc<Self>, proto: &P, w: Waiter<P>) {
        self.metrics.in_flight.add(-1.0);
        if w.completion.is_none() {
            return;
        }
        let req = Request {
            payload: bytes::Bytes::new(),
            pending: w.pending,
            completion: w.completion,
            deadline: w.deadline.map(Instant::into_std),
            route: super::Route::Shared,
            submitted: w.submitted.into_std(),
            summary: w.summary,
            body: None,
        };
        self.push(proto, req, w._guard);
    }

    /// The streaming body ended: release the held requests up to the next
    /// body, if any, which starts streaming in turn.
    fn body_ended(self: &Rc<Self>) {
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
    fn finish(&self, w: Waiter<P>, outcome: super::Outcome) {
        self.metrics.in_flight.add(-1.0);
        if let (Ok(_), Some(t)) = (&outcome, w.written) {
            self.metrics.network.observe(t.elapsed().as_secs_f64());
        }
        drop(w._guard);
        w.completion.complete(outcome);
    }

    /// The writer took everything queued so far: stamp it written.
    fn mark_written(&self, n_bytes: usize) {
        let now = Instant::now();
        let mut g = self.inner.borrow_mut();
        let from = g.unwritten.saturating_sub(g.front_seq) as usize;
        // Requests held behind a streaming body are not on the wire yet.
        let upto = g
            .held
            .front()
            .map_or(g.front_seq + g.waiters.len() as u64, |h| h.first_seq);
        let n = upto.saturating_sub(g.front_seq) as usize;
        let mut waited = Vec::new();
        for w in g.waiters.iter_mut().take(n).skip(from) {
            w.written = Some(now);
            waited.push((now - w.submitted).as_secs_f64());
        }
        g.unwritten = g.unwritten.max(upto);
        drop(g);
        for q in waited {
            self.metrics.queue_wait.observe(q);
        }
        self.bytes_out.set(self.bytes_out.get() + n_bytes as u64);
        self.am.bytes_written.add(n_bytes as f64);
    }

    fn on_read(&self, n: usize) {
        self.bytes_in.set(self.bytes_in.get() + n as u64);
        self.am.bytes_read.add(n as f64);
        self.last_read.set(Instant::now());
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
        let (waiters, held) = {
            let mut g = self.inner.borrow_mut();
            (std::mem::take(&mut g.waiters), std::mem::take(&mut g.held))
        };
        drop(held); // their producers see the body gone
        for w in waiters {
            self.finish(w, Err(err.clone()));
        }
    }

    /// Give every waiter whose deadline passed a timeout. The waiter keeps
    /// its place (its reply will be read and dropped).
    fn expire(&self, now: Instant) {
        let mut expired = Vec::new();
        {
            let mut g = self.inner.borrow_mut();
            while let Some(Reverse((d, seq))) = g.deadlines.peek().copied() {
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
                        expired.push(std::mem::replace(&mut w.completion, Completion::none()));
                    }
                }
            }
        }
        for c in expired {
            c.complete(Err(KernelError::timeout(format!(
                "no reply from {} within the timeout; raise timeout= if the command is expected to be slow",
                self.addr
            ))));
        }
    }

    /// The head of the queue timed out: if the protocol can cancel it out of
    /// band, do so on a separate short-lived connection, so the server stops
    /// working on it and answers the requests behind it.
    fn cancel_head(&self, proto: &P) {
        let Some(bytes) = proto.cancel_request(&mut self.inner.borrow_mut().state) else {
            return;
        };
        let addr = self.addr.clone();
        tokio::task::spawn_local(async move {
            let send = async {
                let (mut r, mut w) = open(&addr).await.ok()?;
                w.write_all(&bytes).await.ok()?;
                let mut sink = [0u8; 64];
                let _ = r.read(&mut sink).await; // the server closes it when done
                Some(())
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), send).await;
        });
    }

    /// The sequence number of the head of the queue if it is past its deadline.
    fn head_expired(&self) -> Option<u64> {
        let g = self.inner.borrow();
        g.waiters.front().filter(|w| w.expired).map(|_| g.front_seq)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.inner
            .borrow()
            .deadlines
            .peek()
            .map(|Reverse((d, _))| *d)
    }

    /// Feed decoded bytes to waiters. Returns how many requests completed.
    fn on_bytes(self: &Rc<Self>, proto: &P, buf: &mut BytesMut) -> Result<usize, KernelError> {
        let mut done = 0;
        loop {
            let finished = {
                let mut g = self.inner.borrow_mut();
                let g = &mut *g;
                let msg = match proto.decode(&mut g.state, buf) {
                    Ok(Some(m)) => m,
                    Ok(None) => return Ok(done),
                    Err(e) => return Err(KernelError::protocol(format!("{}: {e}", self.addr))),
                };
                if proto.is_unsolicited(&msg) {
                    continue;
                }
                let Some(w) = g.waiters.front_mut() else {
                    return Err(KernelError::protocol(format!(
                        "{}: the server sent a reply nobody asked for; the connection was reset",
                        self.addr
                    )));
                };
                if !w.got_first_byte {
                    // Its first message arrived with the read being decoded.
                    w.got_first_byte = true;
                    if let Some(t) = w.written {
                        let d = self.last_read.get().saturating_duration_since(t);
                        self.metrics.first_byte.observe(d.as_secs_f64());
                    }
                }
                match proto.feed(&mut g.state, &mut w.pending, msg) {
                    Feed::More => None,
                    Feed::Done(reply) => {
                        let w = g.waiters.pop_front().expect("front exists");
                        g.front_seq += 1;
                        Some((w, Some(reply)))
                    }
                    Feed::Retry => {
                        let w = g.waiters.pop_front().expect("front exists");
                        g.front_seq += 1;
                        Some((w, None))
                    }
                    Feed::Fail(why) => {
                        return Err(KernelError::protocol(format!(
                            "{}: {why}; the connection was reset",
                            self.addr
                        )))
                    }
                }
            };
            match finished {
                Some((w, Some(reply))) => {
                    self.finish(w, Ok(reply));
                    done += 1;
                }
                Some((w, None)) => self.retry(proto, w),
                None => {}
            }
        }
    }
}

/// Run a connected socket until it fails or is closed. `on_progress` runs
/// after each batch of completed replies (the service uses it to move queued
/// requests in). Returns why the connection ended.
pub async fn run<P: Protocol>(
    conn: Rc<Conn<P>>,
    proto: &P,
    io: (Reader, Writer, BytesMut),
    idle_ping: Option<Duration>,
    on_progress: impl Fn(),
) -> KernelError {
    let (mut reader, writer, mut rbuf) = io;
    let wconn = conn.clone();
    let write_task = tokio::task::spawn_local(write_loop(wconn, writer));
    let reason = read_loop(
        &conn,
        proto,
        &mut reader,
        &mut rbuf,
        idle_ping,
        &on_progress,
    )
    .await;
    write_task.abort();
    conn.close(&reason);
    reason
}

/// Append a body's chunks to `out` as the producer sends them.
async fn stream_body<P: Protocol>(conn: Rc<Conn<P>>, mut body: Body) {
    loop {
        let chunk = body.rx.recv().await;
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

async fn write_loop<P: Protocol>(conn: Rc<Conn<P>>, mut w: Writer) {
    let mut spare = BytesMut::with_capacity(16 * 1024);
    loop {
        if conn.is_closed() {
            return;
        }
        let took = {
            let mut g = conn.inner.borrow_mut();
            let took = !g.out.is_empty();
            if took {
                std::mem::swap(&mut g.out, &mut spare);
            }
            took
        };
        if !took {
            conn.wake_writer.notified().await;
            continue;
        }
        conn.mark_written(spare.len());
        if let Err(e) = w.write_all(&spare).await {
            let err = KernelError::connection(format!("{}: write failed: {e}", conn.addr));
            conn.close(&err);
            return;
        }
        spare.clear();
    }
}

async fn read_loop<P: Protocol>(
    conn: &Rc<Conn<P>>,
    proto: &P,
    reader: &mut Reader,
    rbuf: &mut BytesMut,
    idle_ping: Option<Duration>,
    on_progress: &impl Fn(),
) -> KernelError {
    let far = Instant::now() + Duration::from_secs(86400 * 365);
    let mut timer = pin!(tokio::time::sleep_until(far));
    let mut armed = far;
    // Set while the request at the head of the queue is past its deadline.
    let mut stall: Option<Stall> = None;
    // Anything already buffered after the handshake.
    if let Err(e) = conn.on_bytes(proto, rbuf) {
        return e;
    }
    loop {
        if conn.is_closed() {
            return KernelError::connection(format!("{}: connection closed", conn.addr));
        }
        stall = match (conn.head_expired(), stall) {
            (Some(seq), Some(st)) if st.seq == seq => Some(st),
            (Some(seq), _) => Some(Stall::new(seq, Instant::now())),
            (None, _) => None,
        };
        // Heartbeat only an idle connection; busy ones prove liveness by replies.
        let ping_at = idle_ping
            .filter(|_| conn.in_flight() == 0)
            .map(|p| conn.last_activity.get() + p);
        let behind = conn.in_flight() > 1;
        let want = [conn.next_deadline(), ping_at, stall.map(|s| s.next(behind))]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(far);
        if want != armed {
            timer.as_mut().reset(want);
            armed = want;
        }
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(16 * 1024);
        }
        tokio::select! {
            biased;
            r = reader.read_buf(rbuf) => match r {
                Ok(0) => return KernelError::connection(format!(
                    "{}: the server closed the connection", conn.addr)),
                Ok(n) => {
                    let now = Instant::now();
                    conn.last_activity.set(now);
                    conn.on_read(n);
                    // Bytes are arriving: whatever is slow is not stalled.
                    if let Some(st) = stall.as_mut() {
                        st.heard = now;
                    }
                    match conn.on_bytes(proto, rbuf) {
                        Ok(n) if n > 0 => on_progress(),
                        Ok(_) => {}
                        Err(e) => return e,
                    }
                }
                Err(e) => return KernelError::connection(format!("{}: read failed: {e}", conn.addr)),
            },
            _ = conn.wake_reader.notified() => {}
            _ = &mut timer => {
                armed = far;
                timer.as_mut().reset(far);
                let now = Instant::now();
                conn.expire(now);
                if let Some(st) = stall.as_mut() {
                    if conn.head_expired() == Some(st.seq) {
                        let behind = conn.in_flight() - 1;
                        if st.cancel_at(behind > 0).is_some_and(|c| now >= c) {
                            st.cancelled = true;
                            conn.cancel_head(proto);
                        }
                        if now >= st.reset_at(behind > 0) {
                            return st.error(&conn.addr, behind);
                        }
                    }
                }
                if let Some(p) = idle_ping {
                    if conn.in_flight() == 0 && now >= conn.last_activity.get() + p {
                        if let Some((bytes, pending)) = proto.heartbeat() {
                            conn.last_activity.set(now);
                            conn.push(proto, Request {
                                payload: bytes,
                                pending,
                                completion: Completion::none(),
                                deadline: Some((now + p).into_std()),
                                route: super::Route::Shared,
                                submitted: now.into_std(),
                                summary: super::Summary::new(b"HEARTBEAT"),
                                body: None,
                            }, None);
                        }
                    }
                }
            }
        }
    }
}
