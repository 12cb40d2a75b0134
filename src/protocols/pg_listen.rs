//! LISTEN/NOTIFY (part of `pg`): a listener's service LISTENs on its
//! channels as each connection opens (so again after every reconnect), and
//! its notifications go to the service's subscription sink
//! (`Postgres::push`) as `Notification`s.

use bytes::BytesMut;

use super::{err_text, Postgres};
use crate::codec::pg::{self, Backend};
use crate::kernel::handshake::HandshakeIo;
use crate::kernel::KernelError;

/// A NOTIFY received (a listener's subscription item).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub pid: i32,
    pub channel: String,
    pub payload: String,
}

/// `LISTEN "a"; LISTEN "b"` (names quoted, as identifiers).
fn listen_sql(channels: &[String]) -> String {
    channels
        .iter()
        .map(|c| format!("LISTEN \"{}\";", c.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A listener's connection, once open: LISTEN on its channels.
pub(super) async fn listen(
    io: &mut HandshakeIo<'_, Postgres>,
    channels: &[String],
    addr: &str,
) -> Result<(), KernelError> {
    let mut out = BytesMut::new();
    pg::query(&mut out, &listen_sql(channels));
    io.send(&out).await?;
    let mut failed = None;
    loop {
        match io.recv().await? {
            Backend::ErrorResponse(e) => failed = Some(err_text(&e)),
            Backend::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    match failed {
        Some(why) => Err(KernelError::connection(format!(
            "postgres {addr}: LISTEN failed: {why}"
        ))),
        None => Ok(()),
    }
}
