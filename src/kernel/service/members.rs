//! A service's endpoints at work: applying changes to the set, and per
//! endpoint the tasks that connect, run shared connections and reconnect
//! with exponential backoff and jitter when one drops. While callers want a
//! connection and none is up, the backoff step is capped at `WANTED_STEP`,
//! so a server that comes back after a long outage is found within that
//! time, not after a 5 s step; an idle service backs off to the full 5 s.
//! So does a service that takes requests (on its other endpoints): an
//! endpoint that went down is re-admitted within that step of coming back.
//!
//! An added endpoint takes requests once a connection to it is up (its
//! connections join `Pool::ready` only then). A removed one takes no new
//! requests at once; its connection tasks stop, but each connection runs in
//! a task of its own, so the requests already on it are answered, and it
//! closes when none is left (checked as replies complete, bounded by
//! `DRAIN_LIMIT`). Every change recomputes the admission limit and looks at
//! the queue again (a request may now have somewhere to go, or nowhere).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::task::{backoff, next_rand, Core, Pool, WANTED_FOR, WANTED_STEP};
use crate::kernel::conn;
use crate::kernel::dispatch::{Conn, Redirected};
use crate::kernel::endpoint::{Applied, Change, Endpoint};
use crate::kernel::handshake;
use crate::kernel::stats::{AddrMetrics, Outstanding};
use crate::kernel::transport::Addr;
use crate::kernel::{KernelError, Protocol, Request};

/// How long a removed endpoint's connection may take to answer what is on
/// it before it is closed anyway (those requests then fail).
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

impl<P: Protocol> Core<P> {
    /// Apply changes to the endpoint set.
    pub(super) fn change(self: &Rc<Self>, changes: Vec<Change>) {
        for c in changes {
            self.apply(c);
        }
        self.changed();
    }

    /// Make the endpoint set `new`.
    pub(super) fn replace(self: &Rc<Self>, new: Vec<Endpoint>) {
        let changes = self.st.borrow().endpoints.diff(&new);
        self.change(changes);
    }

    fn apply(self: &Rc<Self>, change: Change) {
        if let Change::Insert(ep) = &change {
            // Before any connection to it opens: the name TLS verifies.
            self.connector.learn_name(&ep.addr, ep.tls_name.as_deref());
        }
        let mut st = self.st.borrow_mut();
        let applied = st.endpoints.apply(change, |ep| Pool {
            health: self.addr_metrics(&ep.addr).health,
            tasks: (0..self.cfg.conns_per_addr.max(1))
                .map(|_| tokio::task::spawn_local(endpoint_task(self.clone(), ep.addr.clone())))
                .collect(),
            ready: Vec::new(),
            last_error: None,
            leased: 0,
            read_only: None,
        });
        let Applied::Removed(ep, pool) = applied else {
            return; // added (its tasks are connecting) or updated in place
        };
        for t in pool.tasks {
            t.abort();
        }
        let (idle, busy): (Vec<_>, Vec<_>) =
            pool.ready.into_iter().partition(|c| c.in_flight() == 0);
        st.draining.extend(busy.iter().cloned());
        drop(st);
        let removed = move || {
            KernelError::connection(format!("{}: endpoint removed from the service", ep.addr))
        };
        for c in idle {
            c.close(&removed());
        }
        if !busy.is_empty() {
            let busy: Vec<_> = busy.iter().map(Rc::downgrade).collect();
            tokio::task::spawn_local(async move {
                tokio::time::sleep(DRAIN_LIMIT).await;
                for c in busy.iter().filter_map(std::rc::Weak::upgrade) {
                    c.close(&removed());
                }
            });
        }
    }

    /// After changes: the limit follows the set; queued requests may have
    /// somewhere to go now, or nowhere.
    fn changed(&self) {
        let n = self.st.borrow().endpoints.len();
        self.stats.limit.store(self.cfg.limit(n), Ordering::Relaxed);
        self.settle(true);
    }

