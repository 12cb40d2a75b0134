//! COPY FROM STDIN for `PgService`: a `CopyWriter` the caller feeds raw
//! data (`copy_to_table`) or records (`copy_records_to_table`), sent to the
//! kernel as the request's body while the server already reads it.
//!
//! Records are encoded as query parameters are (`encode`, for the column
//! types an INSERT into those columns would declare), so a value is stored
//! the same whether it goes through a parameter or COPY, and one that does
//! not fit its column raises `TypeError` naming the record and column (the
//! COPY is rolled back with CopyFail). The binary COPY format when every
//! column's type has a binary encoder (a binary COPY field is a Bind
//! parameter's length and bytes); else the text COPY format, escaped, with
//! the text form for the text-only types (money, macaddr, an extension's
//! types, text codecs of `set_type_codec`) and, for the other columns of
//! such a table, the text of what a parameter would send (`copy_text`).

#[path = "copy_text.rs"]
mod copy_text;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::encode::{self, Fail};
use super::types::Registry;
use crate::kernel::body::BodyTx;
use crate::kernel::KernelError;
use crate::kernel::Slot;
use crate::protocols::pg::copy::{self, BINARY_HEADER, BINARY_TRAILER, CHUNK};
use crate::python::core::errors::to_pyerr;
use crate::python::core::service::wait_reply;

/// Bytes of COPY data sent but not yet taken by the connection past which
/// the producer waits (for half of it to be taken).
const QUEUED_MAX: usize = 8 << 20;

use super::result::COMMAND_STATUS;

/// Whether records for columns of these types go in binary.
pub fn binary_ok(types: &[u32], reg: &Registry) -> bool {
    types.iter().all(|&t| encode::binary_param(t, reg))
}

