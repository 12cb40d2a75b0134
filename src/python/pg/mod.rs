//! `PgService`: the native half of `iokernel.pg.Client`/`AsyncClient`.
//!
//! The calling thread encodes the parameters for the statement's declared
//! types (`encode`; the types are learned once per service: `types`) with
//! the GIL held and hands SQL + parameters to the kernel, which prepares the
//! statement on whichever connection takes the request. A statement the
//! service has not described yet is answered with `UNKNOWN_STATEMENT`: the
//! Python side describes it (`describe_statement`, `remember`), introspects
//! the database types it uses (`learn_types`) and calls again. Results come back as raw rows and
//! are turned into `Record`s (or a single row, value or status) on the Python
//! side, by the consumer, through the conversion the request carries
//! (`result`). Requests go through the protocol-neutral `Service`
//! (`python::core`).
//!
//! Here: `types` (type tables, the statement cache), `encode` (parameters),
//! `decode` (binary and text results), `values` (PostgreSQL text → Python),
//! `binary` (executemany's parameters), `many` (executemany, streamed), `record`
//! (`Record`), `result` (results → Python), `errors` (`PostgresError`), `sql` (checks and
//! the summary of a statement's text), `open` (the DSN and options → the service).

mod binary;
mod copy;
mod decode;
mod encode;
mod errors;
pub mod heap_trim;
pub mod json;
mod many;
mod open;
pub mod record;
mod record_methods;
mod result;
mod slot;
mod sql;
pub mod types;
pub mod uuid_obj;
pub mod values;

use std::sync::Arc;

use bytes::Bytes;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::kernel::body;
use crate::kernel::Summary;
use crate::protocols::pg::copy as pg_copy;
use crate::protocols::pg::{Pending, Postgres, Query};
use crate::python::core::completer::Completer;
use crate::python::core::service::{wait_reply, Service};
use crate::python::core::stream::ItemStream;
pub use copy::CopyWriter;
use result::{COMMAND_STATUS, STMT_INFO};
use sql::{check_sql, summary};
use types::{TypeCache, TypeRow};

/// Rows of an asyncio `fetch` per batch handed to the loop as they arrive
/// (a smaller result comes whole, as one reply).
const FETCH_BATCH: usize = heap_trim::BIG;

#[pyclass(frozen, weakref, module = "iokernel._native")]
pub struct PgService {
    s: Service<Postgres>,
    types: Arc<TypeCache>,
    /// Returned by `query`/`submit` for a statement not described yet.
    unknown: Py<PyAny>,
}

impl PgService {
    /// The request for `sql`, or None when the statement's types are not
    /// known yet.
    fn query_of(
        &self,
        sql: &str,
        args: &Bound<'_, PyTuple>,
        simple: bool,
    ) -> PyResult<Option<(Pending, Summary)>> {
        check_sql(args.py(), sql)?;
        if simple {
            return Ok(Some((
                Pending::new(Query::Simple(sql.to_string())),
                summary(sql),
            )));
        }
        if args.len() > u16::MAX as usize {
            return Err(PyValueError::new_err(
                "PostgreSQL accepts at most 65535 parameters",
            ));
        }
        let Some(info) = self.types.get(sql) else {
            return Ok(None);
        };
        let params = encode::bind_section(args, &info.params, &info.ctx.reg)?.freeze();
        let q = Query::Extended {
            sql: info.ctx.sql.clone(),
            params,
            types: info.params.clone(),
            formats: info.formats.clone(),
        };
        let ctx: Arc<dyn std::any::Any + Send + Sync> = info.ctx.clone();
        Ok(Some((Pending::with_ctx(q, ctx), summary(sql))))
    }
}

