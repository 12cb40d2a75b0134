//! Redis Sentinel as a discovery source (a `kernel::discovery::Watch`) (`redis+sentinel://`): the
//! sentinels say where a named master's primary and replicas are; this
//! watch publishes them as one endpoint set with roles (primary, replicas)
//! and follows failovers as the sentinels announce them.
//!
//! * Every sentinel of the URL gets a subscribed connection of its own
//!   (`watch`) on the channels of `sentinel_reply::CHANNELS`; each event is
//!   heard from whichever sentinel publishes it first, and a sentinel that
//!   is down only costs its own reconnect attempts.
//! * `+failover-state-send-slaveof-noone` (the leader is about to promote
//!   a replica): the primary is held — published with weight 0, so new
//!   requests that need it wait in the service queue instead of writing
//!   to a node whose writes from now on would be lost — until the switch,
//!   an abort, or `HOLD` passes.
//! * `+switch-master`: the new primary is confirmed with `ROLE` (bounded),
//!   then the set is published at once with the new primary and without the
//!   old one, so no new request goes to the old primary (which keeps
//!   accepting writes until the sentinels turn it into a replica). Requests
//!   already on its connection are answered there and the connection
//!   closes (`service::members`); never-written ones go to the new primary.
//! * The set is asked again (`SENTINEL MASTER`, `SENTINEL REPLICAS`, of
//!   every sentinel, the answer with the highest config epoch winning) at
//!   start, every `REFRESH`, after other events about the master, and when
//!   a subscription is (re)made, since messages may have been missed while
//!   it was not. After a switch, answers older than it (a sentinel that has
//!   not heard of the failover yet) are ignored.
//! * `rediss+sentinel://`: the data nodes are reached over TLS (the
//!   service's connector, which checks an IP address Sentinel gives
//!   against the certificate's IP SANs), and the sentinels too unless
//!   `sentinel_ssl=false` (their own connector, `Via`, checking each
//!   sentinel against the name the URL gives it).
//! * No sentinel answers, or none knows the master: the last set stays;
//!   with none yet, the problem is reported (`Update::problem`) and callers
//!   see it in their errors. When every sentinel that was reached failed
//!   its TLS handshake (and the others were down), it is reported as a TLS
//!   problem (`Update::tls_problem`): callers get `TLSError`.
//! * Ready: the watch tells the service it is in place (`Update::settled`,
//!   which `ready()` waits for) once every sentinel's subscription is made
//!   or its first attempt failed (unreachable, TLS, no confirmation within
//!   `LIMIT`), and the set was asked again after the last subscription:
//!   a failover after `ready()` returns is heard.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::redis_sentinel_link::{Auth, Failed, Failure, Link};
use super::redis_sentinel_reply::{self as reply, Event, CHANNELS};
use crate::codec::resp::Frame;
use crate::kernel::discovery::{Update, Watch};
use crate::kernel::endpoint::{Endpoint, Role};
use crate::kernel::transport::{plain, Addr, Connector};

/// Bound on each connect and each reply from a sentinel or a data node.
const LIMIT: Duration = Duration::from_secs(1);
/// The set is asked again this often with nothing heard.
const REFRESH: Duration = Duration::from_secs(5);
/// ... and this soon after a switch (to pick up the replicas).
const SOON: Duration = Duration::from_millis(500);
/// The longest a primary is held (takes no new requests) while a failover
/// promotes a replica, if neither the switch nor an abort is heard.
const HOLD: Duration = Duration::from_secs(5);

/// What `redis+sentinel://` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentinel {
    pub sentinels: Vec<Addr>,
    /// The master's name (`sentinel monitor <name> ...`).
    pub master: String,
    /// `AUTH` for the sentinels (`sentinel_username`/`sentinel_password`).
    pub auth: Auth,
    /// `AUTH` for the data nodes (the URL's user and password), for `ROLE`.
    pub data_auth: Auth,
    /// How the sentinels and the data nodes are reached (plain or TLS).
    pub via: Via,
}

/// The connectors of the watch's own connections: to the sentinels, and
/// to a data node (`ROLE`; the service's own connector, so a data node's
/// certificate is checked as the service's connections check it).
#[derive(Clone)]
pub struct Via {
    pub sentinels: Arc<dyn Connector>,
    pub data: Arc<dyn Connector>,
}