    /// Replies completed on `c`: move queued requests in; a removed
    /// endpoint's connection closes once nothing is left on it.
    fn progress(&self, c: &Conn<P>) {
        self.pump();
        let drained = {
            let st = self.st.borrow();
            !st.draining.is_empty()
                && c.in_flight() == 0
                && st.draining.iter().any(|d| std::ptr::eq(&**d, c))
        };
        if drained {
            c.close(&KernelError::connection(format!(
                "{}: endpoint removed from the service",
                c.addr
            )));
        }
    }

    fn addr_metrics(&self, a: &Addr) -> AddrMetrics {
        self.addr_metrics
            .borrow_mut()
            .entry(a.clone())
            .or_insert_with(|| self.metrics.for_addr(a))
            .clone()
    }

    pub(super) fn new_conn(&self, addr: Addr, dedicated: bool, state: P::ConnState) -> Rc<Conn<P>> {
        let am = self.addr_metrics(&addr);
        am.connects.add(1.0);
        am.connections.add(1.0);
        Conn::new(
            self.fresh_id(),
            addr,
            dedicated,
            self.metrics.clone(),
            am,
            state,
            self.connector.clone(),
        )
    }

    pub(super) fn conn_gone(&self, c: &Conn<P>) {
        let am = self.addr_metrics(&c.addr);
        am.connections.add(-1.0);
        am.disconnects.add(1.0);
    }

    pub(super) fn connect_failed(&self, addr: &Addr, e: &KernelError) {
        let am = self.addr_metrics(addr);
        am.connect_failures.add(1.0);
        am.errors.add(1.0);
        am.health.connect_failed(&e.detail);
    }

    /// The server told `c` its role or whether it is read-only
    /// (`Protocol::role`, `Protocol::read_only`): put it on the endpoint,
    /// where routes by role, `target_session_attrs` and `endpoints()` see it.
    fn learn_role(&self, c: &Conn<P>) {
        let (role, read_only) = {
            let mut g = c.inner.borrow_mut();
            (
                self.proto.role(&mut g.state),
                self.proto.read_only(&mut g.state),
            )
        };
        if role.is_none() && read_only.is_none() {
            return;
        }
        if let Some(m) = self.st.borrow_mut().endpoints.find_mut(&c.addr) {
            if let Some(r) = role {
                m.endpoint.role = r;
            }
            if read_only.is_some() {
                m.data.read_only = read_only;
            }
        }
    }

    /// A shared connection is up. False if its endpoint left meanwhile.
    fn on_ready(&self, c: &Rc<Conn<P>>) -> bool {
        self.learn_role(c);
        {
            let mut st = self.st.borrow_mut();
            let Some(m) = st.endpoints.find_mut(&c.addr) else {
                return false;
            };
            m.data.ready.push(c.clone());
            m.data.last_error = None;
            m.data.health.connected();
            st.last_error = None;
            if let Some(sink) = &st.sink {
                c.subscribe(sink.clone());
            }
        }
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        self.wanted.set(None); // callers' wish is met
        self.pump();
        true
    }

    fn on_lost(&self, c: &Rc<Conn<P>>) {
        self.conn_gone(c);
        self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        self.stats.connections.fetch_sub(1, Ordering::Relaxed);
        let mut st = self.st.borrow_mut();
        if let Some(m) = st.endpoints.find_mut(&c.addr) {
            m.data.ready.retain(|x| !Rc::ptr_eq(x, c));
        }
        st.draining.retain(|x| !Rc::ptr_eq(x, c));
    }

