//! COPY FROM STDIN for `PgService`: a `CopyWriter` the caller feeds raw
//! data (`copy_to_table`) or records (`copy_records_to_table`), sent to the
//! kernel as the request's body while the server already reads it.
//!
//! Records go in the binary COPY format when every column's type has a
//! binary encoder here (ints, floats, bool, bytea, text types, json, jsonb,
//! uuid, date, timestamp, timestamptz), each value checked against its
//! column's type (a mismatch raises `TypeError` naming the row and column,
//! and the COPY is rolled back with CopyFail); otherwise in the text COPY
//! format, each value written as a query parameter would be, escaped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{
    PyDate, PyDateAccess, PyDateTime, PyFloat, PyInt, PyString, PyTimeAccess, PyTuple,
};

use super::binary::put_binary;
use super::values::encode_param;
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

const NAME: u32 = 19;
const TEXT: u32 = 25;
const JSON: u32 = 114;
const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const BPCHAR: u32 = 1042;
const VARCHAR: u32 = 1043;
const DATE: u32 = 1082;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;
const JSONB: u32 = 3802;
/// Types `put_binary` (executemany's) encodes.
const SHARED: &[u32] = &[16, 17, 20, 21, 23, 2950];

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(if m <= 2 { y - 1 } else { y });
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i64 = 10_957;

/// Whether records for columns of these types go in binary.
pub fn binary_ok(types: &[u32]) -> bool {
    types.iter().all(|t| {
        SHARED.contains(t)
            || matches!(
                *t,
                NAME | TEXT
                    | JSON
                    | FLOAT4
                    | FLOAT8
                    | BPCHAR
                    | VARCHAR
                    | DATE
                    | TIMESTAMP
                    | TIMESTAMPTZ
                    | JSONB
            )
    })
}

fn put(out: &mut BytesMut, v: &[u8]) {
    out.put_i32(v.len() as i32);
    out.put_slice(v);
}

fn micros(dt: &Bound<'_, PyDateTime>) -> i64 {
    let days = days_from_civil(dt.get_year(), dt.get_month().into(), dt.get_day().into());
    let secs = (days - PG_EPOCH_DAYS) * 86_400
        + i64::from(dt.get_hour()) * 3600
        + i64::from(dt.get_minute()) * 60
        + i64::from(dt.get_second());
    secs * 1_000_000 + i64::from(dt.get_microsecond())
}

/// One value in binary for a column of type `oid`; false if it does not fit.
fn put_value(v: &Bound<'_, PyAny>, oid: u32, out: &mut BytesMut) -> PyResult<bool> {
    let py = v.py();
    match oid {
        TEXT | VARCHAR | BPCHAR | NAME | JSON | JSONB => {
            let Ok(s) = v.cast::<PyString>() else {
                return Ok(false);
            };
            let s = s.to_str()?;
            if oid == JSONB {
                out.put_i32(s.len() as i32 + 1);
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            } else {
                put(out, s.as_bytes());
            }
        }
        FLOAT8 | FLOAT4 => {
            let x = if let Ok(f) = v.cast_exact::<PyFloat>() {
                f.value()
            } else if let Ok(i) = v.cast_exact::<PyInt>() {
                i.extract::<f64>()?
            } else {
                return Ok(false);
            };
            if oid == FLOAT4 {
                put(out, &(x as f32).to_be_bytes());
            } else {
                put(out, &x.to_be_bytes());
            }
        }
        TIMESTAMP | TIMESTAMPTZ => {
            let Ok(dt) = v.cast::<PyDateTime>() else {
                return Ok(false);
            };
            let naive = dt.getattr(intern!(py, "tzinfo"))?.is_none();
            let us = if oid == TIMESTAMP {
                if !naive {
                    return Ok(false); // as asyncpg: timestamp takes naive ones
                }
                micros(dt)
            } else {
                // As asyncpg: an aware one in UTC; a naive one is local time.
                let utc = py
                    .import(intern!(py, "datetime"))?
                    .getattr(intern!(py, "timezone"))?
                    .getattr(intern!(py, "utc"))?;
                let u = dt.call_method1(intern!(py, "astimezone"), (utc,))?;
                micros(u.cast::<PyDateTime>()?)
            };
            put(out, &us.to_be_bytes());
        }
        DATE => {
            if v.cast::<PyDateTime>().is_ok() {
                return Ok(false);
            }
            let Ok(d) = v.cast::<PyDate>() else {
                return Ok(false);
            };
            let days = days_from_civil(d.get_year(), d.get_month().into(), d.get_day().into())
                - PG_EPOCH_DAYS;
            put(out, &(days as i32).to_be_bytes());
        }
        _ => return put_binary(v, oid, out),
    }
    Ok(true)
}

