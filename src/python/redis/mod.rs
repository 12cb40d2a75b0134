//! `RedisService`: the native half of `iokernel.redis.Client`/`AsyncClient`.
//!
//! Each call encodes its arguments into a Rust buffer with the GIL held
//! (`convert`) and hands the request, with the conversion its reply needs,
//! to the protocol-neutral `Service` (`python::core`): blocking calls wait
//! with the GIL released; asyncio calls return a `Call` that the loop's
//! `Completer` resolves. Server error replies become `ResponseError`
//! (`errors`).

mod convert;
mod errors;
mod fast;
mod fast_methods;
mod sentinel;

pub use convert::ENCODING_ERRORS;
pub use fast::ClientCore;

use bytes::BytesMut;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::kernel::service::ServiceConfig;
use crate::kernel::tls::{Tls, TlsConnector};
use crate::kernel::transport::Connector;
use crate::kernel::Summary;
use crate::protocols::redis::{Pending, Redis};
use crate::protocols::{redis_tls, redis_url};
use crate::python::core::completer::Completer;
use crate::python::core::service::Service;
use crate::python::core::wait::seconds;
use convert::encode_command;

#[pyclass(frozen, weakref, module = "iokernel._native")]
pub struct RedisService {
    pub(super) s: Service<Redis>,
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

impl RedisService {
    fn encode_many(cmds: &Bound<'_, PyList>, mode: u8) -> PyResult<(BytesMut, u32)> {
        let mut buf = BytesMut::with_capacity(64 * cmds.len());
        for c in cmds.iter() {
            encode_command(c.cast::<PyTuple>()?, &mut buf, mode)?;
        }
        Ok((buf, cmds.len() as u32))
    }
}

#[pymethods]
impl RedisService {
    #[new]
    #[pyo3(signature = (url, *, connect_timeout = 5.0, max_in_flight = 4096, max_queued = 16384, client_name = None, idle_ping = Some(5.0), ssl = Vec::new(), idempotent = false, read_from = None, sentinel_username = None, sentinel_password = None, sentinel_ssl = Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: &str,
        connect_timeout: f64,
        max_in_flight: usize,
        max_queued: usize,
        client_name: Option<String>,
        idle_ping: Option<f64>,
        ssl: Vec<(String, String)>,
        idempotent: bool,
        read_from: Option<String>,
        sentinel_username: Option<String>,
        sentinel_password: Option<String>,
        sentinel_ssl: Vec<(String, String)>,
    ) -> PyResult<Self> {
        let u = redis_url::parse(url).map_err(PyValueError::new_err)?;
        // TLS options: the URL's, then the keyword arguments' (which win).
        let params: Vec<_> = u.ssl.iter().cloned().chain(ssl).collect();
        let connector: std::sync::Arc<dyn Connector> =
            match redis_tls::options(u.tls, &params).map_err(PyValueError::new_err)? {
                None => crate::kernel::transport::plain(),
                Some(o) => std::sync::Arc::new(TlsConnector {
                    tls: Tls::new(o).map_err(PyValueError::new_err)?,
                    names: Default::default(),
                }),
            };
        let via = sentinel::sentinel_via(&u, &connector, &params, sentinel_ssl)
            .map_err(PyValueError::new_err)?;
        let (sources, attrs) =
            sentinel::sources_and_attrs(&u, via, read_from, sentinel_username, sentinel_password)
                .map_err(PyValueError::new_err)?;
        let connect_timeout = seconds("connect_timeout", connect_timeout)?;
        let idle_ping = idle_ping.map(|p| seconds("idle_ping", p)).transpose()?;
        if max_in_flight == 0 {
            return Err(PyValueError::new_err("max_in_flight must be at least 1"));
        }
        let mut opts = u.options();
        if client_name.is_some() {
            opts.client_name = client_name;
        }
        let cfg = ServiceConfig {
            name: u.display.clone(),
            names: u.addrs.clone(),
            sources,
            connect_timeout,
            max_in_flight,
            max_queued,
            idle_ping,
            conns_per_addr: 1,
            max_dedicated: 64,
            connector,
            balancer: crate::kernel::balance::peak_ewma_p2c(),
            idempotent,
            attrs,
        };
        Ok(RedisService {
            s: Service::open(py, Redis::new(opts), cfg)?,
        })
    }

    /// The URL without secrets.
    #[getter]
    fn name(&self) -> String {
        self.s.name()
    }

    /// Why discovery (the sentinels) gave no endpoints yet; "" if it did.
    fn discovery_problem(&self) -> String {
        self.s.discovery_problem()
    }

