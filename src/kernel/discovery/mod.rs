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
//!   from any thread (`published`).
//!
//! A failed or empty answer keeps the last good set. When a service starts
//! it waits (bounded) for each name's first answer, so it connects to the
//! real endpoints at once; a host name with no answer by then stands for
//! itself (the system resolver gets a go at connect time) until one comes.
//! The kernel never calls into Python; nothing here knows a protocol.

mod dns;
mod file;
pub mod published;
pub mod settings;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::endpoint::Endpoint;
use super::transport::Addr;

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
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Srv(n) => write!(f, "{n} (SRV)"),
            Source::File(p) => write!(f, "file:{}", p.display()),
            Source::Published(n) => write!(f, "discovery:{n}"),
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

enum Msg {
    Set(usize, Vec<Endpoint>),
    /// The source has no answer yet (the first lookup failed).
    Failed(usize),
}

/// How a watch reports to its `Follow`.
pub(crate) struct Update {
    idx: usize,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Update {
    /// A new set; false once nobody listens.
    fn send(&self, eps: Vec<Endpoint>) -> bool {
        self.tx.send(Msg::Set(self.idx, eps)).is_ok()
    }

    /// No answer (yet); false once nobody listens.
    fn failed(&self) -> bool {
        self.tx.send(Msg::Failed(self.idx)).is_ok()
    }
}

/// One source's state in a `Follow`.
struct Slot {
    /// Its last set; `None` until it answered (or gave up waiting).
    set: Option<Vec<Endpoint>>,
    /// What it stands for while it has no answer.
    fallback: Vec<Endpoint>,
}

/// A service's names and sources, followed. Dropping it stops the watches.
pub struct Follow {
    slots: Vec<Slot>,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Keeps `rx` open when nothing is watched (`next` then never returns).
    _tx: mpsc::UnboundedSender<Msg>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Follow {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Follow {
    /// Start following (on the kernel thread: watches are local tasks).
    pub fn start(names: &[Addr], sources: &[Source]) -> Follow {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut f = Follow {
            slots: Vec::new(),
            rx,
            _tx: tx.clone(),
            tasks: Vec::new(),
        };
        for a in names {
            let idx = f.slots.len();
            let own = vec![Endpoint::named(a.clone())];
            if let (true, Addr::Tcp(host, port)) = (followed(a), a) {
                let q = dns::Query::Host {
                    host: host.clone(),
                    port: *port,
                };
                let up = Update {
                    idx,
                    tx: tx.clone(),
                };
                f.spawn(dns::follow(q, a.to_string(), up));
                f.slots.push(Slot {
                    set: None,
                    fallback: own,
                });
            } else {
                f.slots.push(Slot {
                    set: Some(own),
                    fallback: Vec::new(),
                });
            }
        }
        for s in sources {
            let up = Update {
                idx: f.slots.len(),
                tx: tx.clone(),
            };
            match s {
                Source::Srv(name) => f.spawn(dns::follow(
                    dns::Query::Srv(name.clone()),
                    s.to_string(),
                    up,
                )),
                Source::File(p) => f.spawn(file::follow(p.clone(), s.to_string(), up)),
                Source::Published(n) => f.spawn(published::follow(n.clone(), up)),
            }
            f.slots.push(Slot {
                set: None,
                fallback: Vec::new(),
            });
        }
        f
    }

    fn spawn(&mut self, fut: impl std::future::Future<Output = ()> + 'static) {
        self.tasks
            .push(tokio::task::spawn_local(fut).abort_handle());
    }

    fn take(&mut self, m: Msg) {
        match m {
            Msg::Set(i, eps) => self.slots[i].set = Some(eps),
            Msg::Failed(i) => {
                let s = &mut self.slots[i];
                if s.set.is_none() {
                    s.set = Some(s.fallback.clone());
                }
            }
        }
    }

    /// The union of the sets now (an address from two sources counts once,
    /// with the attributes of the first).
    pub fn current(&self) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = Vec::new();
        for s in &self.slots {
            for e in s.set.as_ref().unwrap_or(&s.fallback) {
                if !out.iter().any(|o| o.addr == e.addr) {
                    out.push(e.clone());
                }
            }
        }
        out
    }

    /// The first set: waits until every source answered (or failed once),
    /// at most `wait`.
    pub async fn first(&mut self, wait: Duration) -> Vec<Endpoint> {
        let end = tokio::time::Instant::now() + wait;
        while self.slots.iter().any(|s| s.set.is_none()) {
            match tokio::time::timeout_at(end, self.rx.recv()).await {
                Ok(Some(m)) => self.take(m),
                Ok(None) | Err(_) => break,
            }
        }
        self.current()
    }

    /// The next set, when a source changes (cancel-safe; changes that
    /// arrived together are taken together).
    pub async fn next(&mut self) -> Vec<Endpoint> {
        let Some(m) = self.rx.recv().await else {
            return std::future::pending().await;
        };
        self.take(m);
        while let Ok(m) = self.rx.try_recv() {
            self.take(m);
        }
        self.current()
    }

    /// Whether any source is watched (else `next` never returns).
    pub fn watching(&self) -> bool {
        !self.tasks.is_empty()
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

#[cfg(test)]
mod tests;
