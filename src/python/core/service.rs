//! `Service<P>`: what every protocol's pyclass holds, and all that a service
//! does the same way whatever its protocol — open it, send a request and
//! wait (blocking callers) or hand back a future the loop's `Completer`
//! resolves (asyncio), lease and release a dedicated connection, report its
//! counters. pyo3 classes cannot be generic, so each protocol's class
//! (`RedisService`, `PgService`) keeps its own `#[pymethods]`, each a line
//! calling these; what is protocol-specific (encoding the request, choosing
//! the reply's `Conv`) stays in the protocol's folder.
//!
//! A request costs here what it cost before this was shared: one atomic add
//! to reserve room under the limits, the `Request`, one queue push.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::call::Call;
use super::completer::Completer;
use super::conv::{self, Conv};
use super::cork::Corked;
use super::errors::to_pyerr;
use super::wait::{deadline, deadline_from, wait};
use crate::kernel::body::Body;
use crate::kernel::service::{ServiceConfig, ServiceHandle};
use crate::kernel::stats::Outstanding;
use crate::kernel::transport::Addr;
use crate::kernel::{Completion, Items, Protocol, Request, Route, Slot, Summary};

pub struct Service<P: Protocol> {
    h: Arc<ServiceHandle<P>>,
}

/// A service's requests of one loop turn (`Completer::cork`).
struct TurnBatch<P: Protocol> {
    h: Arc<ServiceHandle<P>>,
    reqs: Vec<(Request<P>, Outstanding)>,
}

impl<P: Protocol> Corked for TurnBatch<P> {
    fn send(self: Box<Self>) {
        let TurnBatch { h, reqs } = *self;
        if reqs.len() == 1 {
            let (req, guard) = reqs.into_iter().next().expect("one");
            h.send(req, guard);
        } else {
            h.send_all(reqs);
        }
    }
    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

fn route(conn: Option<u64>) -> Route {
    conn.map_or(Route::Shared, Route::Dedicated)
}

impl<P: Protocol> Service<P> {
    /// Open the kernel service (with the GIL released).
    pub fn open(py: Python<'_>, proto: P, config: ServiceConfig) -> PyResult<Self> {
        crate::python::discovery::check_settings()?;
        let h = py
            .detach(|| ServiceHandle::open(proto, config))
            .map_err(|e| to_pyerr(py, e))?;
        Ok(Service { h })
    }

    /// The URL without secrets.
    pub fn name(&self) -> String {
        self.h.config.name.clone()
    }

    /// Why discovery gave no endpoints yet ("" if it did).
    pub fn discovery_problem(&self) -> String {
        self.h.discovery().problem
    }

    /// The TLS reason when TLS failures are why discovery gave no
    /// endpoints (`TLSError.tls_reason`), else `None`.
    pub fn discovery_tls_reason(&self) -> Option<&'static str> {
        let d = self.h.discovery();
        d.tls.filter(|_| !d.problem.is_empty())
    }

    /// The watches not in place yet ("" when none: `ready()` waits).
    pub fn discovery_pending(&self) -> String {
        self.h.discovery().pending
    }

    /// Submit and wait (GIL released while waiting).
    #[allow(clippy::too_many_arguments)]
    pub fn blocking(
        &self,
        py: Python<'_>,
        payload: Bytes,
        pending: P::Pending,
        summary: Summary,
        timeout: Option<f64>,
        conn: Option<u64>,
        conv: Conv,
    ) -> PyResult<Py<PyAny>> {
        let slot = self.send_blocking(py, payload, pending, summary, timeout, conn, None)?;
        wait_reply(py, &slot, timeout, conv)
    }

    /// The first half of `blocking`: submit, with the rest of the request's
    /// bytes still to come through `body` if it has one. `wait_reply` is
    /// the second half.
    #[allow(clippy::too_many_arguments)]
    pub fn send_blocking(
        &self,
        py: Python<'_>,
        payload: Bytes,
        pending: P::Pending,
        summary: Summary,
        timeout: Option<f64>,
        conn: Option<u64>,
        body: Option<Body>,
    ) -> PyResult<Arc<Slot>> {
        let now = Instant::now();
        let deadline = deadline_from(now, timeout)?;
        let guard = self.h.admit().map_err(|e| to_pyerr(py, e))?;
        let slot = Slot::new();
        let req = Request {
            payload,
            pending,
            completion: Completion::slot(slot.clone()).with_metrics(self.h.metrics.clone()),
            deadline,
            route: route(conn),
            submitted: now,
            summary,
            body,
            resends: 0,
        };
        self.h.send(req, guard);
        Ok(slot)
    }

