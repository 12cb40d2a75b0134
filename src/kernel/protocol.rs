//! The contract between the kernel and a wire protocol: what the kernel asks
//! of a protocol (`Protocol`) and what a protocol answers about each message
//! it is fed (`Feed`). Implementations live in `crate::protocols`.

use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::completion::Reply;
use super::error::{DecodeError, KernelError};
use super::{handshake, transport};

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
    /// The connector the cancel's connection opens with; `None` (the
    /// default): the service's. PostgreSQL's goes the way the connection
    /// went (TLS, or plain text after libpq's `allow`/`prefer` fallback).
    fn cancel_connector(&self, st: &Self::ConnState) -> Option<Arc<dyn transport::Connector>> {
        let _ = st;
        None
    }
    /// Whether sending this request twice is harmless (it only reads, or
    /// its caller marked it `idempotent=True`), so that it may be sent
    /// again after its connection was lost with it written but unanswered
    /// (`dispatch::lost`). Asked only then. The default: no.
    fn idempotent(&self, pending: &Self::Pending, payload: &[u8]) -> bool {
        let _ = (pending, payload);
        false
    }
    /// Whether what the server sent for this request says it never read it
    /// (PostgreSQL's FATAL for an idle session it ends just as the request
    /// arrives): sending it again is safe even if it writes. Asked only
    /// when its connection was lost. The default: no.
    fn unread(&self, pending: &Self::Pending) -> bool {
        let _ = pending;
        false
    }
    /// A message that came with no request waiting for it, and which says
    /// that the server is ending the connection on its own (PostgreSQL's
    /// FATAL for an idle session): why, for the connection's error. `None`
    /// (the default): the message is a reply nobody asked for, a protocol
    /// error.
    fn farewell(&self, msg: &Self::Msg) -> Option<String> {
        let _ = msg;
        None
    }
    /// Whether this request only reads, so a service with a rule for reads
    /// (Redis's `read_from`) may send it to a replica. The default: no.
    fn reads_only(&self, payload: &[u8]) -> bool {
        let _ = payload;
        false
    }
    /// The role the server gave itself on this connection since last asked
    /// (at the handshake, or later: Redis `READONLY` replies, PostgreSQL's
    /// `in_hot_standby` report or SQLSTATE 25006); taken, so `None` when
    /// nothing new was learned. The service puts it on the endpoint.
    fn role(&self, st: &mut Self::ConnState) -> Option<super::endpoint::Role> {
        let _ = st;
        None
    }
    /// Whether the server said it is read-only by default on this
    /// connection since last asked (PostgreSQL's
    /// `default_transaction_read_only`, libpq's `read-write` test); taken,
    /// so `None` when nothing new was learned.
    fn read_only(&self, st: &mut Self::ConnState) -> Option<bool> {
        let _ = st;
        None
    }
    /// Whether its plain-text connections hold writes as TLS ones do
    /// (`conn::Hold`). The default: no (only TLS holds).
    fn hold_plain_writes(&self) -> bool {
        false
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
