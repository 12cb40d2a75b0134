//! A request on its way through the kernel, and which connection it may use.

use std::time::Instant;

use bytes::Bytes;

use super::completion::Completion;
use super::protocol::Protocol;
use super::{body, endpoint, transport};

/// Which connection of a service a request must use. Every route but
/// `Dedicated` is resolved against the service's current endpoints
/// (`endpoint::EndpointSet::target`), and the service's balancer picks among
/// the shared connections of those that fit; when no endpoint fits, the
/// request fails at once with `endpoint::NoEndpoint`'s message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Any shared (pipelined) connection.
    Shared,
    /// A shared connection, for a request that only reads: the service's
    /// rule for reads (`attrs::Attrs::reads`, Redis's `read_from`) picks
    /// the endpoints. The service gives it to `Shared` requests itself.
    Read,
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
    /// How often it was sent again after a connection was lost with it
    /// written and unanswered (`dispatch::lost`, at most `MAX_RESENDS`).
    pub resends: u8,
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