    /// Submit for an asyncio caller: `fut` (a future of the running loop)
    /// gets the result, converted by `conv` and then by `post` if given;
    /// returns a `Call` that awaits it. A full service fails fast, on the
    /// future. `body`: the rest of the request's bytes, still to come.
    #[allow(clippy::too_many_arguments)]
    pub fn submit<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        payload: Bytes,
        pending: P::Pending,
        summary: Summary,
        post: Option<Py<PyAny>>,
        timeout: Option<f64>,
        conn: Option<u64>,
        conv: Conv,
        body: Option<Body>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let now = Instant::now();
        let deadline = deadline_from(now, timeout)?;
        let guard = match self.h.admit() {
            Ok(g) => g,
            Err(e) => {
                fut.call_method1(
                    intern!(py, "set_exception"),
                    (to_pyerr(py, e).into_value(py),),
                )?;
                return Call::wrap(py, fut);
            }
        };
        let token = completer.register(fut.clone().unbind(), post, conv);
        let streamed = body.is_some();
        let req = Request {
            payload,
            pending,
            completion: completer
                .completion(token)
                .with_metrics(self.h.metrics.clone()),
            deadline,
            route: route(conn),
            submitted: now,
            summary,
            body,
            resends: 0,
        };
        if streamed {
            // Its body's producer may wait for the kernel to take bytes:
            // it goes now (after what the turn holds, to keep the order).
            completer.uncork();
            self.h.send(req, guard);
        } else {
            completer.cork(&fut, |last: Option<&mut TurnBatch<P>>| match last {
                Some(b) if Arc::ptr_eq(&b.h, &self.h) => {
                    b.reqs.push((req, guard));
                    None
                }
                _ => Some(TurnBatch {
                    h: self.h.clone(),
                    reqs: vec![(req, guard)],
                }),
            });
        }
        Call::wrap(py, fut)
    }

    /// Submit a request whose reply comes in parts, each pushed to `items`
    /// as it arrives (`Feed::Item`), the last by the completion.
    pub fn send_stream(
        &self,
        py: Python<'_>,
        pending: P::Pending,
        summary: Summary,
        conn: Option<u64>,
        items: Arc<Items>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let now = Instant::now();
        let deadline = deadline_from(now, timeout)?;
        let guard = self.h.admit().map_err(|e| to_pyerr(py, e))?;
        let req = Request {
            payload: Bytes::new(),
            pending,
            completion: Completion::stream(items).with_metrics(self.h.metrics.clone()),
            deadline,
            route: route(conn),
            submitted: now,
            summary,
            body: None,
            resends: 0,
        };
        self.h.send(req, guard);
        Ok(())
    }

    /// Send the server's pushes (every shared connection's, now and after
    /// reconnects) to `items`; a lost connection leaves an error in it.
    pub fn subscribe(&self, py: Python<'_>, items: Arc<Items>) -> PyResult<()> {
        self.h.subscribe(items).map_err(|e| to_pyerr(py, e))
    }

    /// Open a dedicated connection (blocking); returns its id. The kernel
    /// gives up at the same deadline, so a connection is never handed to
    /// nobody.
    pub fn lease(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let t = timeout.unwrap_or(self.h.config.connect_timeout.as_secs_f64());
        let slot = Slot::new();
        self.h
            .lease(Completion::slot(slot.clone()), deadline(Some(t))?)
            .map_err(|e| to_pyerr(py, e))?;
        let delivered = wait(py, &slot, Some(t))?;
        conv::LEASE.apply(py, delivered.outcome)
    }

    /// Asyncio form of `lease`: `fut` gets the id.
    pub fn submit_lease<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dl = deadline(timeout)?;
        let token = completer.register(fut.clone().unbind(), None, conv::LEASE);
        if let Err(e) = self.h.lease(completer.completion(token), dl) {
            completer.unregister(token);
            return Err(to_pyerr(py, e));
        }
        Ok(fut)
    }

    /// Close a dedicated connection.
    pub fn release(&self, conn: u64) {
        self.h.release(conn);
    }

    /// Counters of the service (shared by every client with the same URL).
    pub fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.h.stats;
        let d = PyDict::new(py);
        d.set_item("outstanding", s.outstanding.load(Relaxed))?;
        d.set_item("requests", s.requests.load(Relaxed))?;
        d.set_item("writes", self.h.metrics.writes.get() as u64)?;
        d.set_item("connections", s.connections.load(Relaxed))?;
        d.set_item("dedicated_connections", s.dedicated.load(Relaxed))?;
        d.set_item("connects", s.connects.load(Relaxed))?;
        d.set_item("connect_failures", s.connect_failures.load(Relaxed))?;
        d.set_item("disconnects", s.disconnects.load(Relaxed))?;
        for (k, v) in self.h.config.connector.stats() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }
}

impl<P: Protocol> Service<P> {
    /// Every current endpoint, one dict each (see `EndpointInfo`).
    pub fn endpoints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let infos = py
            .detach(|| self.h.endpoints())
            .map_err(|e| to_pyerr(py, e))?;
        let out = PyList::empty(py);
        for e in infos {
            let d = PyDict::new(py);
            d.set_item("address", e.address)?;
            d.set_item("origin", e.origin)?;
            d.set_item("state", e.state)?;
            d.set_item("role", e.role)?;
            d.set_item("read_only", e.read_only)?;
            d.set_item("connections", e.connections)?;
            d.set_item("in_flight", e.in_flight)?;
            d.set_item("latency_ms", e.latency_ms)?;
            d.set_item("requests", e.requests)?;
            d.set_item("errors", e.errors)?;
            d.set_item("last_error", e.last_error)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Replace the endpoint set by these addresses ("host:port" or a
    /// socket path), each its own endpoint (for tests and tools until name
    /// discovery feeds the set).
    pub fn set_addresses(&self, py: Python<'_>, addrs: Vec<String>) -> PyResult<()> {
        let mut parsed = Vec::with_capacity(addrs.len());
        for a in addrs {
            parsed.push(parse_addr(&a).ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "{a:?} is not an address: give \"host:port\" or an absolute socket path"
                ))
            })?);
        }
        self.h.set_addrs(parsed).map_err(|e| to_pyerr(py, e))
    }
}

fn parse_addr(a: &str) -> Option<Addr> {
    if a.starts_with('/') {
        return Some(Addr::Unix(a.into()));
    }
    let (host, port) = a.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then_some(())?;
    Some(Addr::Tcp(host.to_string(), port.parse().ok()?))
}

/// Wait for a blocking request's reply (`send_blocking`) and convert it.
pub fn wait_reply(
    py: Python<'_>,
    slot: &Arc<Slot>,
    timeout: Option<f64>,
    conv: Conv,
) -> PyResult<Py<PyAny>> {
    let delivered = wait(py, slot, timeout)?;
    delivered.picked_up();
    conv.apply(py, delivered.outcome)
}
