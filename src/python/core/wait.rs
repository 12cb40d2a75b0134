//! Time limits given from Python, and how a blocking caller waits.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::errors::to_pyerr;
use crate::kernel::baton::baton;
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

/// Whether this thread holds one of the baton's tokens (`kernel::baton`):
/// its last reply woke it with one. Handed on when it next waits, or when
/// the thread ends.
struct Holding(Cell<bool>);

impl Drop for Holding {
    fn drop(&mut self) {
        if self.0.get() {
            baton().hand_on();
        }
    }
}

thread_local! {
    static HOLDING: Holding = const { Holding(Cell::new(false)) };
}

/// Wait for a blocking caller's reply with the GIL released, waking every
/// 100 ms to let Ctrl-C through. The kernel enforces the deadline; the extra
/// second here only guards against a kernel that stopped answering. With
/// the GIL released, a token this thread holds goes to the next caller
/// whose reply is in (it finds the GIL free).
pub fn wait(py: Python<'_>, slot: &Arc<Slot>, timeout: Option<f64>) -> PyResult<Delivered> {
    let give_up = timeout
        .and_then(|t| Duration::try_from_secs_f64(t).ok())
        .and_then(|d| d.checked_add(Duration::from_secs(1)))
        .and_then(|d| Instant::now().checked_add(d));
    let mut first = true;
    loop {
        let s = slot.clone();
        let hand_on = std::mem::take(&mut first);
        let got = py.detach(move || {
            if hand_on && HOLDING.with(|h| h.0.replace(false)) {
                baton().hand_on();
            }
            s.wait(Duration::from_millis(100))
        });
        if let Some(o) = got {
            if slot.take_grant() {
                HOLDING.with(|h| h.0.set(true));
            }
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
