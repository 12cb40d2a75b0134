//! A small RESP2 connection for the sentinel watch: connect (bounded, TLS
//! included when the connector does TLS: `rediss+sentinel://`),
//! authenticate, send a command and read its reply, or read what a
//! subscribed connection is sent unprompted. Every read has a bound; the
//! watch's own connections never carry the service's requests.

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
    ) -> Result<Link, String> {
        let io = tokio::time::timeout(limit, via.connect(addr))
            .await
            .map_err(|_| format!("{addr}: no connection within {limit:?}"))?
            .map_err(|e| format!("{addr}: {e}"))?;
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
                return Err(format!("{addr}: authentication failed: {e}"));
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
