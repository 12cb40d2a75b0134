//! Name discovery: what a service's names and sources stand for, followed
//! as it changes, on the kernel thread.
//!
//! A service is configured with *names* (host and port, or a socket path,
//! from its URL) and *sources* (`Source`: an SRV name, a watched file, a set
//! published from Python). `Follow` turns them into one endpoint set and
//! hands the service a new set whenever any of them changes:
//! * an IP address, `localhost` or a socket path is its own endpoint;
//! * any other host name is resolved by the kernel (`dns`) and followed as
//!   its records change, each A/AAAA record one endpoint;
//! * `Source::Srv` follows an SRV name (`dns`), `Source::File` a file
//!   (`file`), `Source::Published` a named set that Python code publishes
//!   from any thread (`published`), `Source::Watch` a watch a protocol
//!   brings (`Watch`: Redis Sentinel, `protocols::redis_sentinel`).
//!
//! A failed or empty answer keeps the last good set. When a service starts
//! it waits (bounded) for each name's first answer, so it connects to the
//! real endpoints at once; a host name with no answer by then stands for
//! itself (the system resolver gets a go at connect time) until one comes.
//! The kernel never calls into Python; nothing here knows a protocol.

mod common;
mod dns;
mod file;
mod follow;
pub mod published;
pub mod settings;

pub use common::{followed, parse_endpoint, Source, Update, Watch, WatchSource};
pub use file::parse as parse_file;
pub use follow::Follow;

#[cfg(test)]
mod tests;
