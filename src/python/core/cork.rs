//! Holding an asyncio loop turn's requests and handing them over in groups.
//!
//! A loop resolves many futures in one turn (one `Completer::drain`), and
//! the tasks it wakes each submit their next request in that same turn.
//! Handed to the kernel one by one, the first few wake the kernel thread
//! while the loop is still submitting the rest: it takes them a few at a
//! time, writes each few on its own, and goes back to sleep between them —
//! on a virtual machine every wake-up of a halted CPU costs tens of
//! microseconds. Here the first request of a turn goes at once (a lone
//! request waits for nothing; the kernel starts while the loop goes on),
//! and the ones after it are held and handed over in one message per
//! service (`ServiceHandle::send_all`): when `FLUSH_AT` of them are held
//! (so the kernel and the server work on those while the loop submits the
//! rest) and when the turn ends (a `Flush` the first request scheduled with
//! `loop.call_soon`). Requests go to the kernel in the order they were
//! submitted. `iokernel.configure(loop_batching=False)` hands each over at
//! once instead.
//!
//! Measured (GET from 50 asyncio tasks, one process, modes alternated):
//! holding the whole turn lost ~15 % against none (the kernel and the
//! server then idle while the loop runs); groups of 16 gained 13-29 %.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::intern;
use pyo3::prelude::*;

/// Whether asyncio requests are held (`iokernel.configure(loop_batching=)`).
pub static LOOP_BATCHING: AtomicBool = AtomicBool::new(true);

/// Requests held before they are handed over without waiting for the end
/// of the turn.
pub const FLUSH_AT: usize = 16;

/// A service's held requests, handed over in one message.
pub trait Corked: Send {
    /// Hand the requests to the kernel.
    fn send(self: Box<Self>);
    /// For adding the next request to the last service's group.
    fn as_any(&mut self) -> &mut dyn std::any::Any;
}

/// One loop's held requests (each `Completer` has one).
#[derive(Default)]
pub struct Cork {
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    /// By service, in submission order.
    groups: Vec<Box<dyn Corked>>,
    /// Requests in `groups`.
    count: usize,
    /// A `Flush` is scheduled on the loop and has not run yet.
    scheduled: bool,
}

impl Cork {
    /// Hold a request. `join` is given the last group if it is a `B`: it
    /// adds the request to it (returning None) when that group is the
    /// request's service, else returns a new group holding it. The first
    /// request of a turn is not held: it goes at once and schedules the
    /// `Flush` that ends the turn on `fut`'s loop.
    pub fn hold<B: Corked + 'static>(
        self: &Arc<Self>,
        fut: &Bound<'_, PyAny>,
        join: impl FnOnce(Option<&mut B>) -> Option<B>,
    ) {
        if !LOOP_BATCHING.load(Ordering::Relaxed) {
            if let Some(group) = join(None) {
                Box::new(group).send();
            }
            return;
        }
        let now = {
            let mut h = self.held.lock().unwrap_or_else(|e| e.into_inner());
            if !h.scheduled {
                // The first request of a turn goes at once (nothing is held
                // yet): a lone request waits for nothing, and the kernel
                // starts while the loop goes on.
                h.scheduled = true;
                drop(h);
                if let Some(group) = join(None) {
                    Box::new(group).send();
                }
                self.schedule(fut);
                return;
            }
            let last = h
                .groups
                .last_mut()
                .and_then(|g| g.as_any().downcast_mut::<B>());
            if let Some(group) = join(last) {
                h.groups.push(Box::new(group));
            }
            h.count += 1;
            if h.count >= FLUSH_AT {
                h.count = 0;
                std::mem::take(&mut h.groups)
            } else {
                Vec::new()
            }
        };
        send(now);
    }

    /// Have `fut`'s loop end the turn (`Flush`); a loop that cannot take it
    /// (closed) gets everything handed over now.
    fn schedule(self: &Arc<Self>, fut: &Bound<'_, PyAny>) {
        let py = fut.py();
        let flush = Flush(self.clone());
        let scheduled = fut
            .call_method0(intern!(py, "get_loop"))
            .and_then(|lp| lp.call_method1(intern!(py, "call_soon"), (flush,)));
        if scheduled.is_err() {
            self.end_turn();
        }
    }

    /// Hand everything held to the kernel now.
    pub fn flush(&self) {
        let groups = {
            let mut h = self.held.lock().unwrap_or_else(|e| e.into_inner());
            h.count = 0;
            std::mem::take(&mut h.groups)
        };
        send(groups);
    }

    /// The turn ended: hand everything over; the next request held
    /// schedules a new `Flush`.
    fn end_turn(&self) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .scheduled = false;
        self.flush();
    }
}

fn send(groups: Vec<Box<dyn Corked>>) {
    for g in groups {
        g.send();
    }
}

/// What the loop calls at the end of a turn with requests held.
#[pyclass(frozen, module = "iokernel._native")]
pub struct Flush(Arc<Cork>);

#[pymethods]
impl Flush {
    fn __call__(&self) {
        self.0.end_turn();
    }
}
