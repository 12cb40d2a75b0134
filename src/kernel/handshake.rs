//! Opening a connection: the transport's stream, then the protocol's
//! handshake on it, all within the connect timeout.
//!
//! The handshake talks on the whole (unsplit) stream through `HandshakeIo`:
//! send bytes, receive whole messages, and `upgrade` the stream in place
//! (PostgreSQL's SSLRequest: the server says yes, then TLS starts on the same
//! socket). Only after the handshake is the stream split for the
//! connection's read and write loops.

use std::future::Future;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::tls::failure_of;
use super::transport::{Addr, Connector, Reader, Stream, TlsHints, Writer};
use super::{KernelError, Protocol, Reason};

/// What a protocol's handshake gets: send bytes, read whole messages,
/// upgrade the stream.
pub struct HandshakeIo<'a, P: Protocol> {
    pub proto: &'a P,
    pub connector: &'a dyn Connector,
    pub addr: &'a Addr,
    pub state: &'a mut P::ConnState,
    /// `None` only while an upgrade runs (or after it failed).
    stream: Option<Stream>,
    buf: &'a mut BytesMut,
}

impl<P: Protocol> HandshakeIo<'_, P> {
    fn stream(&mut self) -> Result<&mut Stream, KernelError> {
        let addr = self.addr;
        self.stream.as_mut().ok_or_else(|| {
            KernelError::connection(format!("{addr}: the stream was lost in an upgrade"))
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), KernelError> {
        let (addr, hints) = (self.addr, self.connector.tls_hints());
        let s = self.stream()?;
        let wrote = match s.write_all(bytes).await {
            Ok(()) => s.flush().await,
            Err(e) => Err(e),
        };
        wrote.map_err(|e| io_error(addr, hints, "write failed during handshake", &e))
    }

    /// The next message that is not unsolicited.
    pub async fn recv(&mut self) -> Result<P::Msg, KernelError> {
        loop {
            match self.proto.decode(self.state, self.buf) {
                Ok(Some(m)) if self.proto.is_unsolicited(&m) => continue,
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => return Err(KernelError::protocol(format!("{}: {e}", self.addr))),
            }
            self.read_some().await?;
        }
    }

    /// Exactly `n` raw bytes, not decoded (a one-byte answer such as
    /// PostgreSQL's 'S'/'N' to an SSLRequest).
    pub async fn recv_raw(&mut self, n: usize) -> Result<Vec<u8>, KernelError> {
        while self.buf.len() < n {
            self.read_some().await?;
        }
        Ok(self.buf.split_to(n).to_vec())
    }

    async fn read_some(&mut self) -> Result<(), KernelError> {
        let (addr, hints) = (self.addr, self.connector.tls_hints());
        let stream = self.stream.as_mut().ok_or_else(|| {
            KernelError::connection(format!("{addr}: the stream was lost in an upgrade"))
        })?;
        let tls = stream.is_tls();
        let n = stream
            .read_buf(self.buf)
            .await
            .map_err(|e| io_error(addr, hints, "read failed during handshake", &e))?;
        if n == 0 && tls {
            return Err(KernelError::connection(format!(
                "{addr}: the server closed the TLS connection during the handshake \
                 (if it requires a client certificate, the server refused ours or got none)"
            ))
            .tls(Some(super::tls::TlsReason::Closed.name())));
        }
        if n == 0 {
            return Err(KernelError::connection(format!(
                "{addr}: the server closed the connection during the handshake"
            )));
        }
        Ok(())
    }

    /// Whether the stream is a TLS session now.
    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(Stream::is_tls)
    }

    /// Drop this connection and start over on a new one from `connector`
    /// (fresh buffer and state), within the same connect timeout: libpq's
    /// `sslmode=allow` and `prefer` retry the other way after a failure.
    pub async fn reopen(&mut self, connector: &dyn Connector) -> Result<(), KernelError> {
        self.stream = None;
        self.buf.clear();
        *self.state = P::ConnState::default();
        let addr = self.addr;
        let s = connector
            .connect(addr)
            .await
            .map_err(|e| io_error(addr, connector.tls_hints(), "cannot connect again", &e))?;
        self.stream = Some(s);
        Ok(())
    }

    /// Replace the stream by what `layer` makes of it (a TLS session over
    /// it). Bytes the server sent before the upgrade and nobody read are
    /// refused: they would otherwise be taken as coming through the new
    /// layer (a man in the middle could inject them).
    pub async fn upgrade<F, Fut>(&mut self, layer: F) -> Result<(), KernelError>
    where
        F: FnOnce(Stream) -> Fut,
        Fut: Future<Output = std::io::Result<Stream>>,
    {
        let addr = self.addr;
        if !self.buf.is_empty() {
            return Err(KernelError::protocol(format!(
                "{addr}: the server sent {} unexpected byte(s) before the stream was upgraded; \
                 the connection was refused",
                self.buf.len()
            )));
        }
        let plain = self.stream.take().ok_or_else(|| {
            KernelError::connection(format!("{addr}: the stream was lost in an upgrade"))
        })?;
        let upgraded = layer(plain)
            .await
            .map_err(|e| io_error(addr, None, "upgrading the connection failed", &e))?;
        self.stream = Some(upgraded);
        Ok(())
    }
}