/// One value in the text COPY format: as a parameter's text, escaped.
fn put_text(v: &Bound<'_, PyAny>, scratch: &mut BytesMut, out: &mut BytesMut) -> PyResult<()> {
    if v.is_none() {
        out.put_slice(b"\\N");
        return Ok(());
    }
    scratch.clear();
    encode_param(v, scratch)?;
    for &b in &scratch[4..] {
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

/// The writing end of a COPY FROM STDIN request.
#[pyclass(frozen, module = "iokernel._native")]
pub struct CopyWriter {
    tx: Mutex<Option<BodyTx>>,
    /// A blocking caller's reply (None: an asyncio caller awaits its future).
    slot: Option<Arc<Slot>>,
    timeout: Option<f64>,
}

impl CopyWriter {
    pub fn new(tx: BodyTx, slot: Option<Arc<Slot>>, timeout: Option<f64>) -> Self {
        CopyWriter {
            tx: Mutex::new(Some(tx)),
            slot,
            timeout,
        }
    }

    /// Send a chunk; then, if the connection is more than `QUEUED_MAX`
    /// bytes behind, wait (GIL released) until it has caught up to half of
    /// that, so a fast source never fills memory. False when the request
    /// is gone; a `TimeoutError` if it stays behind past the timeout.
    fn send(&self, py: Python<'_>, chunk: bytes::Bytes) -> PyResult<bool> {
        let sent = {
            let g = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            g.as_ref().is_some_and(|tx| tx.send(chunk))
        };
        if !sent {
            return Ok(false);
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
    /// Send `data` (any bytes-like piece of COPY data). False when the
    /// request is gone (its connection closed): stop; `finish` says why.
    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<bool> {
        if self.tx.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return Err(Self::closed());
        }
        if data.is_empty() {
            return Ok(true);
        }
        self.send(py, copy::frame(data))
    }

    /// Encode `records` (an iterable of tuples, one value per column of
    /// type `types[i]`) and send them, binary format when `binary`
    /// (`binary_ok(types)`), else text; the binary format's header with
    /// the `first` call, its trailer with the `last`. Returns how many.
    #[pyo3(signature = (records, types, binary, first = true, last = true))]
    fn write_records(
        &self,
        records: &Bound<'_, PyAny>,
        types: Vec<u32>,
        binary: bool,
        first: bool,
        last: bool,
    ) -> PyResult<usize> {
        if binary && !binary_ok(&types) {
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
        let mut n = 0;
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
                chunk.put_i16(types.len() as i16);
                for (c, (v, &oid)) in t.iter().zip(&types).enumerate() {
                    if v.is_none() {
                        chunk.put_i32(-1);
                    } else if !put_value(&v, oid, &mut chunk)? {
                        return Err(PyTypeError::new_err(format!(
                            "record {n} (counting from 0), column {c}: a {} does not fit a column \
                             of type OID {oid}; nothing was copied",
                            v.get_type().name()?
                        )));
                    }
                }
            } else {
                for (c, v) in t.iter().enumerate() {
                    if c > 0 {
                        chunk.put_u8(b'\t');
                    }
                    put_text(&v, &mut scratch, &mut chunk).map_err(|e| {
                        PyTypeError::new_err(format!(
                            "record {n} (counting from 0), column {c}: {e}; nothing was copied"
                        ))
                    })?;
                }
                chunk.put_u8(b'\n');
            }
            n += 1;
            if chunk.len() >= CHUNK {
                copy::close_frame(&mut chunk, at);
                if !self.send(records.py(), chunk.split().freeze())? {
                    return Ok(n);
                }
                chunk.reserve(CHUNK + 1024);
                at = copy::open_frame(&mut chunk);
            }
        }
        if binary && last {
            chunk.put_slice(BINARY_TRAILER);
        }
        copy::close_frame(&mut chunk, at);
        self.send(records.py(), chunk.freeze())?;
        Ok(n)
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
