//! PostgreSQL results into what the caller asked for: all rows as
//! `Record`s, the first row, one value, the command status, or a described
//! statement's parameter types. Each is a conversion (`Conv`) the request
//! carries to whoever picks its reply up; a server error raises
//! `PostgresError` whichever was asked for.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::decode;
use super::errors::{client_error, pg_error};
use super::heap_trim;
use super::record::{self, Desc};
use super::types::{QueryCtx, Registry};
use crate::kernel::Reply;
use crate::protocols::pg::{Notification, PgResult};
use crate::python::core::conv::Conv;

/// What the caller wants from a result (`shape` in `PgService.query`).
pub const ROWS: u8 = 0;
pub const ROW: u8 = 1;
pub const VALUE: u8 = 2;
pub const STATUS: u8 = 3;
/// The parameter types of a described statement (a list of OIDs).
pub const PARAMS: u8 = 4;

/// `(parameter types, column types)` (`describe_statement`'s reply).
pub const STMT_INFO: Conv = Conv::new(stmt_info, 0);
/// The (last) command status (executemany's reply).
pub const COMMAND_STATUS: Conv = Conv::new(status, 0);
/// A batch of a streamed result, or its end: a list of `Record`s.
pub const ROW_BATCH: Conv = Conv::new(rows, 0);
/// A listener's notification: `(pid, channel, payload)`.
pub const NOTIFICATION: Conv = Conv::new(notification, 0);

/// A chunk of COPY TO STDOUT data (`bytes`), or its end: the status.
pub const COPY_CHUNK: Conv = Conv::new(copy_chunk, 0);

fn copy_chunk(py: Python<'_>, reply: Reply, _: usize) -> PyResult<Py<PyAny>> {
    match reply.downcast::<bytes::Bytes>() {
        Ok(b) => Ok(pyo3::types::PyBytes::new(py, &b).into_any().unbind()),
        Err(other) => status(py, other, 0),
    }
}

fn notification(py: Python<'_>, reply: Reply, _: usize) -> PyResult<Py<PyAny>> {
    let n = reply.downcast::<Notification>().map_err(|_| {
        PyTypeError::new_err("iokernel internal error: unexpected PostgreSQL notification")
    })?;
    Ok((n.pid, n.channel, n.payload)
        .into_pyobject(py)?
        .into_any()
        .unbind())
}

/// The conversion for `shape` (`column`: which value, for `VALUE`).
pub fn conv(shape: u8, column: usize) -> PyResult<Conv> {
    Ok(match shape {
        ROWS => Conv::new(rows, 0),
        ROW => Conv::new(row, 0),
        VALUE => Conv::new(value, column),
        STATUS => COMMAND_STATUS,
        PARAMS => STMT_INFO,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown result shape {other}"
            )))
        }
    })
}

/// The result; a server error raises.
fn result(py: Python<'_>, reply: Reply) -> PyResult<PgResult> {
    let r = reply.downcast::<PgResult>().map_err(|_| {
        PyTypeError::new_err("iokernel internal error: unexpected PostgreSQL reply")
    })?;
    if let Some(e) = &r.client_error {
        return Err(client_error(py, e));
    }
    match &r.error {
        Some(e) => {
            if STALE.contains(&e.code.as_str()) {
                let ctx = r.ctx.as_ref().and_then(|c| c.downcast_ref::<QueryCtx>());
                if let Some(cache) = ctx.and_then(|c| c.cache.upgrade()) {
                    cache.forget(ctx.map_or("", |c| &c.sql));
                }
            }
            Err(pg_error(py, e))
        }
        None => Ok(*r),
    }
}

fn stmt_info(py: Python<'_>, reply: Reply, _: usize) -> PyResult<Py<PyAny>> {
    let r = result(py, reply)?;
    let cols: Vec<u32> = r
        .columns
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|c| c.type_oid)
        .collect();
    Ok((r.param_types.unwrap_or_default(), cols)
        .into_pyobject(py)?
        .into_any()
        .unbind())
}

/// The registry the request carried (an empty one if none).
fn registry(r: &PgResult) -> Arc<Registry> {
    r.ctx
        .as_ref()
        .and_then(|c| c.downcast_ref::<QueryCtx>())
        .map(|c| c.reg.clone())
        .unwrap_or_default()
}

/// Errors after which a statement's cached types may be stale (its table
/// or a type changed): they are described again on the next call.
const STALE: &[&str] = &[
    "0A000", "26000", "42804", "42P01", "42703", "42883", "42P18",
];

fn status(py: Python<'_>, reply: Reply, _: usize) -> PyResult<Py<PyAny>> {
    let r = result(py, reply)?;
    Ok(r.status
        .unwrap_or_default()
        .into_pyobject(py)?
        .into_any()
        .unbind())
}

fn value(py: Python<'_>, reply: Reply, column: usize) -> PyResult<Py<PyAny>> {
    let r = result(py, reply)?;
    let (Some(cols), Some(row)) = (&r.columns, r.rows.first()) else {
        return Ok(py.None());
    };
    let vals = row
        .values()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let c = cols.get(column).ok_or_else(|| {
        PyValueError::new_err(format!(
            "column {column} does not exist (the result has {})",
            cols.len()
        ))
    })?;
    decode::cell(
        py,
        c.type_oid,
        c.format,
        vals[column].as_deref(),
        &registry(&r),
    )
}

fn rows(py: Python<'_>, reply: Reply, _: usize) -> PyResult<Py<PyAny>> {
    let r = result(py, reply)?;
    let out = records(py, &r, r.rows.len())?.into_any().unbind();
    if heap_trim::counts(r.rows.len()) {
        let raw = r.rows.iter().map(|d| d.wire_len() + RAW_ROW).sum();
        drop(r);
        heap_trim::freed(py, raw);
    }
    Ok(out)
}

/// What a raw row costs besides its bytes (its handle in the batch).
const RAW_ROW: usize = std::mem::size_of::<crate::codec::pg::DataRow>();

fn row(py: Python<'_>, reply: Reply, _: usize) -> PyResult<Py<PyAny>> {
    let r = result(py, reply)?;
    let out = records(py, &r, r.rows.len().min(1))?;
    Ok(out.get_item(0).map_or_else(|_| py.None(), Bound::unbind))
}

/// The first `take` rows as a list of `Record`s sharing one descriptor
/// (column names, name → position), each decoded straight into its Record.
fn records<'py>(py: Python<'py>, r: &PgResult, take: usize) -> PyResult<Bound<'py, PyList>> {
    let Some(cols) = &r.columns else {
        return Ok(PyList::empty(py));
    };
    let desc = Desc::new(py, cols.iter().map(|c| c.name.as_str()))?;
    let reg = registry(r);
    // Per column, once: a binary cell of a type without a custom codec
    // goes straight to the binary decoder.
    let plan: Vec<(u32, i16, bool)> = cols
        .iter()
        .map(|c| {
            (
                c.type_oid,
                c.format,
                c.format == 1 && !reg.custom.contains_key(&c.type_oid),
            )
        })
        .collect();
    let rows = r.rows.iter().take(take).map(|row| {
        let vals = plan
            .iter()
            .zip(row.slices())
            .map(|(&(t, format, direct), v)| match v {
                None => Ok(py.None()),
                Some(b) if direct => decode::binary(py, t, b, &reg),
                Some(b) => decode::cell(py, t, format, Some(b), &reg),
            });
        desc.record(plan.len().min(row.len()), vals)
    });
    record::list(py, take, rows)
}
