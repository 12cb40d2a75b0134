//! Protocols taught to the kernel: each wraps a sans-IO codec with what the
//! kernel needs (handshake, reply assembly, heartbeat).

pub mod pg;
pub mod pg_sql;
pub mod pg_tls;
pub mod pg_url;
pub mod redis;
pub mod redis_readonly;
pub mod redis_sentinel;
pub mod redis_sentinel_link;
mod redis_sentinel_reply;
pub mod redis_tls;
pub mod redis_url;
pub mod url;
