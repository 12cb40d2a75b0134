//! Completion delivery: how a finished request gets back to Python.
//!
//! The kernel never touches Python objects. A reply is an opaque Rust value
//! (`Reply`, built by the protocol layer) delivered through a `Completion`:
//! * `Slot`  — one blocking caller waits on a condvar with the GIL released;
//! * `Queue` — an asyncio loop's queue, woken through one eventfd. The kernel
//!   writes the eventfd only when the queue goes from empty to non-empty, so a
//!   burst of replies costs one wake-up and the loop drains them in one
//!   callback; an idle kernel wakes nobody.
//!
//! A `Completion` completes exactly once: dropping it unfinished (kernel shut
//! down, connection task gone) delivers a `Closed` error, so no caller can be
//! left waiting forever.

use std::any::Any;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::error::KernelError;

/// A parsed reply. Concrete type chosen by the protocol; the Python binding
/// of that protocol downcasts it.
pub type Reply = Box<dyn Any + Send>;
pub type Outcome = Result<Reply, KernelError>;

/// Kernel-side timestamps of one request, for latency accounting.
#[derive(Debug, Clone, Copy)]
pub struct Stamps {
    pub submitted: Instant,
    pub written: Option<Instant>,
    pub completed: Option<Instant>,
}

pub struct Delivered {
    pub token: u64,
    pub outcome: Outcome,
}

enum Target {
    Slot(Arc<Slot>),
    Queue(Arc<CompletionQueue>, u64),
}

pub struct Completion(Option<Target>);

impl Completion {
    pub fn slot(slot: Arc<Slot>) -> Self {
        Completion(Some(Target::Slot(slot)))
    }
    pub fn queue(queue: Arc<CompletionQueue>, token: u64) -> Self {
        Completion(Some(Target::Queue(queue, token)))
    }
    /// A completion nobody waits for (heartbeats, kernel-internal requests).
    pub fn none() -> Self {
        Completion(None)
    }
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }
    pub fn complete(mut self, outcome: Outcome) {
        if let Some(t) = self.0.take() {
            deliver(t, outcome);
        }
    }
}

fn deliver(target: Target, outcome: Outcome) {
    match target {
        Target::Slot(s) => s.put(outcome),
        Target::Queue(q, token) => q.push(token, outcome),
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            deliver(
                t,
                Err(KernelError::closed(
                    "the I/O kernel dropped this request (it is shutting down); retry after restarting the client",
                )),
            );
        }
    }
}

/// One blocking caller's reply slot.
#[derive(Default)]
pub struct Slot {
    value: Mutex<Option<Outcome>>,
    ready: Condvar,
}

impl Slot {
    pub fn new() -> Arc<Self> {
        Arc::new(Slot::default())
    }
    fn put(&self, o: Outcome) {
        let mut g = self.value.lock().unwrap_or_else(|e| e.into_inner());
        *g = Some(o);
        drop(g);
        self.ready.notify_one();
    }
    /// Wait up to `max`; `None` if nothing arrived in that time.
    pub fn wait(&self, max: Duration) -> Option<Outcome> {
        let end = Instant::now() + max;
        let mut g = self.value.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(o) = g.take() {
                return Some(o);
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            g = self
                .ready
                .wait_timeout(g, end - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The completion queue of one asyncio event loop (or any batch consumer).
pub struct CompletionQueue {
    items: Mutex<Vec<Delivered>>,
    efd: OwnedFd,
}

impl CompletionQueue {
    pub fn new() -> std::io::Result<Arc<Self>> {
        // SAFETY: plain syscall; the returned fd is checked and owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor nobody else owns.
        let efd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Arc::new(CompletionQueue {
            items: Mutex::new(Vec::new()),
            efd,
        }))
    }

    /// The descriptor that becomes readable when completions are waiting.
    pub fn fd(&self) -> RawFd {
        self.efd.as_raw_fd()
    }

    fn push(&self, token: u64, outcome: Outcome) {
        let mut g = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = g.is_empty();
        g.push(Delivered { token, outcome });
        drop(g);
        if was_empty {
            let one: u64 = 1;
            // SAFETY: writing 8 bytes from a valid u64 to our own eventfd.
            // EAGAIN (counter saturated) is harmless: the fd is readable.
            unsafe { libc::write(self.efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Take every waiting completion. Clears the wake-up first, so an item
    /// pushed after the swap always re-arms the fd.
    pub fn drain(&self) -> Vec<Delivered> {
        let mut buf: u64 = 0;
        // SAFETY: reading 8 bytes into a valid u64 from our own non-blocking eventfd.
        unsafe { libc::read(self.efd.as_raw_fd(), (&mut buf as *mut u64).cast(), 8) };
        let mut g = self.items.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_receives_and_drop_completes_with_closed() {
        let s = Slot::new();
        Completion::slot(s.clone()).complete(Ok(Box::new(5u32)));
        let v = s.wait(Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!(*v.downcast::<u32>().unwrap(), 5);
        drop(Completion::slot(s.clone()));
        let e = s.wait(Duration::from_secs(1)).unwrap().unwrap_err();
        assert_eq!(e.kind, super::super::error::ErrorKind::Closed);
    }

    #[test]
    fn queue_wakes_once_per_burst() {
        let q = CompletionQueue::new().unwrap();
        for t in 0..3 {
            Completion::queue(q.clone(), t).complete(Ok(Box::new(t)));
        }
        let mut n: u64 = 0;
        // SAFETY: reading our own eventfd.
        let r = unsafe { libc::read(q.fd(), (&mut n as *mut u64).cast(), 8) };
        assert_eq!((r, n), (8, 1), "three pushes, one wake-up");
        let items = q.drain();
        assert_eq!(
            items.iter().map(|d| d.token).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!(q.drain().is_empty());
    }
}
