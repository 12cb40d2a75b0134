//! `RedisService`: the native half of `iokernel.redis.Client`/`AsyncClient`.
//!
//! Each call encodes its arguments into a Rust buffer with the GIL held,
//! reserves room under the service limits (one atomic add), and hands the
//! request to the kernel. Blocking calls then wait with the GIL released;
//! asyncio calls return a future that the loop's `Completer` resolves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::completer::{convert, Completer, Conv};
use super::convert::encode_command;
use super::errors::to_pyerr;
use crate::kernel::completion::Delivered;
use crate::kernel::service::{ServiceConfig, ServiceHandle};
use crate::kernel::{Completion, KernelError, Request, Route, Slot, Summary};
use crate::protocols::redis::{Pending, Redis};
use crate::protocols::redis_url;

#[pyclass(frozen, weakref, module = "iokernel._native")]
pub struct RedisService {
    h: Arc<ServiceHandle<Redis>>,
}

fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t > 0.0 => {
            Ok(Some(Instant::now() + Duration::from_secs_f64(t)))
        }
        Some(t) => Err(PyValueError::new_err(format!(
            "timeout must be a positive number of seconds or None, not {t}"
        ))),
    }
}

/// The command name of `args` for `/inflight` (never arguments).
fn summary_of(args: &Bound<'_, PyTuple>) -> Summary {
    match args.get_item(0) {
        Ok(a) => {
            if let Ok(b) = a.cast::<pyo3::types::PyBytes>() {
                Summary::new(b.as_bytes())
            } else if let Ok(s) = a.cast::<pyo3::types::PyString>() {
                Summary::new(s.to_str().unwrap_or("?").as_bytes())
            } else {
                Summary::new(b"?")
            }
        }
        Err(_) => Summary::new(b"?"),
    }
}

fn batch_summary(n: u32) -> Summary {
    Summary::new(format!("PIPELINE({n})").as_bytes())
}

fn route(conn: Option<u64>) -> Route {
    conn.map_or(Route::Shared, Route::Dedicated)
}

/// Wait for a blocking caller's reply with the GIL released, waking every
/// 100 ms to let Ctrl-C through. The kernel enforces the deadline; the extra
/// second here only guards against a kernel that stopped answering.
fn wait(py: Python<'_>, slot: &Arc<Slot>, timeout: Option<f64>) -> PyResult<Delivered> {
    let give_up =
        timeout.map(|t| Instant::now() + Duration::from_secs_f64(t) + Duration::from_secs(1));
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

impl RedisService {
    fn encode_many(cmds: &Bound<'_, PyList>) -> PyResult<(BytesMut, u32)> {
        let mut buf = BytesMut::with_capacity(64 * cmds.len());
        for c in cmds.iter() {
            encode_command(c.cast::<PyTuple>()?, &mut buf)?;
        }
        Ok((buf, cmds.len() as u32))
    }

    #[allow(clippy::too_many_arguments)]
    fn blocking(
        &self,
        py: Python<'_>,
        payload: BytesMut,
        pending: Pending,
        summary: Summary,
        timeout: Option<f64>,
        conn: Option<u64>,
        conv: Conv,
    ) -> PyResult<Py<PyAny>> {
        let guard = self.h.admit().map_err(|e| to_pyerr(py, e))?;
        let slot = Slot::new();
        let req = Request {
            payload: payload.freeze(),
            pending,
            completion: Completion::slot(slot.clone()).with_metrics(self.h.metrics.clone()),
            deadline: deadline(timeout)?,
            route: route(conn),
            submitted: Instant::now(),
            summary,
        };
        self.h.send(req, guard);
        let delivered = wait(py, &slot, timeout)?;
        delivered.picked_up();
        convert(py, delivered.outcome, conv)
    }

    #[allow(clippy::too_many_arguments)]
    fn submit_inner<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        payload: BytesMut,
        pending: Pending,
        summary: Summary,
        post: Option<Py<PyAny>>,
        timeout: Option<f64>,
        conn: Option<u64>,
        conv: Conv,
    ) -> PyResult<Bound<'py, PyAny>> {
        let deadline = deadline(timeout)?;
        let guard = match self.h.admit() {
            Ok(g) => g,
            Err(e) => {
                // Fail fast, but on the awaitable, as asyncio code expects.
                fut.call_method1(
                    pyo3::intern!(py, "set_exception"),
                    (to_pyerr(py, e).into_value(py),),
                )?;
                return Ok(fut);
            }
        };
        let token = completer.register(fut.clone().unbind(), post, conv);
        let req = Request {
            payload: payload.freeze(),
            pending,
            completion: completer
                .completion(token)
                .with_metrics(self.h.metrics.clone()),
            deadline,
            route: route(conn),
            submitted: Instant::now(),
            summary,
        };
        self.h.send(req, guard);
        Ok(fut)
    }
}

