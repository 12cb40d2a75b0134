//! Time limits given from Python, and how a blocking caller waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::errors::to_pyerr;
use crate::kernel::completion::Delivered;
use crate::kernel::{KernelError, Slot};

/// An option in seconds as a `Duration`: > 0 and representable, else a
/// `ValueError` naming the option (never a panic on NaN, infinity or 1e300).
pub fn seconds(name: &str, t: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(t)
        .ok()
        .filter(|d| !d.is_zero() && t > 0.0)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{name}={t} is not allowed: {name} must be a number of seconds > 0"
            ))
        })
}

/// A request's `timeout` as the instant the kernel gives up.
pub fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    deadline_from(Instant::now(), timeout)
}

/// `deadline` counted from `now` (a request's submission time: one clock
/// reading for both).
pub fn deadline_from(now: Instant, timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        // Checked: a huge or infinite value is refused, never a panic.
        Some(t) if t > 0.0 => Duration::try_from_secs_f64(t)
            .ok()
            .and_then(|d| now.checked_add(d))
            .map(Some)
            .ok_or_else(|| {
                PyValueError::new_err(format!("timeout={t} is too long; use None for no limit"))
            }),
        Some(t) => Err(PyValueError::new_err(format!(
            "timeout must be a positive number of seconds or None, not {t}"
        ))),
    }
}

/// Wait for a blocking caller's reply with the GIL released, waking every
/// 100 ms to let Ctrl-C through. The kernel enforces the deadline; the extra
/// second here only guards against a kernel that stopped answering.
pub fn wait(py: Python<'_>, slot: &Arc<Slot>, timeout: Option<f64>) -> PyResult<Delivered> {
    let give_up = timeout
        .and_then(|t| Duration::try_from_secs_f64(t).ok())
        .and_then(|d| d.checked_add(Duration::from_secs(1)))
        .and_then(|d| Instant::now().checked_add(d));
    loop {
        let s = slot.clone();
        if let Some(o) = py.detach(move || s.wait(Duration::from_millis(100))) {
            return Ok(o);
        }
        py.check_signals()?;
        if give_up.is_some_and(|g| Instant::now() >= g) {
            return Err(to_pyerr(
                py,
                KernelError::timeout("the I/O kernel did not answer in time"),
            ));
        }
    }
}
