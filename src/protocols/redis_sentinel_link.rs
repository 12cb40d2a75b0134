//! A small RESP2 connection for the sentinel watch: connect (bounded, TLS
//! included when the connector does TLS: `rediss+sentinel://`),
//! authenticate, send a command and read its reply, or read what a
//! subscribed connection is sent unprompted. Every read has a bound; the
//! watch's own connections never carry the service's requests. A failed
//! open says whether the peer was reached at all and whether TLS failed
//! (`Failure`), so the watch can report "TLS failed everywhere" as such.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::codec::resp::{encode_command, Decoder, Frame, Limits};
use crate::kernel::transport::{Addr, Connector, Stream};

pub(super) struct Link {
    io: Stream,
    buf: BytesMut,
    dec: Decoder,
    addr: Addr,
}

/// Why a connection could not be opened, or a call failed.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub text: String,
    pub kind: Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failed {
    /// No connection (refused, unreachable, no handshake within the bound).
    Unreached,
    /// The TLS handshake failed (`TlsReason::name`).
    Tls(&'static str),
    /// Connected, and then something else went wrong.
    Other,
}

impl From<String> for Failure {
    fn from(text: String) -> Self {
        Failure {
            text,
            kind: Failed::Other,
        }
    }
}

impl From<Failure> for String {
    fn from(f: Failure) -> Self {
        f.text
    }
}

/// User and password to send with `AUTH` (none: no `AUTH`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Link {
    /// Connect to `addr` through `via` (plain, or TCP then TLS, the
    /// handshake within the same bound) and authenticate, within `limit`.
    pub(super) async fn open(
        addr: &Addr,
        auth: &Auth,
        via: &dyn Connector,
        limit: Duration,
    ) -> Result<Link, Failure> {
        let io = match tokio::time::timeout(limit, via.connect(addr)).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => {
                let kind = match crate::kernel::tls::failure_of(&e) {
                    Some(t) => Failed::Tls(t.reason.name()),
                    None => Failed::Unreached,
                };
                return Err(Failure {
                    text: format!("{addr}: {e}"),
                    kind,
                });
            }
            Err(_) => {
                return Err(Failure {
                    text: format!("{addr}: no connection within {limit:?}"),
                    kind: Failed::Unreached,
                })
            }
        };
        let mut link = Link {
            io,
            buf: BytesMut::with_capacity(4096),
            dec: Decoder::new(Limits::default()),
            addr: addr.clone(),
        };
        if let Some(pw) = &auth.password {
            let reply = match &auth.username {
                Some(u) => link.call(&["AUTH", u, pw], limit).await?,
                None => link.call(&["AUTH", pw], limit).await?,
            };
            if let Some(e) = super::redis_sentinel_reply::error(&reply) {
                return Err(format!("{addr}: authentication failed: {e}").into());
            }
        }
        Ok(link)
    }

    /// Send one command (no reply read).
    pub(super) async fn send(&mut self, args: &[&str]) -> Result<(), String> {
        let mut out = BytesMut::new();
        encode_command(args, &mut out);
        self.io
            .write_all(&out)
            .await
            .map_err(|e| format!("{}: {e}", self.addr))
    }

    /// Send one command and read its reply, within `limit`.
    pub(super) async fn call(&mut self, args: &[&str], limit: Duration) -> Result<Frame, String> {
        self.send(args).await?;
        tokio::time::timeout(limit, self.next())
            .await
            .map_err(|_| format!("{}: no reply to {} within {limit:?}", self.addr, args[0]))?
    }

    /// The next frame the server sends (a reply, or a message on a
    /// subscribed connection); waits as long as it takes.
    pub(super) async fn next(&mut self) -> Result<Frame, String> {
        loop {
            match self.dec.decode(&mut self.buf) {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(e) => return Err(format!("{}: bad reply: {e}", self.addr)),
            }
            let n = self
                .io
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| format!("{}: {e}", self.addr))?;
            if n == 0 {
                return Err(format!("{}: connection closed", self.addr));
            }
        }
    }
}