/// An I/O error during the handshake, with its TLS reason if it is one (a
/// TLS 1.3 server refuses a client certificate after the client's side of
/// the handshake is done: the refusal arrives on the first read).
fn io_error(addr: &Addr, hints: Option<&TlsHints>, what: &str, e: &std::io::Error) -> KernelError {
    let tls = failure_of(e);
    let detail = match &tls {
        Some(f) if f.reason == super::tls::TlsReason::ClientCertRefused => format!(
            "{addr}: {what}: {}: the server refused the client certificate (or got none); \
             check {}",
            f.message,
            hints.map_or("the client certificate and key options", |h| h.client_cert)
        ),
        _ => format!("{addr}: {what}: {e}"),
    };
    KernelError::connection(detail).tls(tls.map(|f| f.reason.name()))
}

/// A socket that finished its handshake.
pub struct Connected<P: Protocol> {
    pub reader: Reader,
    pub writer: Writer,
    /// Bytes read past the handshake.
    pub buf: BytesMut,
    pub state: P::ConnState,
    /// The stream is a TLS session (its writes are coalesced, `conn::Wire`).
    pub tls: bool,
}

/// Connect through `connector` and run the protocol handshake, all within
/// `timeout`.
pub async fn connect<P: Protocol>(
    proto: &P,
    connector: &dyn Connector,
    addr: &Addr,
    timeout: Duration,
) -> Result<Connected<P>, KernelError> {
    let work = async {
        let stream = connector.connect(addr).await.map_err(|e| {
            let tls = failure_of(&e).map(|f| f.reason.name());
            KernelError::connection(format!("cannot connect to {} {addr}: {e}", proto.name()))
                .tls(tls)
        })?;
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let mut state = P::ConnState::default();
        let mut io = HandshakeIo {
            proto,
            connector,
            addr,
            state: &mut state,
            stream: Some(stream),
            buf: &mut buf,
        };
        proto.handshake(&mut io).await?;
        let stream = io.stream.take().ok_or_else(|| {
            KernelError::connection(format!("{addr}: the stream was lost in an upgrade"))
        })?;
        let tls = stream.is_tls();
        let (reader, writer) = stream.split();
        Ok(Connected {
            reader,
            writer,
            buf,
            state,
            tls,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(res) => res.map_err(|e: KernelError| e.because(Reason::ConnectFailed)),
        Err(_) => Err(KernelError::connection(format!(
            "cannot connect to {} {addr}: no answer within {:.1}s (connect_timeout){}",
            proto.name(),
            timeout.as_secs_f64(),
            match connector.tls_hints() {
                Some(h) => format!(
                    "; over TLS: a plain-text server on this port never answers the TLS \
                     handshake ({})",
                    h.plain
                ),
                None => String::new(),
            }
        ))
        .because(Reason::ConnectTimeout)),
    }
}
