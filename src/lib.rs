//! iokernel: network I/O for Python in one native thread.
//!
//! Layers, bottom up (each a folder):
//! * `codec`     — sans-IO protocol codecs: bytes in, frames out. No tokio, no pyo3.
//! * `kernel`    — the I/O thread: runtime, submission, connections, dispatch,
//!   services, completion delivery. Knows no protocol by name.
//! * `protocols` — glue that teaches the kernel one protocol (handshake,
//!   reply assembly, heartbeat) on top of its codec.
//! * `python`    — pyo3 bindings (feature `python`): turns Python calls into
//!   kernel requests and kernel replies into Python objects.

pub mod admin;
pub mod codec;
pub mod kernel;
pub mod metrics;
pub mod protocols;
#[cfg(feature = "python")]
mod python;
