//! Process-wide limits (`iokernel.configure(max_in_flight=, max_queued=)`),
//! across every service of the process, on top of each service's own.
//!
//! Two counters every service keeps up to date: requests admitted and not
//! yet answered (`outstanding`, one relaxed atomic add on admission and one
//! subtract when the request's `Outstanding` share drops) and requests
//! waiting in a service queue for a connection (`queued`, adjusted by the
//! kernel thread when a queue's length changes). Admission refuses a call
//! at once when either is at its cap, naming that cap.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::KernelError;

pub struct ProcessLimits {
    pub outstanding: AtomicUsize,
    pub queued: AtomicUsize,
    max_in_flight: AtomicUsize,
    max_queued: AtomicUsize,
}

pub static PROCESS: ProcessLimits = ProcessLimits {
    outstanding: AtomicUsize::new(0),
    queued: AtomicUsize::new(0),
    max_in_flight: AtomicUsize::new(usize::MAX),
    max_queued: AtomicUsize::new(usize::MAX),
};

/// Set the caps (`None`: no cap). Applies to the next call of every client,
/// existing ones included.
pub fn configure(max_in_flight: Option<usize>, max_queued: Option<usize>) {
    let p = &PROCESS;
    p.max_in_flight
        .store(max_in_flight.unwrap_or(usize::MAX), Ordering::Relaxed);
    p.max_queued
        .store(max_queued.unwrap_or(usize::MAX), Ordering::Relaxed);
}

/// The caps now (`None`: no cap).
pub fn caps() -> (Option<usize>, Option<usize>) {
    let get = |a: &AtomicUsize| Some(a.load(Ordering::Relaxed)).filter(|v| *v != usize::MAX);
    (get(&PROCESS.max_in_flight), get(&PROCESS.max_queued))
}

/// Check the caps for one more request, `before` being the process's
/// outstanding count before it was added.
#[inline]
pub fn check(before: usize, service: &str) -> Result<(), KernelError> {
    let p = &PROCESS;
    let cap = p.max_in_flight.load(Ordering::Relaxed);
    if before >= cap {
        return Err(KernelError::overloaded(format!(
            "{service}: process-wide max_in_flight={cap} reached ({before} requests in flight across \
             all clients of this process); slow down, or raise it with iokernel.configure(max_in_flight=...)"
        )));
    }
    let qcap = p.max_queued.load(Ordering::Relaxed);
    if qcap != usize::MAX {
        let q = p.queued.load(Ordering::Relaxed);
        if q >= qcap {
            return Err(KernelError::overloaded(format!(
                "{service}: process-wide max_queued={qcap} reached ({q} requests waiting for a \
                 connection across all clients of this process); slow down, or raise it with \
                 iokernel.configure(max_queued=...)"
            )));
        }
    }
    Ok(())
}

/// A service's queue went from `old` to `new` requests.
#[inline]
pub fn queue_changed(old: usize, new: usize) {
    if new > old {
        PROCESS.queued.fetch_add(new - old, Ordering::Relaxed);
    } else if old > new {
        PROCESS.queued.fetch_sub(old - new, Ordering::Relaxed);
    }
}