#[pymethods]
impl RedisService {
    #[new]
    #[pyo3(signature = (url, *, connect_timeout = 5.0, max_in_flight = 4096, max_queued = 16384, client_name = None, idle_ping = Some(5.0)))]
    fn new(
        url: &str,
        connect_timeout: f64,
        max_in_flight: usize,
        max_queued: usize,
        client_name: Option<String>,
        idle_ping: Option<f64>,
    ) -> PyResult<Self> {
        let u = redis_url::parse(url).map_err(PyValueError::new_err)?;
        if !(connect_timeout.is_finite() && connect_timeout > 0.0) {
            return Err(PyValueError::new_err(
                "connect_timeout must be a positive number of seconds",
            ));
        }
        if max_in_flight == 0 {
            return Err(PyValueError::new_err("max_in_flight must be at least 1"));
        }
        let mut opts = u.options();
        if client_name.is_some() {
            opts.client_name = client_name;
        }
        let cfg = ServiceConfig {
            name: u.display.clone(),
            addrs: vec![u.addr.clone()],
            connect_timeout: Duration::from_secs_f64(connect_timeout),
            max_in_flight,
            max_queued,
            idle_ping: idle_ping.filter(|p| *p > 0.0).map(Duration::from_secs_f64),
            conns_per_addr: 1,
        };
        let h = Python::attach(|py| py.detach(|| ServiceHandle::open(Redis::new(opts), cfg)))
            .map_err(|e| Python::attach(|py| to_pyerr(py, e)))?;
        Ok(RedisService { h })
    }

    /// The URL without secrets.
    #[getter]
    fn name(&self) -> String {
        self.h.config.name.clone()
    }

    /// Run one command and wait for its reply (GIL released while waiting).
    #[pyo3(signature = (args, decode = false, timeout = None, conn = None))]
    fn call(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        decode: bool,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<Py<PyAny>> {
        let mut buf = BytesMut::with_capacity(64);
        encode_command(args, &mut buf)?;
        self.blocking(
            py,
            buf,
            Pending::one(),
            summary_of(args),
            timeout,
            conn,
            Conv::One { decode },
        )
    }

    /// Run several commands in one write; a list of replies, server errors
    /// as `ResponseError` instances in place.
    #[pyo3(signature = (cmds, decode = false, timeout = None, conn = None))]
    fn call_many(
        &self,
        py: Python<'_>,
        cmds: &Bound<'_, PyList>,
        decode: bool,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<Py<PyAny>> {
        let (buf, n) = Self::encode_many(cmds)?;
        if n == 0 {
            return Ok(PyList::empty(py).into_any().unbind());
        }
        self.blocking(
            py,
            buf,
            Pending::many(n),
            batch_summary(n),
            timeout,
            conn,
            Conv::Many { decode },
        )
    }

    /// Asyncio form of `call`: `fut` (a future of the running loop) gets
    /// the reply; returns `fut`.
    #[pyo3(signature = (completer, fut, args, post = None, decode = false, timeout = None, conn = None))]
    #[allow(clippy::too_many_arguments)]
    fn submit<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        post: Option<Py<PyAny>>,
        decode: bool,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut buf = BytesMut::with_capacity(64);
        encode_command(args, &mut buf)?;
        self.submit_inner(
            py,
            completer,
            fut,
            buf,
            Pending::one(),
            summary_of(args),
            post,
            timeout,
            conn,
            Conv::One { decode },
        )
    }

    /// Asyncio form of `call_many`.
    #[pyo3(signature = (completer, fut, cmds, post = None, decode = false, timeout = None, conn = None))]
    #[allow(clippy::too_many_arguments)]
    fn submit_many<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        cmds: &Bound<'py, PyList>,
        post: Option<Py<PyAny>>,
        decode: bool,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (buf, n) = Self::encode_many(cmds)?;
        if n == 0 {
            return Err(PyValueError::new_err(
                "submit_many needs at least one command",
            ));
        }
        self.submit_inner(
            py,
            completer,
            fut,
            buf,
            Pending::many(n),
            batch_summary(n),
            post,
            timeout,
            conn,
            Conv::Many { decode },
        )
    }

    /// Open a dedicated connection (blocking); returns its id.
    #[pyo3(signature = (timeout = None))]
    fn lease(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let slot = Slot::new();
        self.h
            .lease(Completion::slot(slot.clone()))
            .map_err(|e| to_pyerr(py, e))?;
        let delivered = wait(
            py,
            &slot,
            timeout.or(Some(self.h.config.connect_timeout.as_secs_f64())),
        )?;
        convert(py, delivered.outcome, Conv::Lease)
    }

    /// Asyncio form of `lease`.
    fn submit_lease<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let token = completer.register(fut.clone().unbind(), None, Conv::Lease);
        if let Err(e) = self.h.lease(completer.completion(token)) {
            completer.unregister(token);
            return Err(to_pyerr(py, e));
        }
        Ok(fut)
    }

    /// Close a dedicated connection.
    fn release(&self, conn: u64) {
        self.h.release(conn);
    }

    /// Counters of this service (shared by every client with the same URL).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.h.stats;
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
}
