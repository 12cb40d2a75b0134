//! Mapping kernel errors to the public exception classes.
//!
//! The classes are defined in Python (`iokernel/_errors.py`) so that users
//! can read and subclass them; this module looks them up once and caches them.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::kernel::{ErrorKind, KernelError};

static CLASSES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

const NAMES: [&str; 7] = [
    "ConnectionError",
    "TimeoutError",
    "ProtocolError",
    "OverloadedError",
    "ResponseError",
    "Error",
    "PostgresError",
];

fn class(py: Python<'_>, idx: usize) -> PyResult<Bound<'_, PyType>> {
    let v = CLASSES.get_or_try_init(py, || -> PyResult<Vec<Py<PyType>>> {
        let m = py.import("iokernel._errors")?;
        NAMES
            .iter()
            .map(|n| Ok(m.getattr(*n)?.cast_into::<PyType>()?.unbind()))
            .collect()
    })?;
    Ok(v[idx].bind(py).clone())
}

pub fn to_pyerr(py: Python<'_>, e: KernelError) -> PyErr {
    let idx = match e.kind {
        ErrorKind::Connection | ErrorKind::Closed => 0,
        ErrorKind::Timeout => 1,
        ErrorKind::Protocol => 2,
        ErrorKind::Overloaded => 3,
    };
    match class(py, idx) {
        Ok(c) => PyErr::from_type(c, e.detail),
        Err(err) => err,
    }
}

/// A server error reply as an exception instance (not raised).
pub fn response_error(py: Python<'_>, msg: &[u8]) -> PyResult<Py<PyAny>> {
    let text = String::from_utf8_lossy(msg);
    Ok(class(py, 4)?.call1((text.as_ref(),))?.unbind())
}

/// A PostgreSQL error reply as a raised `iokernel.pg.PostgresError`, with
/// its fields as attributes (`sqlstate`, `message`, `detail`, `hint`, ...).
pub fn pg_error(py: Python<'_>, e: &crate::codec::pg::ErrorFields) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let text = match &e.detail {
            Some(d) => format!("{} (SQLSTATE {})\nDETAIL: {d}", e.message, e.code),
            None => format!("{} (SQLSTATE {})", e.message, e.code),
        };
        let exc = class(py, 6)?.call1((text,))?;
        exc.setattr("sqlstate", &e.code)?;
        exc.setattr("severity", &e.severity)?;
        exc.setattr("message", &e.message)?;
        exc.setattr("detail", e.detail.as_deref())?;
        exc.setattr("hint", e.hint.as_deref())?;
        exc.setattr(
            "position",
            e.position.as_deref().and_then(|p| p.parse::<i64>().ok()),
        )?;
        exc.setattr("schema_name", e.schema.as_deref())?;
        exc.setattr("table_name", e.table.as_deref())?;
        exc.setattr("column_name", e.column.as_deref())?;
        exc.setattr("constraint_name", e.constraint.as_deref())?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|err| err)
}
