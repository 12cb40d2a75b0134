//! The guard around a C slot of the native types (`pg.Record`, `pg.UUID`):
//! pyo3 attached for the call, an error raised (set) as CPython expects,
//! a panic turned into a `PanicException` instead of unwinding into C.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::panic::PanicException;
use pyo3::prelude::*;

/// Runs `f` for a slot of type `ty`; on an error or a panic the exception
/// is set and `failed` returned.
pub(super) fn guard<R>(ty: &str, failed: R, f: impl FnOnce(Python<'_>) -> PyResult<R>) -> R {
    Python::attach(|py| match catch_unwind(AssertUnwindSafe(|| f(py))) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            e.restore(py);
            failed
        }
        Err(_) => {
            PanicException::new_err(format!("iokernel internal error: panic in {ty}")).restore(py);
            failed
        }
    })
}