impl Default for Via {
    fn default() -> Self {
        Via {
            sentinels: plain(),
            data: plain(),
        }
    }
}

impl Via {
    fn tls(&self) -> (bool, bool) {
        (
            self.sentinels.tls_hints().is_some(),
            self.data.tls_hints().is_some(),
        )
    }
}

impl std::fmt::Debug for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, d) = self.tls();
        write!(f, "Via {{ sentinels_tls: {s}, data_tls: {d} }}")
    }
}

/// Equal when both go over TLS (or not) alike: the options themselves are
/// not compared.
impl PartialEq for Via {
    fn eq(&self, other: &Via) -> bool {
        self.tls() == other.tls()
    }
}

impl Eq for Via {}

enum Note {
    Event(Event),
    /// A subscription is (again) in place: ask, as events may have been
    /// missed. `first`: the first outcome of that sentinel's watch.
    Subscribed {
        first: bool,
    },
    /// A sentinel's watch's first attempt failed (it goes on trying).
    Unreached,
}

/// What the watch knows and last published.
#[derive(Default)]
struct Known {
    primary: Option<(Addr, Role)>,
    replicas: Vec<Addr>,
    epoch: u64,
    /// Answers with an older epoch are stale (set by a switch).
    min_epoch: u64,
    /// A failover is promoting a replica: this primary takes nothing new
    /// (weight 0: requests wait) until the switch, an abort or the time.
    held: Option<(Addr, Instant)>,
    published: Vec<Endpoint>,
}

impl Known {
    fn endpoints(&self, master: &str) -> Vec<Endpoint> {
        let origin = format!("sentinel:{master}");
        let now = Instant::now();
        let ep = |addr: &Addr, role| Endpoint {
            addr: addr.clone(),
            origin: origin.clone(),
            // as Sentinel gives it: an IP is checked against IP SANs
            tls_name: None,
            role,
            weight: 1,
        };
        let mut out: Vec<Endpoint> = self.primary.iter().map(|(a, r)| ep(a, *r)).collect();
        if let (Some(p), Some((h, until))) = (out.first_mut(), &self.held) {
            if p.addr == *h && now < *until {
                p.weight = 0;
            }
        }
        out.extend(self.replicas.iter().map(|a| ep(a, Role::Replica)));
        out
    }

    /// Send the set if it changed; false once nobody listens.
    fn publish(&mut self, master: &str, out: &Update) -> bool {
        let now = self.endpoints(master);
        if now == self.published && !now.is_empty() {
            return true;
        }
        self.published = now.clone();
        out.send(now)
    }
}

struct Aborts(Vec<tokio::task::AbortHandle>);

impl Drop for Aborts {
    fn drop(&mut self) {
        for a in &self.0 {
            a.abort();
        }
    }
}

impl Watch for Sentinel {
    fn describe(&self) -> String {
        format!("sentinel:{}", self.master)
    }

    fn follow(&self, out: Update) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        Box::pin(follow(self.clone(), out))
    }
}

/// Follow `spec`'s master until nobody listens.
async fn follow(spec: Sentinel, out: Update) {
    let spec = Rc::new(spec);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _watches = Aborts(
        spec.sentinels
            .iter()
            .map(|a| {
                tokio::task::spawn_local(watch(a.clone(), spec.clone(), tx.clone())).abort_handle()
            })
            .collect(),
    );
    drop(tx);
    let mut known = Known::default();
    if !refresh(&spec, &mut known, &out).await {
        return;
    }
    // Sentinels whose watch has no first outcome yet; settled once none.
    let mut waiting = spec.sentinels.len();
    let mut settled = false;
    let mut next = Instant::now() + REFRESH;
    loop {
        if waiting == 0 && !settled {
            // Every subscription that could be made is, and the set was
            // asked after the last one (its note's refresh, done above).
            settled = true;
            if !out.settled() {
                return;
            }
        }
        let note = tokio::select! {
            n = rx.recv() => n,
            _ = tokio::time::sleep_until(next) => None,
        };
        next = Instant::now() + REFRESH;
        let alive = match note {
            Some(Note::Event(Event::Switch { old, new })) => {
                if switch(&spec, &mut known, old, new).await {
                    next = Instant::now() + SOON;
                }
                known.publish(&spec.master, &out)
            }
            Some(Note::Event(Event::Promoting)) => {
                if let Some((p, _)) = &known.primary {
                    let until = Instant::now() + HOLD;
                    known.held = Some((p.clone(), until));
                    next = until;
                }
                known.publish(&spec.master, &out)
            }
            Some(Note::Event(Event::Aborted)) => {
                known.held = None;
                refresh(&spec, &mut known, &out).await
            }
            Some(Note::Subscribed { first }) => {
                waiting -= usize::from(first);
                refresh(&spec, &mut known, &out).await
            }
            Some(Note::Unreached) => {
                waiting -= 1;
                true
            }
            Some(Note::Event(Event::Changed)) | None => refresh(&spec, &mut known, &out).await,
        };
        if !alive {
            return;
        }
        if let Some((_, until)) = known.held {
            next = next.min(until.max(Instant::now()));
        }
    }
}

