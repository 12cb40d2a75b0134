//! Python entry points of the admin endpoint (`iokernel.admin`).

use std::path::PathBuf;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::admin::{self, Listen};

/// Serve the admin endpoint. `kind` is "unix" (target = path) or "tcp"
/// (target = host, port). Returns the bound address.
#[pyfunction]
#[pyo3(signature = (kind, target, port = 0, stacks_fd = None, stacks_signal = None))]
pub fn admin_serve(
    py: Python<'_>,
    kind: &str,
    target: &str,
    port: u16,
    stacks_fd: Option<i32>,
    stacks_signal: Option<i32>,
) -> PyResult<String> {
    let listen = match kind {
        "unix" => Listen::Unix(PathBuf::from(target)),
        "tcp" => Listen::Tcp(target.to_string(), port),
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown admin address kind {kind:?}"
            )))
        }
    };
    let stacks = stacks_fd.zip(stacks_signal);
    py.detach(move || admin::serve(listen, stacks))
        .map_err(PyOSError::new_err)
}

/// The admin endpoint's address in this process, if it serves one.
#[pyfunction]
pub fn admin_address() -> Option<String> {
    admin::address()
}

/// The directory for metrics files and default admin sockets.
#[pyfunction]
pub fn metrics_dir() -> String {
    crate::metrics::dir().display().to_string()
}
