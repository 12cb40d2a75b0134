//! Kernel errors to the public exception classes, and the lookup protocol
//! bindings use for their own (`redis.ResponseError`, `pg.PostgresError`).
//!
//! The classes are defined in Python (`iokernel/_errors.py`) so that users
//! can read and subclass them; each is looked up once and cached. Every
//! kernel error also tells where its request got to (`stage`) and, where
//! known, which failure of its kind it was (`reason`).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::kernel::{ErrorKind, KernelError};

/// A class of `iokernel._errors`, looked up on first use.
pub struct ErrorClass {
    name: &'static str,
    class: PyOnceLock<Py<PyType>>,
}

impl ErrorClass {
    pub const fn new(name: &'static str) -> Self {
        ErrorClass {
            name,
            class: PyOnceLock::new(),
        }
    }

    pub fn get<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyType>> {
        let c = self.class.get_or_try_init(py, || -> PyResult<_> {
            let m = py.import("iokernel._errors")?;
            Ok(m.getattr(self.name)?.cast_into::<PyType>()?.unbind())
        })?;
        Ok(c.bind(py))
    }
}

static CONNECTION: ErrorClass = ErrorClass::new("ConnectionError");
static TIMEOUT: ErrorClass = ErrorClass::new("TimeoutError");
static PROTOCOL: ErrorClass = ErrorClass::new("ProtocolError");
static OVERLOADED: ErrorClass = ErrorClass::new("OverloadedError");
static TLS: ErrorClass = ErrorClass::new("TLSError");

/// The exception a kernel error raises: one class per kind.
pub fn to_pyerr(py: Python<'_>, e: KernelError) -> PyErr {
    let class = match e.kind {
        ErrorKind::Connection if e.tls.is_some() => &TLS,
        ErrorKind::Connection | ErrorKind::Closed => &CONNECTION,
        ErrorKind::Timeout => &TIMEOUT,
        ErrorKind::Protocol => &PROTOCOL,
        ErrorKind::Overloaded => &OVERLOADED,
    };
    let made = class.get(py).and_then(|c| {
        let exc = c.call1((e.detail,))?;
        exc.setattr(intern!(py, "stage"), e.stage.name())?;
        if let Some(r) = e.reason.name() {
            exc.setattr(intern!(py, "reason"), r)?;
        }
        if let Some(t) = e.tls {
            exc.setattr(intern!(py, "tls_reason"), t)?;
        }
        Ok(PyErr::from_value(exc))
    });
    made.unwrap_or_else(|err| err)
}
