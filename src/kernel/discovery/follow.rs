//! `Follow`: a service's names and sources, each watched by a task of its
//! own, merged into one endpoint set.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::common::{followed, Msg, Source, Update};
use super::{dns, file, published};
use crate::kernel::endpoint::Endpoint;
use crate::kernel::transport::Addr;

/// One source's state in a `Follow`.
struct Slot {
    /// Its last set; `None` until it answered (or gave up waiting).
    set: Option<Vec<Endpoint>>,
    /// What it stands for while it has no answer.
    fallback: Vec<Endpoint>,
    /// Why it has no answer (until it has one), and the TLS reason when
    /// that is why.
    problem: Option<(String, Option<&'static str>)>,
    /// A watch not in place yet (`Update::settled`): what it is.
    pending: Option<String>,
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
                    problem: None,
                    pending: None,
                });
            } else {
                f.slots.push(Slot {
                    set: Some(own),
                    fallback: Vec::new(),
                    problem: None,
                    pending: None,
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
                Source::Watch(w) => f.spawn(w.0.follow(up)),
            }
            f.slots.push(Slot {
                set: None,
                fallback: Vec::new(),
                problem: None,
                pending: matches!(s, Source::Watch(_)).then(|| s.to_string()),
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
            Msg::Set(i, eps) => {
                self.slots[i].set = Some(eps);
                self.slots[i].problem = None;
            }
            Msg::Failed(i) => {
                let s = &mut self.slots[i];
                if s.set.is_none() {
                    s.set = Some(s.fallback.clone());
                }
            }
            Msg::Problem(i, why, tls) => {
                let s = &mut self.slots[i];
                if s.set.is_none() {
                    s.set = Some(s.fallback.clone());
                }
                s.problem = Some((why, tls));
            }
            Msg::Settled(i) => self.slots[i].pending = None,
        }
    }

    /// Why sources have no answer yet ("" when all have one).
    pub fn problems(&self) -> String {
        let p: Vec<&str> = self.problem_list().map(|(w, _)| w.as_str()).collect();
        p.join("; ")
    }

    fn problem_list(&self) -> impl Iterator<Item = &(String, Option<&'static str>)> {
        self.slots.iter().filter_map(|s| s.problem.as_ref())
    }

    /// The TLS reason of the problems when every one is a TLS failure
    /// (the first's), else `None`.
    pub fn problems_tls(&self) -> Option<&'static str> {
        let mut reasons = self.problem_list().map(|(_, t)| *t);
        let first = reasons.next()??;
        reasons.all(|t| t.is_some()).then_some(first)
    }

    /// The watches not in place yet ("" when none): `ready()` waits for
    /// them, since a change before they are would go unheard.
    pub fn pending(&self) -> String {
        let p: Vec<&str> = self
            .slots
            .iter()
            .filter_map(|s| s.pending.as_deref())
            .collect();
        p.join(", ")
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