    /// When TLS failures (every sentinel's handshake) are why: the
    /// reason, as `TLSError.tls_reason`; else None.
    fn discovery_tls_reason(&self) -> Option<&'static str> {
        self.s.discovery_tls_reason()
    }

    /// The sentinel watch until it is subscribed on every sentinel it
    /// can reach ("" then): `ready()` waits for it.
    fn discovery_pending(&self) -> String {
        self.s.discovery_pending()
    }

    /// Run one command and wait for its reply (GIL released while waiting).
    /// `decode`: the client's text mode, bit 0 `decode_responses`, above it
    /// the `encoding_errors` handler's index (see convert.rs).
    #[pyo3(signature = (args, decode = 0, timeout = None, conn = None, idempotent = false))]
    fn call(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        decode: u8,
        timeout: Option<f64>,
        conn: Option<u64>,
        idempotent: bool,
    ) -> PyResult<Py<PyAny>> {
        let mut buf = BytesMut::with_capacity(64);
        encode_command(args, &mut buf, decode)?;
        self.s.blocking(
            py,
            buf.freeze(),
            Pending::one().idempotent(idempotent),
            summary_of(args),
            timeout,
            conn,
            convert::one(decode),
        )
    }

    /// Run several commands in one write; a list of replies, server errors
    /// as `ResponseError` instances in place.
    #[pyo3(signature = (cmds, decode = 0, timeout = None, conn = None))]
    fn call_many(
        &self,
        py: Python<'_>,
        cmds: &Bound<'_, PyList>,
        decode: u8,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<Py<PyAny>> {
        let (buf, n) = Self::encode_many(cmds, decode)?;
        if n == 0 {
            return Ok(PyList::empty(py).into_any().unbind());
        }
        self.s.blocking(
            py,
            buf.freeze(),
            Pending::many(n),
            batch_summary(n),
            timeout,
            conn,
            convert::many(decode),
        )
    }

    /// Asyncio form of `call`: `fut` (a future of the running loop) gets
    /// the reply; returns `fut`.
    #[pyo3(signature = (completer, fut, args, post = None, decode = 0, timeout = None, conn = None, idempotent = false))]
    #[allow(clippy::too_many_arguments)]
    fn submit<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        post: Option<Py<PyAny>>,
        decode: u8,
        timeout: Option<f64>,
        conn: Option<u64>,
        idempotent: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut buf = BytesMut::with_capacity(64);
        encode_command(args, &mut buf, decode)?;
        let summary = summary_of(args);
        self.s.submit(
            py,
            completer,
            fut,
            buf.freeze(),
            Pending::one().idempotent(idempotent),
            summary,
            post,
            timeout,
            conn,
            convert::one(decode),
            None,
        )
    }

    /// `AsyncClient._call` in one native call: find the running loop and
    /// its completer (the one cached in `iokernel._aio._last`, else made by
    /// `_aio.completer`), make the future, submit. Returns a `Call`.
    #[pyo3(signature = (args, post = None, decode = 0, timeout = None, conn = None))]
    fn acall<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        post: Option<Py<PyAny>>,
        decode: u8,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (comp, fut) = Completer::running(py)?;
        self.submit(
            py,
            comp.get(),
            fut,
            args,
            post,
            decode,
            timeout,
            conn,
            false,
        )
    }

    /// Asyncio form of `call_many`.
    #[pyo3(signature = (completer, fut, cmds, post = None, decode = 0, timeout = None, conn = None))]
    #[allow(clippy::too_many_arguments)]
    fn submit_many<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        cmds: &Bound<'py, PyList>,
        post: Option<Py<PyAny>>,
        decode: u8,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (buf, n) = Self::encode_many(cmds, decode)?;
        if n == 0 {
            return Err(PyValueError::new_err(
                "submit_many needs at least one command",
            ));
        }
        self.s.submit(
            py,
            completer,
            fut,
            buf.freeze(),
            Pending::many(n),
            batch_summary(n),
            post,
            timeout,
            conn,
            convert::many(decode),
            None,
        )
    }

    /// Open a dedicated connection (blocking); returns its id.
    #[pyo3(signature = (timeout = None))]
    fn lease(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        self.s.lease(py, timeout)
    }

    /// Asyncio form of `lease`.
    fn submit_lease<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.s.submit_lease(py, completer, fut, timeout)
    }

    /// Close a dedicated connection.
    fn release(&self, conn: u64) {
        self.s.release(conn);
    }

    /// Every current endpoint, one dict each.
    fn endpoints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        self.s.endpoints(py)
    }

    /// Replace the endpoint set by these addresses (tests and tools).
    fn _set_addresses(&self, py: Python<'_>, addrs: Vec<String>) -> PyResult<()> {
        self.s.set_addresses(py, addrs)
    }

    /// Counters of this service (shared by every client with the same URL).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.s.stats(py)
    }
}
