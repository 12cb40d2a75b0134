//! How any protocol's request goes from a Python call to the kernel and back:
//! reserve room under the service limits, build the `Request`, then either
//! wait with the GIL released (blocking callers) or hand back a future that
//! the loop's `Completer` resolves (asyncio). Shared by every protocol
//! binding, so the two paths exist once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::call::Call;
use super::completer::{convert, Completer, Conv};
use super::errors::to_pyerr;
use crate::kernel::body::Body;
use crate::kernel::completion::Delivered;
use crate::kernel::service::ServiceHandle;
use crate::kernel::{Completion, KernelError, Protocol, Request, Route, Slot, Summary};

/// An option in seconds as a `Duration`: > 0 and representable, else a
/// `ValueError` naming the option (never a panic on NaN, infinity or 1e300).
pub fn seconds(name: &str, t: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(t)
        .ok()
        .filter(|d| !d.is_zero() && t > 0.0)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{name}={t} is not allowed: {name} must be a number of seconds > 0"
            ))
        })
}

pub fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        // Checked: a huge or infinite value is refused, never a panic.
        Some(t) if t > 0.0 => Duration::try_from_secs_f64(t)
            .ok()
            .and_then(|d| Instant::now().checked_add(d))
            .map(Some)
            .ok_or_else(|| {
                PyValueError::new_err(format!("timeout={t} is too long; use None for no limit"))
            }),
        Some(t) => Err(PyValueError::new_err(format!(
            "timeout must be a positive number of seconds or None, not {t}"
        ))),
    }
}

fn route(conn: Option<u64>) -> Route {
    conn.map_or(Route::Shared, Route::Dedicated)
}

/// Wait for a blocking caller's reply with the GIL released, waking every
/// 100 ms to let Ctrl-C through. The kernel enforces the deadline; the extra
/// second here only guards against a kernel that stopped answering.
pub fn wait(py: Python<'_>, slot: &Arc<Slot>, timeout: Option<f64>) -> PyResult<Delivered> {
    let give_up = timeout
        .and_then(|t| Duration::try_from_secs_f64(t).ok())
        .and_then(|d| d.checked_add(Duration::from_secs(1)))
        .and_then(|d| Instant::now().checked_add(d));
    loop {
        let s = slot.clone();
        if let Some(o) = py.detach(move || s.wait(Duration::from_millis(100))) {
            return Ok(o);
        }
        py.check_signals()?;
        if give_up.is_some_and(|g| Instant::now() >= g) {
            return Err(to_pyerr(
                py,
                KernelError::timeout("the I/O kernel did not answer in time"),
            ));
        }
    }
}

/// Submit and wait (GIL released while waiting).
#[allow(clippy::too_many_arguments)]
pub fn blocking<P: Protocol>(
    py: Python<'_>,
    h: &ServiceHandle<P>,
    payload: Bytes,
    pending: P::Pending,
    summary: Summary,
    timeout: Option<f64>,
    conn: Option<u64>,
    conv: Conv,
) -> PyResult<Py<PyAny>> {
    let slot = send_blocking(py, h, payload, pending, summary, timeout, conn, None)?;
    wait_reply(py, &slot, timeout, conv)
}

/// The first half of `blocking`: submit, with the rest of the request's
/// bytes still to come through `body` if it has one.
#[allow(clippy::too_many_arguments)]
pub fn send_blocking<P: Protocol>(
    py: Python<'_>,
    h: &ServiceHandle<P>,
    payload: Bytes,
    pending: P::Pending,
    summary: Summary,
    timeout: Option<f64>,
    conn: Option<u64>,
    body: Option<Body>,
) -> PyResult<Arc<Slot>> {
    let deadline = deadline(timeout)?;
    let guard = h.admit().map_err(|e| to_pyerr(py, e))?;
    let slot = Slot::new();
    let req = Request {
        payload,
        pending,
        completion: Completion::slot(slot.clone()).with_metrics(h.metrics.clone()),
        deadline,
        route: route(conn),
        submitted: Instant::now(),
        summary,
        body,
    };
    h.send(req, guard);
    Ok(slot)
}

/// The second half of `blocking`: wait for the reply and convert it.
pub fn wait_reply(
    py: Python<'_>,
    slot: &Arc<Slot>,
    timeout: Option<f64>,
    conv: Conv,
) -> PyResult<Py<PyAny>> {
    let delivered = wait(py, slot, timeout)?;
    delivered.picked_up();
    convert(py, delivered.outcome, conv)
}

/// Submit for an asyncio caller: `fut` (a future of the running loop) gets
/// the result; returns a `Call` that awaits it. A full service fails fast,
/// on the future. `body`: the rest of the request's bytes, still to come.
#[allow(clippy::too_many_arguments)]
pub fn submit<'py, P: Protocol>(
    py: Python<'py>,
    h: &ServiceHandle<P>,
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
    let deadline = deadline(timeout)?;
    let guard = match h.admit() {
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
    let req = Request {
        payload,
        pending,
        completion: completer.completion(token).with_metrics(h.metrics.clone()),
        deadline,
        route: route(conn),
        submitted: Instant::now(),
        summary,
        body,
    };
    h.send(req, guard);
    Call::wrap(py, fut)
}

/// Open a dedicated connection (blocking); returns its id. The kernel gives
/// up at the same deadline, so a connection is never handed to nobody.
pub fn lease<P: Protocol>(
    py: Python<'_>,
    h: &ServiceHandle<P>,
    timeout: Option<f64>,
) -> PyResult<Py<PyAny>> {
    let t = timeout.unwrap_or(h.config.connect_timeout.as_secs_f64());
    let slot = Slot::new();
    h.lease(Completion::slot(slot.clone()), deadline(Some(t))?)
        .map_err(|e| to_pyerr(py, e))?;
    let delivered = wait(py, &slot, Some(t))?;
    convert(py, delivered.outcome, Conv::Lease)
}

/// Asyncio form of `lease`.
pub fn submit_lease<'py, P: Protocol>(
    py: Python<'py>,
    h: &ServiceHandle<P>,
    completer: &Completer,
    fut: Bound<'py, PyAny>,
    timeout: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let dl = deadline(timeout)?;
    let token = completer.register(fut.clone().unbind(), None, Conv::Lease);
    if let Err(e) = h.lease(completer.completion(token), dl) {
        completer.unregister(token);
        return Err(to_pyerr(py, e));
    }
    Ok(fut)
}

/// Counters of a service (shared by every client with the same URL).
pub fn stats<'py, P: Protocol>(
    py: Python<'py>,
    h: &ServiceHandle<P>,
) -> PyResult<Bound<'py, PyDict>> {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &h.stats;
    let d = PyDict::new(py);
    d.set_item("outstanding", s.outstanding.load(Relaxed))?;
    d.set_item("requests", s.requests.load(Relaxed))?;
    d.set_item("connections", s.connections.load(Relaxed))?;
    d.set_item("dedicated_connections", s.dedicated.load(Relaxed))?;
    d.set_item("connects", s.connects.load(Relaxed))?;
    d.set_item("connect_failures", s.connect_failures.load(Relaxed))?;
    d.set_item("disconnects", s.disconnects.load(Relaxed))?;
    Ok(d)
}
