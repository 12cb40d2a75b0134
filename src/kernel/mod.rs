//! The I/O kernel: one native thread that owns every socket.
//!
//! Layers, in the order a request passes them:
//! * `runtime`    — the `iokernel` thread (single-threaded tokio + LocalSet),
//!   started on first use, replaced after `fork()`.
//! * `service`    — what a client names: its endpoints, limits, the queue
//!   while no connection is up, reconnects with backoff, dedicated
//!   connections; routes each request to a connection.
//! * `endpoint`   — endpoint sets (address, origin, role, weight), their
//!   changes, and which endpoints a route may use.
//! * `balance`    — which connection takes a request (`Balancer`).
//! * `conn`       — one connection's I/O loops: coalesced writes, reads,
//!   deadlines, heartbeats, the stall rule.
//! * `dispatch`   — who waits for which reply on a connection: in-order
//!   matching; a cancelled caller's reply is read and dropped, never
//!   shifted onto another caller.
//! * `handshake`  — opening a connection: transport stream + protocol
//!   handshake (which may upgrade the stream, e.g. to TLS).
//! * `transport`  — addresses and connectors: how an address becomes a
//!   byte stream (TCP, Unix; TLS plugs in here).
//! * `completion` — delivery back to blocking threads and asyncio loops.
//! * `items`      — replies in parts and server pushes: a bounded stream to
//!   one consumer, with backpressure on the connection.
//! * `body`       — request bytes that keep arriving after the request was
//!   sent (a streamed batch); the connection keeps them in order.
//!
//! The kernel knows protocols only through the `Protocol` trait below.

pub mod balance;
pub mod body;
pub mod completion;
pub mod conn;
pub mod dispatch;
pub mod endpoint;
pub mod error;
pub mod handshake;
pub mod items;
pub mod runtime;
pub mod service;
pub mod stats;
pub mod transport;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_endpoints;
#[cfg(test)]
mod tests_seams;

use std::future::Future;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

pub use completion::{Completion, CompletionQueue, Outcome, Reply, Slot};
pub use error::{DecodeError, ErrorKind, KernelError, Reason, Stage};
pub use items::Items;

/// What the kernel needs to know about a wire protocol. Implementations live
/// in `crate::protocols`; they wrap a sans-IO codec from `crate::codec`.
pub trait Protocol: Send + Sync + 'static {
    /// One decoded message from the server.
    type Msg;
    /// Per-request state that assembles its reply from messages.
    type Pending: Send + 'static;
    /// Per-connection state (decoder progress, statement cache), kernel thread only.
    type ConnState: Default + 'static;

    /// Decode one message off the front of `buf`; `Ok(None)` = need more bytes.
    fn decode(
        &self,
        st: &mut Self::ConnState,
        buf: &mut BytesMut,
    ) -> Result<Option<Self::Msg>, DecodeError>;
    /// Messages the server sends on its own (not a reply to a request).
    fn is_unsolicited(&self, msg: &Self::Msg) -> bool;
    /// What of an unsolicited message goes to the connection's subscription
    /// sink (a pub/sub message, a cache invalidation, a NOTIFY); `None`
    /// (the default) drops it. Only asked when a sink is set.
    fn push(&self, st: &mut Self::ConnState, msg: Self::Msg) -> Option<Reply> {
        let _ = (st, msg);
        None
    }
    /// Feed a message to the request at the head of the connection's queue.
    fn feed(&self, st: &mut Self::ConnState, pending: &mut Self::Pending, msg: Self::Msg) -> Feed;
    /// The server closed the connection while this request was at the head
    /// of the queue: `Some(reply)` if that ends it well (an HTTP/1.0 body
    /// that runs until close); `None` (the default) fails it.
    fn eof(&self, st: &mut Self::ConnState, pending: &mut Self::Pending) -> Option<Reply> {
        let _ = (st, pending);
        None
    }
    /// Write a request's bytes when it is given to a connection (on the
    /// kernel thread). The default writes the payload encoded by the caller;
    /// a protocol with per-connection state (prepared statements) builds
    /// them here instead.
    fn write_request(
        &self,
        st: &mut Self::ConnState,
        pending: &mut Self::Pending,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        let _ = (st, pending);
        out.extend_from_slice(payload);
    }
    /// Bring a fresh connection into service (auth, options, database).
    fn handshake(
        &self,
        io: &mut handshake::HandshakeIo<'_, Self>,
    ) -> impl Future<Output = Result<(), KernelError>>
    where
        Self: Sized;
    /// Bytes that, sent on a fresh connection to the same address, ask the
    /// server to abort what this connection is executing (PostgreSQL's
    /// CancelRequest). The kernel sends them when the request at the head of
    /// the queue times out, so the requests behind it are not held up. The
    /// protocol may note that it did (see `Feed::Retry`).
    fn cancel_request(&self, st: &mut Self::ConnState) -> Option<Vec<u8>> {
        let _ = st;
        None
    }
    /// A cheap request to send on an idle connection to prove the peer alive.
    fn heartbeat(&self) -> Option<(Bytes, Self::Pending)>;
    /// A short name for messages ("redis", "postgres").
    fn name(&self) -> &'static str;
}