/// One value in the text COPY format, escaped: a text-only type's text
/// form (`encode::text`), else the text of its binary form (`copy_text`).
fn put_text(
    v: &Bound<'_, PyAny>,
    t: u32,
    reg: &Registry,
    scratch: &mut BytesMut,
    out: &mut BytesMut,
) -> Result<(), Fail> {
    if v.is_none() {
        out.put_slice(b"\\N");
        return Ok(());
    }
    scratch.clear();
    if encode::binary_param(t, reg) {
        copy_text::text_of(v, t, reg, scratch)?;
    } else {
        encode::text(v, t, reg, scratch)?;
    }
    for &b in scratch.iter() {
        match b {
            b'\\' => out.put_slice(b"\\\\"),
            b'\t' => out.put_slice(b"\\t"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b => out.put_u8(b),
        }
    }
    Ok(())
}

/// `TypeError` for a value of record `n`, column `c` that does not fit.
fn misfit(
    py: Python<'_>,
    n: usize,
    c: usize,
    v: &Bound<'_, PyAny>,
    t: u32,
    reg: &Registry,
    f: Fail,
) -> PyErr {
    let why = match f {
        Fail::Misfit(w) => w,
        Fail::Py(e) => e
            .value(py)
            .str()
            .map_or_else(|_| e.to_string(), |s| s.to_string()),
    };
    let mut shown = v.repr().map_or_else(|_| "?".to_string(), |r| r.to_string());
    if shown.chars().count() > 40 {
        shown = shown.chars().take(40).collect::<String>() + "...";
    }
    PyTypeError::new_err(format!(
        "record {n} (counting from 0), column {c} ({}): {shown} ({why}); nothing was copied",
        reg.name(t)
    ))
}

/// The writing end of a COPY FROM STDIN request.
#[pyclass(frozen, module = "iokernel._native")]
pub struct CopyWriter {
    tx: Mutex<Option<BodyTx>>,
    /// A blocking caller's reply (None: an asyncio caller awaits its future).
    slot: Option<Arc<Slot>>,
    timeout: Option<f64>,
    /// The service's types, to encode records with.
    reg: Arc<Registry>,
}

impl CopyWriter {
    pub fn new(
        tx: BodyTx,
        slot: Option<Arc<Slot>>,
        timeout: Option<f64>,
        reg: Arc<Registry>,
    ) -> Self {
        CopyWriter {
            tx: Mutex::new(Some(tx)),
            slot,
            timeout,
            reg,
        }
    }

    /// Send a chunk; then, if the connection is more than `QUEUED_MAX`
    /// bytes behind, wait (GIL released) until it has caught up to half of
    /// that, so a fast source never fills memory (unless `wait` is false:
    /// an asyncio caller waits in its loop instead, see `backlog`). False
    /// when the request is gone; a `TimeoutError` if it stays behind past
    /// the timeout.
    fn send(&self, py: Python<'_>, chunk: bytes::Bytes, wait: bool) -> PyResult<bool> {
        let sent = {
            let g = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            g.as_ref().is_some_and(|tx| tx.send(chunk))
        };
        if !sent || !wait {
            return Ok(sent);
        }
        let until = self
            .timeout
            .and_then(|t| Duration::try_from_secs_f64(t).ok())
            .and_then(|d| Instant::now().checked_add(d));
        let mut limit = QUEUED_MAX;
        loop {
            let behind = {
                // Never held across the wait: another thread may need it.
                let g = self.tx.lock().unwrap_or_else(|e| e.into_inner());
                g.as_ref()
                    .is_some_and(|tx| !tx.is_closed() && tx.queued() > limit)
            };
            if !behind {
                return Ok(true);
            }
            limit = QUEUED_MAX / 2; // once behind, wait until well caught up
            if until.is_some_and(|u| Instant::now() >= u) {
                return Err(to_pyerr(
                    py,
                    KernelError::timeout(
                        "COPY: the server did not take the data within the timeout",
                    ),
                ));
            }
            py.detach(|| std::thread::sleep(Duration::from_millis(1)));
            py.check_signals()?;
        }
    }

    fn closed() -> PyErr {
        PyValueError::new_err("this COPY was already finished or aborted")
    }
}

#[pymethods]
impl CopyWriter {
    /// Bytes sent but not yet taken by the connection past which a writer
    /// should wait (`write(..., wait=False)` leaves that to the caller).
    #[classattr]
    const BACKLOG_MAX: usize = QUEUED_MAX;

    /// Bytes sent but not yet taken by the connection (0 once it is gone).
    fn backlog(&self) -> usize {
        let g = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref()
            .filter(|tx| !tx.is_closed())
            .map_or(0, |tx| tx.queued())
    }

    /// Send `data` (any bytes-like piece of COPY data). False when the
    /// request is gone (its connection closed): stop; `finish` says why.
    /// `wait`: as `send`.
    #[pyo3(signature = (data, wait = true))]
    fn write(&self, py: Python<'_>, data: &[u8], wait: bool) -> PyResult<bool> {
        if self.tx.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return Err(Self::closed());
        }
        if data.is_empty() {
            return Ok(true);
        }
        self.send(py, copy::frame(data), wait)
    }

    /// Encode `records` (an iterable of tuples, one value per column of
    /// type `types[i]`) and send them, binary format when `binary`
    /// (`binary_ok(types)`), else text; the binary format's header with
    /// the `first` call, its trailer with the `last`. Returns how many
    /// (fewer than given: the request is gone). `wait`: as `send`;
    /// `start`: the number of the first record, in error messages (records
    /// sent in batches).
    #[pyo3(signature = (records, types, binary, first = true, last = true, wait = true, start = 0))]
    #[allow(clippy::too_many_arguments)]
    fn write_records(
        &self,
        records: &Bound<'_, PyAny>,
        types: Vec<u32>,
        binary: bool,
        first: bool,
        last: bool,
        wait: bool,
        start: usize,
    ) -> PyResult<usize> {
        let reg = &*self.reg;
        let py = records.py();
        if binary && !binary_ok(&types, reg) {
            return Err(PyValueError::new_err(
                "binary COPY is not available for these column types",
            ));
        }
        let mut chunk = BytesMut::with_capacity(CHUNK + 1024);
        let mut at = copy::open_frame(&mut chunk);
        if binary && first {
            chunk.put_slice(BINARY_HEADER);
        }
        let mut scratch = BytesMut::new();
        let mut n = start;
        for rec in records.try_iter()? {
            let rec = rec?;
            let t = match rec.cast::<PyTuple>() {
                Ok(t) => t.clone(),
                Err(_) => PyTuple::new(rec.py(), rec.try_iter()?.collect::<PyResult<Vec<_>>>()?)?,
            };
            if t.len() != types.len() {
                return Err(PyValueError::new_err(format!(
                    "record {n} (counting from 0) has {} values for {} columns; nothing was copied",
                    t.len(),
                    types.len()
                )));
            }
            if binary {
                // A field is what a Bind parameter is: length, then bytes.
                chunk.put_i16(types.len() as i16);
                for (c, (v, &oid)) in t.iter().zip(&types).enumerate() {
                    encode::param(&v, oid, reg, &mut chunk)
                        .map_err(|f| misfit(py, n, c, &v, oid, reg, f))?;
                }
            } else {
                for (c, (v, &oid)) in t.iter().zip(&types).enumerate() {
                    if c > 0 {
                        chunk.put_u8(b'\t');
                    }
                    put_text(&v, oid, reg, &mut scratch, &mut chunk)
                        .map_err(|f| misfit(py, n, c, &v, oid, reg, f))?;
                }
                chunk.put_u8(b'\n');
            }
            n += 1;
            if chunk.len() >= CHUNK {
                copy::close_frame(&mut chunk, at);
                if !self.send(py, chunk.split().freeze(), wait)? {
                    return Ok(n - start);
                }
                chunk.reserve(CHUNK + 1024);
                at = copy::open_frame(&mut chunk);
            }
        }
        if binary && last {
            chunk.put_slice(BINARY_TRAILER);
        }
        copy::close_frame(&mut chunk, at);
        self.send(py, chunk.freeze(), wait)?;
        Ok(n - start)
    }

    /// The data is complete (CopyDone). Blocking: waits and returns the
    /// status ("COPY 5"); asyncio: returns None (await the call's future).
    fn finish(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(tx) = tx else {
            return Err(Self::closed());
        };
        tx.finish(copy::done_message());
        match &self.slot {
            Some(slot) => wait_reply(py, slot, self.timeout, COMMAND_STATUS),
            None => Ok(py.None()),
        }
    }

    /// Give up: the server gets CopyFail and rolls the COPY back; a blocking
    /// caller's reply (the server's error) is dropped.
    fn abort(&self) {
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}