    fn on_connect_failed(&self, addr: &Addr, e: &KernelError) {
        self.connect_failed(addr, e);
        self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
        let down = {
            let mut st = self.st.borrow_mut();
            let Some(m) = st.endpoints.find_mut(addr) else {
                return;
            };
            if !m.data.ready.is_empty() {
                return;
            }
            m.data.last_error = Some(e.clone());
            if st.endpoints.iter().all(|m| m.data.ready.is_empty()) {
                st.last_error = Some(e.clone());
            }
            true
        };
        if down {
            // Requests waiting only for endpoints that are all down now fail.
            self.settle(true);
        }
    }

    /// Sleep out the backoff step after `failures` failed attempts, cut
    /// short to `WANTED_STEP` while callers want a connection, or `in_use`
    /// (the service took requests since the last attempt: other endpoints
    /// carry its traffic, and this one is re-admitted within that step of
    /// coming back).
    async fn backoff_sleep(&self, failures: u32, in_use: bool) {
        let start = tokio::time::Instant::now();
        let full = backoff(failures);
        let quick =
            full.min(WANTED_STEP / 2 + WANTED_STEP.mul_f64((next_rand() % 1000) as f64 / 2000.0));
        loop {
            let notified = self.demand.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let wanted = in_use || self.wanted.get().is_some_and(|t| t.elapsed() < WANTED_FOR);
            let until = start + if wanted { quick } else { full };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                _ = notified => {}
            }
        }
    }
}

/// One of an endpoint's connection tasks: connect, run, reconnect; until the
/// endpoint leaves the set (the task is aborted then; a connection it runs
/// is not).
async fn endpoint_task<P: Protocol>(core: Rc<Core<P>>, addr: Addr) {
    let mut failures = 0u32;
    let requests = || core.stats.requests.load(Ordering::Relaxed);
    let mut seen = requests();
    loop {
        match handshake::connect(
            &*core.proto,
            &*core.connector,
            &addr,
            core.cfg.connect_timeout,
        )
        .await
        {
            Ok(k) => {
                failures = 0;
                let c = core.new_conn(addr.clone(), false, k.state);
                if !core.on_ready(&c) {
                    core.conn_gone(&c);
                    return;
                }
                let running = tokio::task::spawn_local(run_shared(
                    core.clone(),
                    c,
                    conn::Wire {
                        reader: k.reader,
                        writer: k.writer,
                        buf: k.buf,
                        hold: conn::Hold::for_stream(k.tls, core.proto.hold_plain_writes()),
                    },
                ));
                let _ = running.await;
            }
            Err(e) => {
                failures += 1;
                core.on_connect_failed(&addr, &e);
            }
        }
        if failures > 0 {
            let now = requests();
            core.backoff_sleep(failures, now != seen).await;
            seen = now;
        }
    }
}

/// Run a shared connection until it ends.
async fn run_shared<P: Protocol>(core: Rc<Core<P>>, c: Rc<Conn<P>>, io: conn::Wire) {
    let link = Shared {
        core: core.clone(),
        conn: c.clone(),
        again: RefCell::new(Vec::new()),
    };
    conn::run(c.clone(), &*core.proto, io, core.cfg.idle_ping, &link).await;
    core.on_lost(&c);
    // Only now, with this connection out of the set, may they be routed.
    for (req, guard) in link.again.take() {
        core.dispatch(req, guard);
    }
}

/// What a shared connection tells its service.
struct Shared<P: Protocol> {
    core: Rc<Core<P>>,
    conn: Rc<Conn<P>>,
    /// Requests of this connection to send again once it is gone.
    again: RefCell<Vec<(Request<P>, Option<Outstanding>)>>,
}

impl<P: Protocol> conn::Link<P> for Shared<P> {
    fn progress(&self) {
        self.core.learn_role(&self.conn);
        self.core.progress(&self.conn);
    }

    fn redirect(&self, r: Redirected<P>) {
        self.core.reroute(r);
    }

    fn resend(&self, req: Request<P>, guard: Option<Outstanding>) {
        self.again.borrow_mut().push((req, guard));
    }

    fn idempotent(&self) -> bool {
        self.core.cfg.idempotent
    }
}
