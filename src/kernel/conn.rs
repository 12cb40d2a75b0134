//! One connection's I/O: the write loop (coalesced writes, request bodies)
//! and the read loop (decoding into the dispatcher, deadlines, heartbeats,
//! the stall rule). Who waits for what is `dispatch`; how the socket was
//! opened is `transport` and `handshake`.
//!
//! Over TLS, writes are coalesced (`Hold`): a TLS server takes one record
//! per turn of its event loop, so small writes would each cost it a turn
//! and a reply of their own.
//!
//! Stalls: if the request at the *head* is overdue and stays silent for
//! `CANCEL_SILENCE`, a protocol that can cancel out of band (PostgreSQL) is
//! asked to, so the server stops working on it and moves on to the requests
//! behind. If the server then still sends nothing for `STALL_GRACE`, it is
//! considered stalled: the connection is reset (the requests behind get
//! `ConnectionError`) and the service reconnects.
//!
//! Bytes arriving do not keep an overdue head alive for ever: a reply header
//! that claims more than the server really sends (`$536870000` from a broken
//! proxy) swallows the replies behind it as its payload, and callers who
//! retry keep the bytes flowing. So while requests wait behind an overdue
//! head, the head is cancelled `CANCEL_SILENCE` after it became overdue and
//! the connection is reset after `STALL_GRACE`, bytes or not: nobody wants
//! the head's reply any more, and the requests behind it are being hurt.

