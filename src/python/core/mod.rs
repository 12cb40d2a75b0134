//! The protocol-neutral half of the binding: how any protocol's request gets
//! from a Python call to the kernel, and its reply back to Python.
//!
//! * `service`   — `Service<P>`: what each protocol's pyclass holds; the
//!   blocking and asyncio request paths, leases, stats, written once.
//! * `completer` — one per asyncio loop: resolves every ready future in one
//!   callback per wake-up.
//! * `cork`      — holds a loop turn's requests and hands them to the
//!   kernel in groups (one wake-up, one write).
//! * `call`      — the awaitable an asyncio method returns.
//! * `conv`      — `Conv`: how a reply becomes a Python object, chosen per
//!   request by the protocol binding, so nothing here names a protocol.
//! * `errors`    — kernel error kinds to iokernel exceptions; the class
//!   lookup protocol bindings use for their own errors.
//! * `wait`      — time limits from Python; a blocking caller's wait.
//! * `stream`    — `ItemStream`: a reply in parts or a subscription (rows
//!   in batches, notifications) for a blocking or an asyncio consumer.
//!
//! A protocol binding (`python::redis`, `python::pg`) encodes its requests,
//! picks their `Conv`, and exposes a pyclass whose methods call `Service`.

pub mod call;
pub mod completer;
pub mod conv;
pub mod cork;
pub mod errors;
pub mod floor;
pub mod service;
pub mod stream;
pub mod wait;
