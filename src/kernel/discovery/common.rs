//! What the parts of discovery share: the `Source` kinds, which names are
//! followed, how a watch reports to its `Follow` (`Update`), and the
//! `host:port` form of a set's entries.

use std::net::IpAddr;
use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::kernel::endpoint::Endpoint;
use crate::kernel::transport::Addr;

/// A source of endpoints other than the names in a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An SRV name (`_redis._tcp.cache.internal`): host, port and weight of
    /// each record of the lowest priority.
    Srv(String),
    /// A file of `host:port` lines or a JSON list, reloaded when it changes
    /// (`file`).
    File(PathBuf),
    /// A set published under this name (`published::publish`).
    Published(String),
    /// A watch a protocol brings (Redis Sentinel): the kernel runs it.
    Watch(WatchSource),
}

/// A source whose watch lives outside the kernel (with the protocol it
/// speaks): the kernel spawns `follow` on its thread and takes the sets it
/// reports through `Update`. The watch is pending (`ready()` waits) until
/// it calls `Update::settled`.
pub trait Watch: Send + Sync {
    /// For messages (`sentinel:mymaster`).
    fn describe(&self) -> String;
    /// Follow the source until `out` says nobody listens.
    fn follow(&self, out: Update) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
}

/// A `Watch` in a `Source` (equal only to itself).
#[derive(Clone)]
pub struct WatchSource(pub std::sync::Arc<dyn Watch>);

impl PartialEq for WatchSource {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for WatchSource {}

impl std::fmt::Debug for WatchSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.describe())
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Srv(n) => write!(f, "{n} (SRV)"),
            Source::File(p) => write!(f, "file:{}", p.display()),
            Source::Published(n) => write!(f, "discovery:{n}"),
            Source::Watch(w) => f.write_str(&w.0.describe()),
        }
    }
}

/// Whether the kernel resolves and follows this name (a host name that is
/// not an IP address nor `localhost`).
pub fn followed(addr: &Addr) -> bool {
    match addr {
        Addr::Tcp(h, _) => h.parse::<IpAddr>().is_err() && !h.eq_ignore_ascii_case("localhost"),
        Addr::Unix(_) => false,
    }
}

pub(super) enum Msg {
    Set(usize, Vec<Endpoint>),
    /// The source has no answer yet (the first lookup failed).
    Failed(usize),
    /// As `Failed`, saying why (callers see it in their errors while the
    /// service has no endpoint); with the TLS reason (`TlsReason::name`)
    /// when the reason is TLS (callers then get `TLSError`).
    Problem(usize, String, Option<&'static str>),
    /// The source is in place (a watch: subscribed where it could be), so
    /// `ready()` may count on it to follow changes from now on.
    Settled(usize),
}

/// How a watch reports to its `Follow`.
pub struct Update {
    pub(super) idx: usize,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
}

impl Update {
    /// A new set; false once nobody listens.
    pub(crate) fn send(&self, eps: Vec<Endpoint>) -> bool {
        self.tx.send(Msg::Set(self.idx, eps)).is_ok()
    }

    /// No answer (yet); false once nobody listens.
    pub(super) fn failed(&self) -> bool {
        self.tx.send(Msg::Failed(self.idx)).is_ok()
    }

    /// No answer, and why; false once nobody listens.
    pub(crate) fn problem(&self, why: String) -> bool {
        self.tx.send(Msg::Problem(self.idx, why, None)).is_ok()
    }

    /// No answer because of TLS failures (`tls`: `TlsReason::name`);
    /// false once nobody listens.
    pub(crate) fn tls_problem(&self, why: String, tls: &'static str) -> bool {
        self.tx.send(Msg::Problem(self.idx, why, Some(tls))).is_ok()
    }

    /// A watch is in place: changes from now on are heard (until then the
    /// service reports it pending and `ready()` waits). False once nobody
    /// listens.
    pub(crate) fn settled(&self) -> bool {
        self.tx.send(Msg::Settled(self.idx)).is_ok()
    }
}

/// Parse `host:port`, `[v6]:port`, `ip:port` or `unix:/path` (a set's
/// entries in a file or published from Python).
pub fn parse_endpoint(s: &str) -> Result<Addr, String> {
    let s = s.trim();
    if let Some(p) = s.strip_prefix("unix:") {
        if p.is_empty() {
            return Err("unix: needs a socket path".into());
        }
        return Ok(Addr::Unix(PathBuf::from(p)));
    }
    let (host, port) = if let Some(h) = s.strip_prefix('[') {
        let (h, p) = h
            .split_once("]:")
            .ok_or_else(|| format!("{s:?}: expected [ipv6]:port"))?;
        (h, p)
    } else {
        s.rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: expected host:port"))?
    };
    if host.is_empty() || host.contains(':') && !s.starts_with('[') {
        return Err(format!("{s:?}: expected host:port (IPv6 as [addr]:port)"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{s:?}: port must be 1-65535"))?;
    Ok(Addr::Tcp(host.to_string(), port))
}