/// A `+switch-master` was heard: take the new primary (confirmed with
/// `ROLE`), drop the old one. False if it was known already.
async fn switch(spec: &Sentinel, known: &mut Known, old: Addr, new: Addr) -> bool {
    if known.primary.as_ref().is_some_and(|(a, _)| *a == new) {
        return false;
    }
    // Confirmed, or left for the service to learn when it connects.
    let role = match role_of(&new, &spec.data_auth, &spec.via).await {
        Ok(Role::Primary) => Role::Primary,
        _ => Role::Unknown,
    };
    known.primary = Some((new.clone(), role));
    known.replicas.retain(|r| *r != new && *r != old);
    known.min_epoch = known.epoch + 1;
    known.held = None;
    true
}

/// The role a data node gives itself (`ROLE`).
async fn role_of(addr: &Addr, auth: &Auth, via: &Via) -> Result<Role, String> {
    let mut link = Link::open(addr, auth, &*via.data, LIMIT).await?;
    let f = link.call(&["ROLE"], LIMIT).await?;
    match f {
        Frame::Array(items) => match items.first() {
            Some(Frame::Bulk(b) | Frame::Simple(b)) if &b[..] == b"master" => Ok(Role::Primary),
            Some(Frame::Bulk(b) | Frame::Simple(b)) if &b[..] == b"slave" => Ok(Role::Replica),
            _ => Err(format!("{addr}: unexpected ROLE reply")),
        },
        _ => Err(format!("{addr}: unexpected ROLE reply")),
    }
}

/// One sentinel's view: the primary and the replicas.
async fn ask(addr: &Addr, spec: &Sentinel) -> Result<(reply::Master, Vec<Addr>), Failure> {
    let mut link = Link::open(addr, &spec.auth, &*spec.via.sentinels, LIMIT).await?;
    let m = link
        .call(&["SENTINEL", "MASTER", &spec.master], LIMIT)
        .await?;
    let master = reply::master(&m, &spec.master).map_err(|e| format!("{addr}: {e}"))?;
    let r = link
        .call(&["SENTINEL", "REPLICAS", &spec.master], LIMIT)
        .await?;
    let replicas = reply::replicas(&r, &master.addr).map_err(|e| format!("{addr}: {e}"))?;
    Ok((master, replicas))
}

