//! Transport: how an address becomes a byte stream.
//!
//! A `Connector` opens a `Stream` to an `Addr` (TCP with no-delay and
//! keepalive, or a Unix socket). Everything above it — the handshake, the
//! connection's read and write loops, the out-of-band cancel — sees only the
//! stream, so TLS plugs in as another connector (or as an upgrade of a plain
//! stream mid-handshake, see `HandshakeIo::upgrade`), never as a branch in
//! the layers above.
//!
//! `Stream::Tls` is a TLS session (`kernel::tls`); its ALPN protocols are
//! part of the TLS options the connector is made with.
//!
//! A stream of a known kind is split into owned halves without a lock
//! (`into_split`); any other stream (a TLS session, a test wrapper) is split
//! with `tokio::io::split`.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    Tcp(String, u16),
    Unix(PathBuf),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Addr::Tcp(h, p) => write!(f, "{h}:{p}"),
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Any bidirectional byte stream the kernel can run a protocol over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + 'static> Io for T {}

pub type Reader = Box<dyn AsyncRead + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Unpin>;

/// An open byte stream, not yet split into halves.
pub enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
    /// A TLS session (`kernel::tls`) over one of the others.
    Tls(Box<dyn Io>),
    /// A wrapped stream (a test transform).
    Other(Box<dyn Io>),
}

impl Stream {
    pub fn wrap(io: impl Io) -> Self {
        Stream::Other(Box::new(io))
    }

    /// The stream as one boxed object (to wrap it in another layer).
    pub fn boxed(self) -> Box<dyn Io> {
        match self {
            Stream::Tcp(s) => Box::new(s),
            Stream::Unix(s) => Box::new(s),
            Stream::Tls(b) | Stream::Other(b) => b,
        }
    }

    /// Whether the stream is a TLS session.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Split into a read half and a write half for the connection's tasks.
    pub fn split(self) -> (Reader, Writer) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Stream::Unix(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Stream::Tls(b) | Stream::Other(b) => {
                let (r, w) = tokio::io::split(b);
                (Box::new(r), Box::new(w))
            }
        }
    }
}

pub type Opening = Pin<Box<dyn Future<Output = io::Result<Stream>>>>;

/// Turns an address into a stream. A service keeps one for all its
/// connections (including the out-of-band cancel's); it is made where the
/// client is configured and used on the kernel thread.
pub trait Connector: Send + Sync {
    fn connect(&self, addr: &Addr) -> Opening;
    /// Counters of the connector's own (TLS handshakes, resumed ones), added
    /// to the service's stats.
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// For a TLS connector: the options that change a TLS failure's
    /// outcome, as its protocol names them (for error messages).
    fn tls_hints(&self) -> Option<&TlsHints> {
        None
    }
    /// The service took in an endpoint at `addr` that it found under the
    /// host name `name` (`None`: the address is its own name). A TLS
    /// connector verifies the server's certificate against that name.
    fn learn_name(&self, addr: &Addr, name: Option<&str>) {
        let _ = (addr, name);
    }
}

/// The options that change a TLS failure's outcome, as the protocol names
/// them (`ssl_ca_certs` for Redis, `sslrootcert` for PostgreSQL ...).
#[derive(Debug, Clone)]
pub struct TlsHints {
    pub ca: &'static str,
    /// A directory of CAs (redis-py's `ssl_ca_path`).
    pub ca_dir: &'static str,
    /// A revocation list (libpq's `sslcrl`; the directory form adds `dir`).
    pub crl: &'static str,
    /// The password of an encrypted client key.
    pub key_password: &'static str,
    pub no_verify: &'static str,
    pub no_hostname: &'static str,
    pub client_cert: &'static str,
    pub plain: &'static str,
}

/// Plain TCP (no-delay, keepalive) and Unix sockets.
#[derive(Default, Clone, Copy)]
pub struct Plain;

impl Connector for Plain {
    fn connect(&self, addr: &Addr) -> Opening {
        let addr = addr.clone();
        Box::pin(async move { open(&addr).await })
    }
}

/// The plain connector, as a service's configuration holds it.
pub fn plain() -> std::sync::Arc<dyn Connector> {
    std::sync::Arc::new(Plain)
}

/// Open a plain socket to `addr`.
pub async fn open(addr: &Addr) -> io::Result<Stream> {
    match addr {
        Addr::Tcp(host, port) => {
            let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            s.set_nodelay(true)?;
            set_keepalive(s.as_raw_fd());
            Ok(Stream::Tcp(s))
        }
        Addr::Unix(path) => Ok(Stream::Unix(tokio::net::UnixStream::connect(path).await?)),
    }
}

/// Dead peers are noticed by the OS within 30 + 3×5 s even on a connection
/// with nothing in flight and heartbeats off.
fn set_keepalive(fd: i32) {
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| {
        // SAFETY: setsockopt on a valid socket fd with a pointer to a live c_int.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 5);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}

// Reading and writing an unsplit stream (the handshake does).
impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) | Stream::Other(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) | Stream::Other(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) | Stream::Other(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) | Stream::Other(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
