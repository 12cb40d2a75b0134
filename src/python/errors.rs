//! Mapping kernel errors to the public exception classes.
//!
//! The classes are defined in Python (`iokernel/_errors.py`) so that users
//! can read and subclass them; this module looks them up once and caches them.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::kernel::{ErrorKind, KernelError};

static CLASSES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

const NAMES: [&str; 6] = [
    "ConnectionError",
    "TimeoutError",
    "ProtocolError",
    "OverloadedError",
    "ResponseError",
    "Error",
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
