//! Routing a request: which endpoints its route allows, which of their
//! connections takes it (the balancer's pick), and what happens when none
//! can — it waits in the service queue, fails fast while those endpoints are
//! down, or fails at once when no endpoint fits the route.
//!
//! The queue is first in, first out among requests that could use the same
//! connections: `pump` moves requests in from the front and stops at the
//! first `Route::Shared` one that still finds no room (nothing behind it
//! could find any either), stepping over narrower routes that wait for their
//! own endpoints. With only shared requests (every client today) that is
//! the old rule: a request never overtakes one queued before it.
//!
//! Endpoints ejected for failing (`health`) are no candidates while at
//! least half of those that fit are healthy; below that, all are. An
//! endpoint of weight 0 fits but takes nothing: requests that only it fits
//! wait in the queue (bounded by their deadline) until the set changes.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::time::Instant as TokioInstant;

use super::task::{Core, Pool, Slot, State, WANTED_FOR};
use crate::kernel::attrs::Attrs;
use crate::kernel::balance::{Balancer, Candidate, Candidates};
use crate::kernel::dispatch::{Conn, Redirected};
use crate::kernel::endpoint::{EndpointSet, NoEndpoint};
use crate::kernel::stats::Outstanding;
use crate::kernel::{limits, KernelError, Protocol, Reason, Request, Route};

/// The balancer's view of the candidates in `slots`.
pub(super) struct View<'a, P: Protocol> {
    pub endpoints: &'a EndpointSet<Pool<P>>,
    pub slots: &'a [Slot],
}

impl<P: Protocol> Candidates for View<'_, P> {
    fn len(&self) -> usize {
        self.slots.len()
    }
    fn get(&self, i: usize) -> Candidate<'_> {
        let s = self.slots[i];
        let member = self.endpoints.get(s.m);
        Candidate {
            endpoint: &member.endpoint,
            load: s.load,
            latency: &member.data.health.latency,
        }
    }
}

/// Where a request can go now.
enum Place<P: Protocol> {
    Conn(Rc<Conn<P>>),
    /// Wait in the queue; `up`: some endpoint that fits has a connection.
    Wait {
        up: bool,
    },
    /// Every endpoint that fits failed to connect and none is up.
    Down(KernelError),
    NoFit,
}

/// Ejected endpoints take nothing, unless fewer than half of those that fit
/// are healthy (up and not ejected): then all do (Envoy's panic threshold).
fn panic(healthy: usize, fitting: usize) -> bool {
    healthy * 2 < fitting
}

/// Where a request with `route` can go. With `take`, the balancer picks
/// among the fitting connections that have room; without, only health is
/// looked at. One pass over the endpoints and their connections; the
/// candidates go to `scratch`, whose allocation is kept.
fn place<P: Protocol>(
    endpoints: &EndpointSet<Pool<P>>,
    scratch: &mut Vec<Slot>,
    route: &Route,
    max_in_flight: usize,
    balancer: &dyn Balancer,
    attrs: &Attrs,
    take: bool,
) -> Place<P> {
    let shared = *route == Route::Shared;
    // Endpoints the rule excludes that are up: one may take the role.
    let mut others_up = false;
    let target = match route {
        Route::Shared => attrs.target(endpoints, |p| !p.ready.is_empty()),
        Route::Read => attrs.read_target(endpoints, |p| !p.ready.is_empty()),
        _ => endpoints.target(route),
    };
    scratch.clear();
    let (mut fits, mut up) = (false, false);
    let mut down: Option<&KernelError> = None;
    let mut all_down = true;
    // Endpoints that fit, those up and not ejected, and whether any is.
    let (mut fitting, mut healthy, mut any_ejected) = (0usize, 0usize, false);
    let mut now = None;
    for (m, member) in endpoints.iter().enumerate() {
        if !target.includes(m, &member.endpoint)
            || (shared && !attrs.fits(&member.endpoint, member.data.read_only))
        {
            others_up |= shared && !member.data.ready.is_empty();
            continue;
        }
        fits = true;
        fitting += 1;
        let pool = &member.data;
        if !pool.ready.is_empty() {
            up = true;
        }
        match (&pool.last_error, pool.ready.is_empty()) {
            (Some(e), true) => down = down.or(Some(e)),
            _ => all_down = false,
        }
        // Weight 0: the endpoint takes nothing new; requests for it wait
        // (a primary held while a failover is under way: Redis Sentinel).
        if take && member.endpoint.weight > 0 {
            let h = &pool.health;
            let ejected =
                h.maybe_ejected() && h.is_ejected(*now.get_or_insert_with(TokioInstant::now));
            any_ejected |= ejected;
            healthy += usize::from(!ejected && !pool.ready.is_empty());
            for (c, conn) in pool.ready.iter().enumerate() {
                let load = conn.in_flight();
                if !conn.is_closed() && load < max_in_flight {
                    scratch.push(Slot {
                        m,
                        c,
                        load,
                        ejected,
                    });
                }
            }
        }
    }
    if !fits {
        return Place::NoFit;
    }
    if any_ejected && !panic(healthy, fitting) {
        scratch.retain(|s| !s.ejected);
    }
    if attrs.first_only {
        if let Some(first) = scratch.iter().map(|s| s.m).min() {
            scratch.retain(|s| s.m == first);
        }
    }
    if !scratch.is_empty() {
        let view = View {
            endpoints,
            slots: scratch,
        };
        if let Some(s) = balancer.pick(&view).and_then(|i| scratch.get(i)) {
            return Place::Conn(endpoints.get(s.m).data.ready[s.c].clone());
        }
    }
    let promotion = others_up && attrs.awaits_promotion();
    match down {
        Some(e) if all_down && !up && !promotion => Place::Down(e.clone()),
        _ => Place::Wait { up },
    }
}