#[pymethods]
impl PgService {
    #[new]
    #[pyo3(signature = (dsn, *, connections = 2, max_in_flight = 1024, max_queued = 16384, statement_cache_size = 256, connect_timeout = None, idle_ping = Some(5.0), max_dedicated = 16, max_message_size = 64 << 20, listen = Vec::new(), ssl = Vec::new(), idempotent = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        dsn: &str,
        connections: usize,
        max_in_flight: usize,
        max_queued: usize,
        statement_cache_size: usize,
        connect_timeout: Option<f64>,
        idle_ping: Option<f64>,
        max_dedicated: usize,
        max_message_size: usize,
        listen: Vec<String>,
        ssl: Vec<(String, String)>,
        idempotent: bool,
    ) -> PyResult<Self> {
        let statement_cache = statement_cache_size;
        let (postgres, cfg) = open::configure(
            dsn,
            open::Knobs {
                connections,
                max_in_flight,
                max_queued,
                statement_cache_size,
                connect_timeout,
                idle_ping,
                max_dedicated,
                max_message_size,
                listen,
                ssl,
                idempotent,
            },
        )?;
        Ok(PgService {
            s: Service::open(py, postgres, cfg)?,
            types: Arc::new(TypeCache::new(statement_cache.max(1) * 4)),
            unknown: py
                .import("iokernel._native")?
                .getattr("UNKNOWN_STATEMENT")?
                .unbind(),
        })
    }

    #[getter]
    fn name(&self) -> String {
        self.s.name()
    }

    /// Run one statement and wait. `shape`: 0 rows, 1 first row, 2 value of
    /// `column` in the first row, 3 command status. `simple` uses the simple
    /// query protocol (several statements, no parameters).
    #[pyo3(signature = (shape, sql, args, column = 0, timeout = None, conn = None, simple = false, idempotent = false))]
    #[allow(clippy::too_many_arguments)]
    fn query(
        &self,
        py: Python<'_>,
        shape: u8,
        sql: &str,
        args: &Bound<'_, PyTuple>,
        column: usize,
        timeout: Option<f64>,
        conn: Option<u64>,
        simple: bool,
        idempotent: bool,
    ) -> PyResult<Py<PyAny>> {
        let conv = result::conv(shape, column)?;
        let Some((mut p, s)) = self.query_of(sql, args, simple)? else {
            return Ok(self.unknown.clone_ref(py));
        };
        p.idempotent = idempotent;
        if shape != result::ROWS {
            return self.s.blocking(py, Bytes::new(), p, s, timeout, conn, conv);
        }
        // All rows, converted batch by batch as they arrive (never all held
        // raw); the stream is unbounded, so a shared connection never waits.
        p.batch = FETCH_BATCH;
        let (items, stream) = ItemStream::new(py, usize::MAX >> 1, conv, None);
        self.s.send_stream(py, p, s, conn, items, timeout)?;
        stream.collect(py, timeout)
    }

    /// Asyncio form of `query`; `fut` gets the result.
    #[pyo3(signature = (completer, fut, shape, sql, args, column = 0, timeout = None, conn = None, simple = false, idempotent = false))]
    #[allow(clippy::too_many_arguments)]
    fn submit<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        shape: u8,
        sql: &str,
        args: &Bound<'py, PyTuple>,
        column: usize,
        timeout: Option<f64>,
        conn: Option<u64>,
        simple: bool,
        idempotent: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let conv = result::conv(shape, column)?;
        let Some((mut p, s)) = self.query_of(sql, args, simple)? else {
            return Ok(self.unknown.bind(py).clone());
        };
        p.idempotent = idempotent;
        if shape == result::ROWS {
            // A big result comes in batches, each made into Records by the
            // loop as it arrives, so its raw rows are never all held.
            p.batch = FETCH_BATCH;
        }
        self.s.submit(
            py,
            completer,
            fut,
            Bytes::new(),
            p,
            s,
            None,
            timeout,
            conn,
            conv,
            None,
        )
    }

    /// Run `sql` once per parameter set, pipelined, ended by one Sync
    /// (`many`: the rows stream to the server while they are encoded).
    /// `types`: the statement's parameter types (`describe`), for binary
    /// parameters; None sends text and lets the server infer them.
    #[pyo3(signature = (sql, rows, timeout = None, conn = None, types = None))]
    fn query_many(
        &self,
        py: Python<'_>,
        sql: &str,
        rows: &Bound<'_, PyAny>,
        timeout: Option<f64>,
        conn: Option<u64>,
        types: Option<Vec<u32>>,
    ) -> PyResult<Py<PyAny>> {
        check_sql(py, sql)?;
        let reg = types.is_some().then(|| self.types.registry());
        let b = many::start(sql, rows, types, reg)?;
        let pending = Pending::new(Query::Prebuilt(b.head));
        let s = summary(sql);
        let slot = self
            .s
            .send_blocking(py, Bytes::new(), pending, s, timeout, conn, b.body)?;
        if let Some((rest, tx)) = b.rest {
            rest.produce(tx)?;
        }
        wait_reply(py, &slot, timeout, COMMAND_STATUS)
    }

    /// Asyncio form of `query_many`.
    #[pyo3(signature = (completer, fut, sql, rows, timeout = None, conn = None, types = None))]
    #[allow(clippy::too_many_arguments)]
    fn submit_many<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        sql: &str,
        rows: &Bound<'py, PyAny>,
        timeout: Option<f64>,
        conn: Option<u64>,
        types: Option<Vec<u32>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_sql(py, sql)?;
        let reg = types.is_some().then(|| self.types.registry());
        let b = many::start(sql, rows, types, reg)?;
        let call = self.s.submit(
            py,
            completer,
            fut.clone(),
            Bytes::new(),
            Pending::new(Query::Prebuilt(b.head)),
            summary(sql),
            None,
            timeout,
            conn,
            COMMAND_STATUS,
            b.body,
        )?;
        if let Some((rest, tx)) = b.rest {
            if let Err(e) = rest.produce(tx) {
                // Nobody will await the future: its (error) reply is dropped.
                fut.call_method0(pyo3::intern!(py, "cancel"))?;
                return Err(e);
            }
        }
        Ok(call)
    }

    /// Run one statement with its rows delivered in batches of `batch` as
    /// they arrive (each a list of `Record`s; the last batch ends the
    /// stream, a server error raises from it). At most `capacity` batches
    /// wait: then the connection stops reading, so use a dedicated one
    /// (`conn`). `completer`: the asyncio consumer's, else blocking.
    #[pyo3(signature = (sql, args, batch, capacity = 2, conn = None, completer = None))]
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        py: Python<'_>,
        sql: &str,
        args: &Bound<'_, PyTuple>,
        batch: usize,
        capacity: usize,
        conn: Option<u64>,
        completer: Option<&Bound<'_, Completer>>,
    ) -> PyResult<Option<ItemStream>> {
        // None: not described yet (the caller learns it and calls again).
        let Some((mut p, s)) = self.query_of(sql, args, false)? else {
            return Ok(None);
        };
        p.batch = batch.max(1);
        let (items, stream) = ItemStream::new(py, capacity, result::ROW_BATCH, completer);
        self.s.send_stream(py, p, s, conn, items, None)?;
        Ok(Some(stream))
    }

    /// The notifications of this service's connections (a listener: made
    /// with `listen=`), as `(pid, channel, payload)`; a lost connection
    /// raises `ConnectionError` from the stream once (notifications may
    /// have been missed), then delivery goes on after the reconnect.
    #[pyo3(signature = (capacity = 65536, completer = None))]
    fn subscribe(
        &self,
        py: Python<'_>,
        capacity: usize,
        completer: Option<&Bound<'_, Completer>>,
    ) -> PyResult<ItemStream> {
        let (items, stream) = ItemStream::new(py, capacity, result::NOTIFICATION, completer);
        self.s.subscribe(py, items)?;
        Ok(stream)
    }

    /// Start `COPY ... FROM STDIN` (`sql`), blocking: feed the returned
    /// writer, then `finish()` waits for the status.
    #[pyo3(signature = (sql, timeout = None, conn = None))]
    fn copy_in(
        &self,
        py: Python<'_>,
        sql: &str,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<copy::CopyWriter> {
        let (tx, body) = body::channel(Some(pg_copy::abandon()));
        let p = Pending::new(Query::CopyIn(sql.to_string()));
        let slot = self.s.send_blocking(
            py,
            Bytes::new(),
            p,
            Summary::new(b"COPY"),
            timeout,
            conn,
            Some(body),
        )?;
        Ok(copy::CopyWriter::new(
            tx,
            Some(slot),
            timeout,
            self.types.registry(),
        ))
    }

    /// Asyncio form of `copy_in`: returns the writer and the awaitable
    /// status (await it after `finish()`).
    #[pyo3(signature = (completer, fut, sql, timeout = None, conn = None))]
    fn submit_copy_in<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        sql: &str,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<(copy::CopyWriter, Bound<'py, PyAny>)> {
        let (tx, body) = body::channel(Some(pg_copy::abandon()));
        let p = Pending::new(Query::CopyIn(sql.to_string()));
        let call = self.s.submit(
            py,
            completer,
            fut,
            Bytes::new(),
            p,
            Summary::new(b"COPY"),
            None,
            timeout,
            conn,
            COMMAND_STATUS,
            Some(body),
        )?;
        Ok((
            copy::CopyWriter::new(tx, None, timeout, self.types.registry()),
            call,
        ))
    }

    /// Run `COPY ... TO STDOUT` (`sql`): its data as a stream of `bytes`
    /// chunks as they arrive, then the status (a `str`) as the last item.
    #[pyo3(signature = (sql, conn = None, completer = None))]
    fn copy_out(
        &self,
        py: Python<'_>,
        sql: &str,
        conn: Option<u64>,
        completer: Option<&Bound<'_, Completer>>,
    ) -> PyResult<ItemStream> {
        let (items, stream) = ItemStream::new(py, 4, result::COPY_CHUNK, completer);
        let p = Pending::new(Query::CopyOut(sql.to_string()));
        self.s
            .send_stream(py, p, Summary::new(b"COPY"), conn, items, None)?;
        Ok(stream)
    }

    /// Whether records for columns of these types go in binary COPY format.
    fn copy_binary_ok(&self, types: Vec<u32>) -> bool {
        copy::binary_ok(&types, &self.types.registry())
    }

    /// Describe `sql` (blocking): `(parameter types, column types)`.
    #[pyo3(signature = (sql, timeout = None, conn = None))]
    fn describe_statement(
        &self,
        py: Python<'_>,
        sql: &str,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<Py<PyAny>> {
        check_sql(py, sql)?;
        let p = Pending::new(Query::Describe(Arc::from(sql)));
        self.s
            .blocking(py, Bytes::new(), p, summary(sql), timeout, conn, STMT_INFO)
    }

    /// Asyncio form of `describe_statement`.
    #[pyo3(signature = (completer, fut, sql, timeout = None, conn = None))]
    fn submit_describe_statement<'py>(
        &self,
        py: Python<'py>,
        completer: &Completer,
        fut: Bound<'py, PyAny>,
        sql: &str,
        timeout: Option<f64>,
        conn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_sql(py, sql)?;
        let p = Pending::new(Query::Describe(Arc::from(sql)));
        self.s.submit(
            py,
            completer,
            fut,
            Bytes::new(),
            p,
            summary(sql),
            None,
            timeout,
            conn,
            STMT_INFO,
            None,
        )
    }

    /// Cache a described statement's types; returns the OIDs of database
    /// types it uses that are not known yet (to `learn_types` first).
    fn remember(&self, sql: &str, params: Vec<u32>, columns: Vec<u32>) -> PyResult<Vec<u32>> {
        if params.len() > u16::MAX as usize {
            return Err(PyValueError::new_err(
                "PostgreSQL accepts at most 65535 parameters",
            ));
        }
        Ok(self
            .types
            .remember(Arc::downgrade(&self.types), sql, params, &columns))
    }

    /// The parameter types of a described statement (None: not described).
    fn statement_params(&self, sql: &str) -> Option<Vec<u32>> {
        self.types.get(sql).map(|i| i.params.to_vec())
    }

    /// Types learned by introspection (`TypeCache::learn`).
    fn learn_types(&self, rows: Vec<TypeRow>) {
        self.types.learn(rows);
    }

    /// `set_type_codec` for the type `oid`; forgets described statements
    /// (their result formats may change).
    fn set_codec(
        &self,
        py: Python<'_>,
        oid: u32,
        encoder: Py<PyAny>,
        decoder: Py<PyAny>,
        binary: bool,
    ) -> PyResult<()> {
        let loads = json::json_loads(py)?;
        let native = decoder.bind(py).is(loads);
        self.types.set_codec(oid, encoder, decoder, binary, native);
        Ok(())
    }

    /// Forget the types of every statement (e.g. after `ALTER TYPE`).
    fn forget_statements(&self) {
        self.types.clear();
    }

    /// Forget one statement's types (described again on its next use).
    fn forget_statement(&self, sql: &str) {
        self.types.forget(sql);
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

    fn release(&self, conn: u64) {
        self.s.release(conn);
    }

    /// Why discovery gave no endpoints yet; "" if it did.
    fn discovery_problem(&self) -> String {
        self.s.discovery_problem()
    }

    /// When TLS failures are why discovery gave no endpoints: the reason,
    /// as `TLSError.tls_reason`; else None.
    fn discovery_tls_reason(&self) -> Option<&'static str> {
        self.s.discovery_tls_reason()
    }

    /// Discovery's watches not in place yet ("" when none): `ready()`
    /// waits for them.
    fn discovery_pending(&self) -> String {
        self.s.discovery_pending()
    }

    /// Every current endpoint, one dict each.
    fn endpoints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        self.s.endpoints(py)
    }

    /// Replace the endpoint set by these addresses (tests and tools).
    fn _set_addresses(&self, py: Python<'_>, addrs: Vec<String>) -> PyResult<()> {
        self.s.set_addresses(py, addrs)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.s.stats(py)
    }
}
