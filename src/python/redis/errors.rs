//! Redis error replies as `iokernel.redis.ResponseError`.

use pyo3::prelude::*;

use crate::python::core::errors::ErrorClass;

static RESPONSE_ERROR: ErrorClass = ErrorClass::new("ResponseError");

/// A server error reply as an exception instance (not raised): a pipeline
/// returns it in place; a single command raises it.
pub fn response_error(py: Python<'_>, msg: &[u8]) -> PyResult<Py<PyAny>> {
    let text = String::from_utf8_lossy(msg);
    Ok(RESPONSE_ERROR.get(py)?.call1((text.as_ref(),))?.unbind())
}