/// Ask every sentinel; publish the newest answer if it changes anything.
/// False once nobody listens.
async fn refresh(spec: &Sentinel, known: &mut Known, out: &Update) -> bool {
    let mut best: Option<(reply::Master, Vec<Addr>)> = None;
    let mut problems: Vec<Failure> = Vec::new();
    for s in &spec.sentinels {
        match ask(s, spec).await {
            Ok((m, r)) if m.epoch >= known.min_epoch => {
                if best.as_ref().is_none_or(|(b, _)| m.epoch > b.epoch) {
                    best = Some((m, r));
                }
            }
            Ok(_) => problems.push(format!("{s}: has not seen the last failover yet").into()),
            Err(e) => problems.push(e),
        }
    }
    let Some((m, replicas)) = best else {
        if known.primary.is_some() {
            return true; // keep the last good set
        }
        let each: Vec<&str> = problems.iter().map(|p| p.text.as_str()).collect();
        let each = each.join("; ");
        return match tls_reason(&problems) {
            Some(reason) => out.tls_problem(
                format!(
                    "no sentinel gave the address of master {:?}: the TLS handshake failed with \
                     every sentinel reached (the sentinels' TLS options are \
                     sentinel_ssl_ca_certs, sentinel_ssl_check_hostname ..., or sentinel_kwargs; \
                     each failure says which one changes it): {each}",
                    spec.master
                ),
                reason,
            ),
            None => out.problem(format!(
                "no sentinel gave the address of master {:?}: {each}",
                spec.master
            )),
        };
    };
    known.primary = Some((m.addr, Role::Primary));
    known.replicas = replicas;
    known.epoch = m.epoch;
    known.publish(&spec.master, out)
}

/// When every sentinel reached failed its TLS handshake (the others were
/// not reached at all): the first one's reason.
fn tls_reason(problems: &[Failure]) -> Option<&'static str> {
    let mut first = None;
    for p in problems {
        match p.kind {
            Failed::Tls(r) => {
                first.get_or_insert(r);
            }
            Failed::Unreached => {}
            Failed::Other => return None,
        }
    }
    first
}

/// One sentinel's subscription: events about our master go to the
/// follower; reconnects with backoff while the sentinel is down; a
/// connection that stays silent through two pings is given up. Its first
/// outcome is reported once: subscribed, or not (no connection, or no
/// confirmation within `LIMIT`: it goes on waiting or trying).
async fn watch(addr: Addr, spec: Rc<Sentinel>, tx: mpsc::UnboundedSender<Note>) {
    let mut failures = 0u32;
    let mut reported = false;
    while !tx.is_closed() {
        if let Ok(mut link) = Link::open(&addr, &spec.auth, &*spec.via.sentinels, LIMIT).await {
            let mut args = vec!["SUBSCRIBE"];
            args.extend_from_slice(CHANNELS);
            if link.send(&args).await.is_ok() {
                let mut subscribed = false;
                let mut quiet = 0;
                loop {
                    let wait = if reported { REFRESH } else { LIMIT };
                    match tokio::time::timeout(wait, link.next()).await {
                        Ok(Ok(f)) if !subscribed && reply::error(&f).is_some() => {
                            break; // SUBSCRIBE refused (NOAUTH, ...): not subscribed
                        }
                        Ok(Ok(f)) => {
                            quiet = 0;
                            if !subscribed {
                                // SUBSCRIBE is taken whole: every channel is on.
                                subscribed = true;
                                failures = 0;
                                let _ = tx.send(Note::Subscribed { first: !reported });
                                reported = true;
                            }
                            if let Some(ev) = reply::event(&f, &spec.master) {
                                let _ = tx.send(Note::Event(ev));
                            }
                        }
                        Ok(Err(_)) => break,
                        Err(_) if !reported => {
                            // No confirmation within LIMIT: not ready to
                            // count on; keep waiting on this connection.
                            reported = true;
                            let _ = tx.send(Note::Unreached);
                        }
                        Err(_) => {
                            quiet += 1;
                            if quiet > 2 || link.send(&["PING"]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        }
        if !reported {
            reported = true;
            let _ = tx.send(Note::Unreached);
        }
        failures += 1;
        tokio::time::sleep(crate::kernel::service::backoff(failures)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(kind: Failed) -> Failure {
        Failure {
            text: String::new(),
            kind,
        }
    }

    #[test]
    fn tls_only_when_every_sentinel_reached_failed_tls() {
        let tls = |r| f(Failed::Tls(r));
        assert_eq!(
            tls_reason(&[tls("unknown_ca"), tls("expired")]),
            Some("unknown_ca")
        );
        assert_eq!(
            tls_reason(&[f(Failed::Unreached), tls("expired")]),
            Some("expired")
        );
        assert_eq!(
            tls_reason(&[f(Failed::Unreached), f(Failed::Unreached)]),
            None
        );
        assert_eq!(tls_reason(&[tls("expired"), f(Failed::Other)]), None);
        assert_eq!(tls_reason(&[]), None);
    }
}
