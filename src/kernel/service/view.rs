//! What the admin endpoint sees of services: every live service of this
//! kernel registers here, and answers `/status` and `/inflight` on the
//! kernel thread. `EndpointInfo` is one endpoint as `/status` and a
//! client's `endpoints()` show it.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::task::{Core, Pool};
use crate::kernel::endpoint::Member;
use crate::kernel::health::EndpointInfo;
use crate::kernel::Protocol;

/// One endpoint of a service as `/status` and `endpoints()` show it.
fn info<P: Protocol>(m: &Member<Pool<P>>, now: tokio::time::Instant) -> EndpointInfo {
    let pool = &m.data;
    let h = &pool.health;
    let state = if pool.ready.is_empty() {
        if pool.last_error.is_some() {
            "down"
        } else {
            "connecting"
        }
    } else if h.is_ejected(now) {
        "ejected"
    } else {
        "up"
    };
    let last_error = pool
        .last_error
        .as_ref()
        .map(|e| e.detail.clone())
        .or_else(|| h.last_error.borrow().clone());
    EndpointInfo {
        address: m.endpoint.addr.to_string(),
        origin: m.endpoint.origin.clone(),
        state,
        role: m.endpoint.role.name(),
        read_only: pool.read_only,
        connections: pool.ready.len(),
        in_flight: pool.ready.iter().map(|c| c.in_flight()).sum(),
        latency_ms: h.latency.estimate(now) * 1000.0,
        requests: h.requests.get(),
        errors: h.errors.get(),
        last_error,
    }
}

impl<P: Protocol> Core<P> {
    /// Every current endpoint, in the order they arrived.
    pub(super) fn endpoint_infos(&self) -> Vec<EndpointInfo> {
        let now = tokio::time::Instant::now();
        let st = self.st.borrow();
        st.endpoints.iter().map(|m| info(m, now)).collect()
    }
}

/// What the admin endpoint can ask of a service (on the kernel thread).
pub trait ServiceView {
    fn status(&self) -> serde_json::Value;
    fn inflight(&self, out: &mut Vec<serde_json::Value>, max: usize);
}

thread_local! {
    static VIEWS: RefCell<Vec<Weak<dyn ServiceView>>> = const { RefCell::new(Vec::new()) };
}

/// Every live service of this kernel (call on the kernel thread).
pub fn views() -> Vec<Rc<dyn ServiceView>> {
    VIEWS.with(|v| v.borrow().iter().filter_map(Weak::upgrade).collect())
}

pub(super) fn register<P: Protocol>(core: &Rc<Core<P>>) {
    let view: Rc<dyn ServiceView> = core.clone();
    VIEWS.with(|v| {
        let mut v = v.borrow_mut();
        v.retain(|w| w.strong_count() > 0);
        v.push(Rc::downgrade(&view));
    });
}

impl<P: Protocol> ServiceView for Core<P> {
    fn status(&self) -> serde_json::Value {
        let endpoints: Vec<_> = self.endpoint_infos().iter().map(|e| e.to_json()).collect();
        let st = self.st.borrow();
        let ready = || st.endpoints.iter().flat_map(|m| m.data.ready.iter());
        let health = if ready().next().is_some() {
            "up"
        } else if st.last_error.is_some() {
            "down"
        } else {
            "connecting"
        };
        let conns: Vec<_> = ready()
            .chain(st.draining.iter())
            .chain(st.dedicated.values())
            .map(|c| c.status())
            .collect();
        serde_json::json!({
            "name": self.cfg.name,
            "protocol": self.proto.name(),
            "health": health,
            "last_error": st.last_error.as_ref().map(|e| e.detail.clone()),
            "addresses": st.endpoints.iter().map(|m| m.endpoint.addr.to_string()).collect::<Vec<_>>(),
            "outstanding": self.stats.outstanding.load(Ordering::Relaxed),
            "queued": st.queue.len(),
            "limits": {"max_in_flight": self.cfg.max_in_flight, "max_queued": self.cfg.max_queued,
                       "connect_timeout_s": self.cfg.connect_timeout.as_secs_f64()},
            "connections": conns,
            "endpoints": endpoints,
        })
    }

    fn inflight(&self, out: &mut Vec<serde_json::Value>, max: usize) {
        let st = self.st.borrow();
        let conns = st
            .endpoints
            .iter()
            .flat_map(|m| m.data.ready.iter())
            .chain(st.draining.iter())
            .chain(st.dedicated.values());
        for c in conns {
            c.inflight(&self.cfg.name, out, max);
        }
        let now = Instant::now();
        for (r, _) in st.queue.iter() {
            if out.len() >= max {
                return;
            }
            out.push(serde_json::json!({
                "service": self.cfg.name, "address": null, "connection": null,
                "command": r.summary.as_str(), "age_ms": (now - r.submitted).as_secs_f64() * 1000.0,
                "written": false, "timed_out": false,
            }));
        }
    }
}
