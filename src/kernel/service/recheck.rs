//! Re-checking the hosts during a failover (issue 13). When the endpoints
//! that fit a service's `target_session_attrs=read-write|primary` are all
//! down (the primary died) while others are up (a standby that may be
//! promoted), shared requests wait in the queue, until their deadline,
//! instead of failing: they were never written, so they go to the new
//! primary as soon as there is one. Meanwhile the idle connections of the
//! endpoints that do not fit are sent a heartbeat every `RECHECK`, so their
//! servers report their role at once (PostgreSQL sends `in_hot_standby=off`
//! with its first reply after a promotion), not at the next idle health
//! check; the report moves the waiting requests (`learn_role`, `pump`).

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::task::Core;
use crate::kernel::dispatch::Conn;
use crate::kernel::{Completion, Protocol, Request, Route, Summary};

/// How often the hosts are re-checked while requests wait for a role.
pub(super) const RECHECK: Duration = Duration::from_millis(100);

impl<P: Protocol> Core<P> {
    /// Requests wait in the queue: if no endpoint that fits is up,
    /// heartbeat the idle connections of those the rule excludes (at most
    /// every `RECHECK`).
    pub(super) fn recheck(&self) {
        if !self.cfg.attrs.awaits_promotion() {
            return;
        }
        let now = Instant::now();
        if self.rechecked.get().is_some_and(|t| now - t < RECHECK) {
            return;
        }
        self.rechecked.set(Some(now));
        let idle: Vec<Rc<Conn<P>>> = {
            let st = self.st.borrow();
            let attrs = &self.cfg.attrs;
            let target = attrs.target(&st.endpoints, |p| !p.ready.is_empty());
            let (fit, other): (Vec<_>, Vec<_>) =
                st.endpoints.iter().enumerate().partition(|(i, m)| {
                    target.includes(*i, &m.endpoint) && attrs.fits(&m.endpoint, m.data.read_only)
                });
            if fit.iter().any(|(_, m)| !m.data.ready.is_empty()) {
                return; // they wait for room, not for a role
            }
            other
                .iter()
                .flat_map(|(_, m)| m.data.ready.iter())
                .filter(|c| c.in_flight() == 0 && !c.is_closed())
                .cloned()
                .collect()
        };
        for c in idle {
            let Some((payload, pending)) = self.proto.heartbeat() else {
                return;
            };
            let req = Request {
                payload,
                pending,
                completion: Completion::none(),
                deadline: Some(now + RECHECK * 10),
                route: Route::Shared,
                submitted: now,
                summary: Summary::new(b"HEARTBEAT"),
                body: None,
                resends: 0,
            };
            c.push(&self.proto, req, None);
        }
    }
}