impl<P: Protocol> Core<P> {
    fn place(&self, st: &mut State<P>, route: &Route, take: bool) -> Place<P> {
        place(
            &st.endpoints,
            &mut st.scratch,
            route,
            self.cfg.max_in_flight,
            &*self.cfg.balancer,
            &self.cfg.attrs,
            take,
        )
    }

    /// The queue now holds `n` requests.
    pub(super) fn queue_len(&self, n: usize) {
        self.metrics.queued.set(n as f64);
        let old = self.stats.queued.swap(n, Ordering::Relaxed);
        limits::queue_changed(old, n);
    }

    pub(super) fn no_endpoint(&self, st: &State<P>, route: Route) -> KernelError {
        let mut endpoints = st.endpoints.describe();
        let d = self
            .stats
            .discovery
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        if !d.problem.is_empty() {
            endpoints.push_str(&format!(" ({})", d.problem));
        }
        let e: KernelError = NoEndpoint {
            service: self.cfg.name.clone(),
            route,
            endpoints,
        }
        .into();
        // Discovery failed on TLS (every sentinel's handshake): `TLSError`.
        e.tls(d.tls.filter(|_| !d.problem.is_empty()))
    }

    /// Note discovery's state: why it has no endpoints ("" once it has),
    /// and the watches not in place yet.
    pub(super) fn discovery(&self, follow: &crate::kernel::discovery::Follow) {
        let mut d = self
            .stats
            .discovery
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        d.problem = follow.problems();
        d.tls = follow.problems_tls();
        d.pending = follow.pending();
    }

    pub(super) fn dispatch(&self, mut req: Request<P>, guard: Option<Outstanding>) {
        // A rule for reads (`read_from`): requests that only read take it.
        if req.route == Route::Shared
            && self.cfg.attrs.reads.is_some()
            && self.proto.reads_only(&req.payload)
        {
            req.route = Route::Read;
        }
        if let Route::Dedicated(id) = req.route {
            let conn = self.st.borrow().dedicated.get(&id).cloned();
            match conn {
                Some(c) if !c.is_closed() => c.push(&self.proto, req, guard),
                _ => {
                    drop(guard);
                    let why = self
                        .st
                        .borrow()
                        .gone
                        .iter()
                        .rev()
                        .find(|g| g.0 == id)
                        .map_or_else(|| "released or lost".to_string(), |g| g.1.clone());
                    req.completion.complete(Err(KernelError::connection(format!(
                        "{}: dedicated connection {id} is gone ({why}); a transaction on it is over \
                         (the server rolls back what was not committed): start again on a new one",
                        self.cfg.name
                    ))
                    .because(crate::kernel::Reason::ConnectionLost)))
                }
            }
            return;
        }
        let mut st = self.st.borrow_mut();
        // Behind queued requests it only takes a connection through `pump`
        // (first in, first out); its health is looked at either way.
        let queued = !st.queue.is_empty();
        let fail = match self.place(&mut st, &req.route, !queued) {
            Place::Conn(c) => {
                drop(st);
                c.push(&self.proto, req, guard);
                return;
            }
            Place::Wait { up } => {
                if !up {
                    self.want();
                }
                None
            }
            Place::Down(e) => {
                self.want();
                Some(
                    KernelError::connection(format!("{e} (reconnecting in the background)"))
                        .because(e.reason)
                        .tls(e.tls),
                )
            }
            Place::NoFit => Some(self.no_endpoint(&st, req.route.clone())),
        };
        if let Some(e) = fail {
            drop(st);
            drop(guard);
            req.completion.complete(Err(e));
            return;
        }
        st.queue.push_back((req, guard));
        self.queue_len(st.queue.len());
        drop(st);
        if queued {
            self.pump();
        }
        self.recheck();
    }

