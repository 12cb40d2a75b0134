//! The blocking floor, a benchmark hook: a blocking call with no I/O. The
//! caller's reply slot goes to a helper thread that completes it at once
//! (taking all that is waiting each time it wakes, as the kernel does), and
//! the caller waits for it exactly as a blocking iokernel call does
//! (`wait::wait`, the GIL released). Called from many threads it measures
//! what the GIL's hand-offs and the threads' wake-ups cost by themselves;
//! `bench/run.py` reports it beside the 50-thread rows.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::wait::wait;
use crate::kernel::completion::Completion;
use crate::kernel::runtime::{ensure_atfork, generation};
use crate::kernel::Slot;

/// The helper of this process generation (`runtime::generation`: a forked
/// child starts its own, the parent's thread is not there).
static HELPER: Mutex<Option<(u64, Sender<Arc<Slot>>)>> = Mutex::new(None);

fn helper() -> PyResult<Sender<Arc<Slot>>> {
    ensure_atfork();
    let mut h = HELPER.lock().unwrap_or_else(|e| e.into_inner());
    let now = generation();
    if let Some((g, tx)) = h.as_ref() {
        if *g == now {
            return Ok(tx.clone());
        }
    }
    let (tx, rx) = channel::<Arc<Slot>>();
    std::thread::Builder::new()
        .name("iokernel-floor".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                answer(first);
                while let Ok(next) = rx.try_recv() {
                    answer(next);
                }
            }
        })
        .map_err(|e| PyRuntimeError::new_err(format!("the floor's helper thread: {e}")))?;
    *h = Some((now, tx.clone()));
    Ok(tx)
}

fn answer(slot: Arc<Slot>) {
    Completion::slot(slot).complete(Ok(Box::new(())));
}

/// One blocking round trip through the helper thread; returns None. With
/// `spin=False` the caller sleeps at once instead of spinning as a blocking
/// call with few others waiting does (`kernel::spin_wait`).
#[pyfunction]
#[pyo3(signature = (spin = true))]
pub fn _floor_call(py: Python<'_>, spin: bool) -> PyResult<()> {
    let slot = if spin {
        Slot::new()
    } else {
        Slot::without_spin()
    };
    helper()?
        .send(slot.clone())
        .map_err(|_| PyRuntimeError::new_err("the floor's helper thread is gone"))?;
    wait(py, &slot, None)?
        .outcome
        .map(drop)
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
}