use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::completion::Parts;
use super::dispatch::{Conn, Redirected};
use super::transport::{Addr, Reader, Writer};
use super::{Completion, KernelError, Protocol, Reason, Request};

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
        lost(if self.heard == self.since {
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

/// New requests may wait a moment for the replies to those already
/// written, to go out together in one write (over TLS, one record).
///
/// Over TLS the server takes one record per turn (OpenSSL's `SSL_read`):
/// each small write costs it a turn, a decryption and a reply record of its
/// own, and on a busy machine that halves its batches. In plain text a
/// server reads everything that has arrived in one go, but every write that
/// finds it asleep still wakes it for a turn and a reply of its own, which
/// wakes the kernel thread to read it and the caller's loop to take it: on
/// a virtual machine, where waking a halted CPU costs tens of µs, fewer and
/// larger writes were worth 21 % more GETs from 50 asyncio tasks (58 %
/// under uvloop) with the same server. So while at least `min` written
/// requests are unanswered and no reply bytes have arrived since the last
/// write, the writer holds what is waiting — for at most `max` (measured
/// from the first request held, checked whenever a request arrives; a timer
/// backs it up) or until `bytes` are waiting (a full record). The first
/// reply bytes release it. With fewer than `min` unanswered, nothing waits:
/// a lone request, or a few, go out at once. TLS connections always hold;
/// plain-text ones when their protocol asks (`Protocol::hold_plain_writes`:
/// Redis; PostgreSQL's measured no better with it).
#[derive(Clone, Copy, Debug)]
pub struct Hold {
    pub min: u64,
    pub max: Duration,
    pub bytes: usize,
}

impl Hold {
    /// How a connection's writes are held: over TLS as above; in plain text
    /// the same when `plain` (the protocol's `hold_plain_writes`), else never.
    pub fn for_stream(tls: bool, plain: bool) -> Option<Hold> {
        (tls || plain).then_some(Hold {
            min: 4,
            max: Duration::from_micros(100),
            bytes: 16 * 1024,
        })
    }
}

/// A connected stream, as a connection runs on it: its halves, the bytes
/// read past the handshake, and how its writes are held (`Hold`).
pub struct Wire {
    pub reader: Reader,
    pub writer: Writer,
    pub buf: BytesMut,
    pub hold: Option<Hold>,
}

/// What a running connection tells its service.
pub trait Link<P: Protocol> {
    /// Replies completed: queued requests may move in.
    fn progress(&self);
    /// The server sent a request to another endpoint (`Feed::Redirect`).
    fn redirect(&self, r: Redirected<P>);
    /// A request of a lost connection to send again (`dispatch::lost`).
    /// Only shared connections have any.
    fn resend(&self, req: Request<P>, guard: Option<super::stats::Outstanding>);
    /// Every request of this service may be sent twice (`idempotent=True`).
    fn idempotent(&self) -> bool {
        false
    }
}

/// Run a connected socket until it fails or is closed, telling `link` of
/// progress and redirects. Returns why the connection ended.
pub async fn run<P: Protocol>(
    conn: Rc<Conn<P>>,
    proto: &P,
    io: Wire,
    idle_ping: Option<Duration>,
    link: &dyn Link<P>,
) -> KernelError {
    let Wire {
        mut reader,
        writer,
        buf: mut rbuf,
        hold,
    } = io;
    let wconn = conn.clone();
    let write_task = tokio::task::spawn_local(write_loop(wconn, writer, hold));
    let reason = read_loop(
        &conn,
        proto,
        &mut reader,
        &mut rbuf,
        idle_ping,
        link,
        hold.is_some(),
    )
    .await;
    write_task.abort();
    conn.close(&reason);
    for (req, guard) in conn.take_lost(proto, link.idempotent()) {
        link.resend(req, guard);
    }
    reason
}

async fn write_loop<P: Protocol>(conn: Rc<Conn<P>>, mut w: Writer, hold: Option<Hold>) {
    let mut spare = BytesMut::with_capacity(16 * 1024);
    // Bytes read when we last wrote, and since when requests are held.
    let mut read_at_write = 0;
    let mut held_since: Option<Instant> = None;
    loop {
        if conn.is_closed() {
            return;
        }
        let waiting = conn.inner.borrow().out.len();
        if waiting == 0 {
            conn.wake_writer.notified().await;
            continue;
        }
        if let Some(h) = hold.filter(|h| waiting < h.bytes) {
            let (unanswered, read) = conn.unanswered_and_read();
            if unanswered >= h.min && read == read_at_write {
                let now = Instant::now();
                let until = *held_since.get_or_insert(now) + h.max;
                if now < until {
                    tokio::select! {
                        _ = conn.wake_writer.notified() => {}
                        _ = tokio::time::sleep_until(until) => {}
                    }
                    continue;
                }
            }
        }
        held_since = None;
        std::mem::swap(&mut conn.inner.borrow_mut().out, &mut spare);
        read_at_write = conn.unanswered_and_read().1;
        conn.mark_written(spare.len());
        // flush: a TLS stream may keep the tail of a record buffered (a
        // no-op on a plain socket).
        let wrote = match w.write_all(&spare).await {
            Ok(()) => w.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = wrote {
            let err = lost(format!("{}: write failed: {e}", conn.addr));
            conn.close(&err);
            return;
        }
        spare.clear();
        conn.drained.notify_waiters();
    }
}

async fn read_loop<P: Protocol>(
    conn: &Rc<Conn<P>>,
    proto: &P,
    reader: &mut Reader,
    rbuf: &mut BytesMut,
    idle_ping: Option<Duration>,
    link: &dyn Link<P>,
    wake_writer_on_read: bool,
) -> KernelError {
    let far = Instant::now() + Duration::from_secs(86400 * 365);
    let mut timer = pin!(tokio::time::sleep_until(far));
    let mut armed = far;
    // Set while the request at the head of the queue is past its deadline.
    let mut stall: Option<Stall> = None;
    // Set while a stream's consumer is full: read nothing until it has room.
    let mut blocked: Option<Arc<dyn Parts>> = None;
    // Anything already buffered after the handshake.
    if let Err(e) = feed(conn, proto, rbuf, link, &mut blocked) {
        return e;
    }
    loop {
        if conn.is_closed() {
            return lost(format!("{}: connection closed", conn.addr));
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
            r = reader.read_buf(rbuf), if blocked.is_none() => match r {
                Ok(0) => {
                    if conn.on_eof(proto) {
                        link.progress();
                    }
                    return lost(format!("{}: the server closed the connection", conn.addr));
                }
                Ok(n) => {
                    let now = Instant::now();
                    conn.last_activity.set(now);
                    conn.on_read(n, now);
                    if wake_writer_on_read {
                        // replies arrived: what the writer holds may go
                        conn.wake_writer.notify_one();
                    }
                    // Bytes are arriving: whatever is slow is not stalled.
                    if let Some(st) = stall.as_mut() {
                        st.heard = now;
                    }
                    if let Err(e) = feed(conn, proto, rbuf, link, &mut blocked) {
                        return e;
                    }
                }
                Err(e) => return lost(format!("{}: read failed: {e}", conn.addr)),
            },
            _ = room(&blocked), if blocked.is_some() => {
                blocked = None;
                if let Err(e) = feed(conn, proto, rbuf, link, &mut blocked) {
                    return e;
                }
            }
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
                                resends: 0,
                            }, None);
                        }
                    }
                }
            }
        }
    }
}

/// Decode what `rbuf` holds into the dispatcher; tell the service.
fn feed<P: Protocol>(
    conn: &Rc<Conn<P>>,
    proto: &P,
    rbuf: &mut BytesMut,
    link: &dyn Link<P>,
    blocked: &mut Option<Arc<dyn Parts>>,
) -> Result<(), KernelError> {
    let fed = conn.on_bytes(proto, rbuf);
    for r in conn.take_redirects() {
        link.redirect(r);
    }
    let fed = fed?;
    if fed.done > 0 {
        link.progress();
    }
    *blocked = fed.blocked;
    Ok(())
}

async fn room(blocked: &Option<Arc<dyn Parts>>) {
    if let Some(parts) = blocked {
        parts.room().await;
    }
}

fn lost(detail: String) -> KernelError {
    KernelError::connection(detail).because(Reason::ConnectionLost)
}