    /// A caller found no connection up: shorten the backoff of the tasks
    /// that are trying to connect.
    fn want(&self) {
        let first = self.wanted.get().is_none_or(|t| t.elapsed() >= WANTED_FOR);
        self.wanted.set(Some(Instant::now()));
        if first {
            self.demand.notify_waiters();
        }
    }

    /// Move queued requests onto connections with room.
    pub(super) fn pump(&self) {
        self.settle(false);
    }

    /// Go through the queue: requests that can go now go; with `all`
    /// (after a failed connect or an endpoint change) every request is
    /// looked at, and those whose endpoints are all down, or that no
    /// endpoint fits any more, fail.
    pub(super) fn settle(&self, all: bool) {
        let mut i = 0;
        loop {
            let (req, g, outcome) = {
                let mut st = self.st.borrow_mut();
                let st = &mut *st;
                let Some((req, _)) = st.queue.get(i) else {
                    return;
                };
                let shared = req.route == Route::Shared;
                let place = place(
                    &st.endpoints,
                    &mut st.scratch,
                    &req.route,
                    self.cfg.max_in_flight,
                    &*self.cfg.balancer,
                    &self.cfg.attrs,
                    true,
                );
                let outcome = match place {
                    Place::Conn(c) => Ok(c),
                    Place::Down(e) if all => Err(e),
                    Place::NoFit => Err(self.no_endpoint(st, req.route.clone())),
                    Place::Wait { .. } | Place::Down(_) if shared && !all => return,
                    Place::Wait { .. } | Place::Down(_) => {
                        i += 1;
                        continue;
                    }
                };
                let (req, g) = st.queue.remove(i).expect("looked at");
                self.queue_len(st.queue.len());
                (req, g, outcome)
            };
            match outcome {
                Ok(c) => c.push(&self.proto, req, g),
                Err(e) => {
                    drop(g);
                    req.completion.complete(Err(e));
                }
            }
        }
    }

    pub(super) fn expire_queued(&self) {
        let now = Instant::now();
        let expired: Vec<_> = {
            let mut st = self.st.borrow_mut();
            let (gone, keep): (std::collections::VecDeque<_>, _) = st
                .queue
                .drain(..)
                .partition(|(r, _)| r.deadline.is_some_and(|d| d <= now));
            st.queue = keep;
            self.queue_len(st.queue.len());
            gone.into_iter().collect()
        };
        for (r, g) in expired {
            drop(g);
            r.completion.complete(Err(KernelError::timeout(format!(
                "{}: no connection became available within the timeout",
                self.cfg.name
            ))
            .because(Reason::NoConnection)));
        }
    }

    pub(super) fn fail_queued(&self, err: &KernelError) {
        let q = std::mem::take(&mut self.st.borrow_mut().queue);
        self.queue_len(0);
        for (r, g) in q {
            drop(g);
            r.completion.complete(Err(err.clone()));
        }
    }
}

impl<P: Protocol> Core<P> {
    /// The server sent a request to another endpoint (it was not acted on):
    /// route it there, as any request for that endpoint (it waits for a
    /// connection that is coming up; it fails if the endpoint is not in the
    /// set).
    pub(super) fn reroute(&self, r: Redirected<P>) {
        let mut req = r.req;
        req.route = Route::Endpoint(r.to);
        self.dispatch(req, r.guard);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn panic_below_half_healthy() {
        use super::panic;
        assert!(!panic(2, 3) && !panic(1, 2) && !panic(3, 3));
        assert!(panic(1, 3) && panic(0, 2) && panic(0, 1) && panic(2, 5));
    }
}
