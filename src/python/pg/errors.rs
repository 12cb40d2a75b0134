//! PostgreSQL error responses as `iokernel.pg.PostgresError`.

use pyo3::prelude::*;

use crate::codec::pg::ErrorFields;
use crate::protocols::pg::ClientError;
use crate::python::core::errors::ErrorClass;

static POSTGRES_ERROR: ErrorClass = ErrorClass::new("PostgresError");
static TOO_LARGE: ErrorClass = ErrorClass::new("ResponseTooLargeError");
static INTERFACE: ErrorClass = ErrorClass::new("InterfaceError");

/// A failure the client found while the connection stayed in step:
/// `ResponseTooLargeError` (with `option`), or `InterfaceError`.
pub fn client_error(py: Python<'_>, e: &ClientError) -> PyErr {
    let (class, text, option) = match e {
        ClientError::TooLarge(t) => (&TOO_LARGE, t, Some("max_message_size")),
        ClientError::Interface(t) => (&INTERFACE, t, None),
    };
    let build = || -> PyResult<PyErr> {
        let exc = class.get(py)?.call1((text,))?;
        if let Some(o) = option {
            exc.setattr("option", o)?;
        }
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|err| err)
}

/// A PostgreSQL error reply as a raised `iokernel.pg.PostgresError`, with
/// its fields as attributes (`sqlstate`, `message`, `detail`, `hint`, ...).
pub fn pg_error(py: Python<'_>, e: &ErrorFields) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let text = match &e.detail {
            Some(d) => format!("{} (SQLSTATE {})\nDETAIL: {d}", e.message, e.code),
            None => format!("{} (SQLSTATE {})", e.message, e.code),
        };
        let exc = POSTGRES_ERROR.get(py)?.call1((text,))?;
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
