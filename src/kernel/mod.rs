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
//! * `discovery`  — names and sources (DNS, SRV, files, published sets)
//!   followed into endpoint sets.
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
//! * `tls`        — rustls: one client configuration per service (session
//!   resumption), trust, verification modes, ALPN, typed failures.
//! * `completion` — delivery back to blocking threads and asyncio loops.
//! * `items`      — replies in parts and server pushes: a bounded stream to
//!   one consumer, with backpressure on the connection.
//! * `body`       — request bytes that keep arriving after the request was
//!   sent (a streamed batch); the connection keeps them in order.
//!
//! The kernel knows protocols only through the `Protocol` trait below.

pub mod attrs;
pub mod balance;
pub mod body;
pub mod completion;
pub mod conn;
pub mod discovery;
pub mod dispatch;
pub mod endpoint;
pub mod error;
pub mod handshake;
pub mod health;
pub mod items;
pub mod limits;
pub mod protocol;
pub mod request;
pub mod runtime;
pub mod service;
pub mod spin_wait;
pub mod stats;
pub mod tls;
pub mod transport;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_endpoints;
#[cfg(test)]
mod tests_hold;
#[cfg(test)]
mod tests_seams;

pub use completion::{Completion, CompletionQueue, Outcome, Part, Reply, Slot};
pub use error::{DecodeError, ErrorKind, KernelError, Reason, Stage};
pub use items::Items;
pub use protocol::{Feed, Protocol};
pub use request::{Request, Route, Summary};