pub enum Feed {
    More,
    Done(Reply),
    /// One item of a reply that comes in parts (rows of a big result, chunks
    /// of a body): delivered to the request's stream completion at once,
    /// the request stays at the head. The reader stops reading while the
    /// consumer is `Items::capacity` items behind (backpressure).
    Item(Reply),
    /// The reply is complete and the server closes the connection after it
    /// (HTTP `Connection: close`): requests written behind it fail with the
    /// connection error (outcome unknown), and the service reconnects.
    DoneThenClose(Reply),
    /// The server says another endpoint must answer this request (Redis
    /// Cluster's MOVED/ASK): the service sends it there, rebuilt from its
    /// `Pending` by `write_request` (as for `Retry`). The server did not act
    /// on it here. The protocol bounds the number of hops (count them in
    /// `Pending`).
    Redirect(transport::Addr),
    /// The stream cannot be trusted any more (e.g. the server started a
    /// mode we do not speak): the connection is reset with this message.
    Fail(String),
    /// The request was aborted, with no effect, by the kernel's own
    /// out-of-band cancel meant for the request before it (the cancel
    /// arrived just after that one finished). The kernel writes it again at
    /// the back of the connection's queue, unless its caller has gone;
    /// `write_request` must rebuild it from its `Pending` alone.
    Retry,
}

/// Which connection of a service a request must use. Every route but
/// `Dedicated` is resolved against the service's current endpoints
/// (`endpoint::EndpointSet::target`), and the service's balancer picks among
/// the shared connections of those that fit; when no endpoint fits, the
/// request fails at once with `endpoint::NoEndpoint`'s message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Any shared (pipelined) connection.
    Shared,
    /// A shared connection to an endpoint with this role.
    Role(endpoint::Role),
    /// A shared connection to the one endpoint this key maps to: a stable
    /// choice among the current endpoints (weighted rendezvous hashing) that
    /// moves only when that endpoint leaves or one ranking higher arrives.
    Key(u64),
    /// A shared connection to this endpoint (a redirect: Redis MOVED/ASK).
    Endpoint(transport::Addr),
    /// A dedicated connection leased by one caller.
    Dedicated(u64),
}

pub struct Request<P: Protocol> {
    pub payload: Bytes,
    pub pending: P::Pending,
    pub completion: Completion,
    pub deadline: Option<Instant>,
    pub route: Route,
    /// When the caller submitted it (for the queue-time histogram).
    pub submitted: Instant,
    /// What `/inflight` shows: a command name, never arguments or values.
    pub summary: Summary,
    /// More bytes of this request, still being produced (`body`).
    pub body: Option<body::Body>,
}

/// A short, secret-free description of a request ("GET", "PIPELINE(3)"),
/// stored inline so that describing a request costs no allocation.
#[derive(Clone, Copy)]
pub struct Summary {
    len: u8,
    buf: [u8; 23],
}

impl Summary {
    /// From a command name: ASCII letters, digits, '_' and '.', upper-cased,
    /// cut at 23 bytes; anything else becomes '?'.
    pub fn new(name: &[u8]) -> Self {
        let mut buf = [0u8; 23];
        let n = name.len().min(23);
        for (d, c) in buf.iter_mut().zip(&name[..n]) {
            *d = match c.to_ascii_uppercase() {
                c @ (b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'(' | b')' | b' ') => c,
                _ => b'?',
            };
        }
        Summary { len: n as u8, buf }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("?")
    }
}
