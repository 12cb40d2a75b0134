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
//! * `Items` — a stream (`items.rs`): the reply comes in parts, each
//!   delivered as it arrives (`Feed::Item`), the last by `complete`.
//!
//! A `Completion` completes exactly once: dropping it unfinished (kernel shut
//! down, connection task gone) delivers a `Closed` error, so no caller can be
//! left waiting forever.

use std::any::Any;
use std::future::Future;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::error::KernelError;
use super::spin_wait::SPIN_WAIT;
use super::stats::ServiceMetrics;

/// A parsed reply. Concrete type chosen by the protocol; the Python binding
/// of that protocol downcasts it.
pub type Reply = Box<dyn Any + Send>;
pub type Outcome = Result<Reply, KernelError>;

/// Where the parts of a reply in parts go, in order (`items::Items` is the
/// kernel's own, a bounded stream to one consumer).
pub trait Parts: Send + Sync {
    /// Add a part; false when the consumer is full (stop reading).
    fn push(&self, part: Outcome) -> bool;
    /// The last part (or the error that ended the reply).
    fn end(&self, last: Outcome);
    /// Resolves when the consumer has room again (or has gone).
    fn room(&self) -> Pin<Box<dyn Future<Output = ()> + '_>>;
}

/// A part of a reply in parts delivered through a loop's queue, under the
/// request's token, ahead of the reply itself (`Completion::item` on a
/// queue completion): the consumer converts each as it comes and gathers
/// them with the reply.
pub struct Part(pub Reply);

/// A finished request on its way to Python.
pub struct Delivered {
    pub token: u64,
    pub outcome: Outcome,
    /// When the kernel completed it.
    pub completed: Instant,
    metrics: Option<Arc<ServiceMetrics>>,
}

impl Delivered {
    /// Python has it now: record how long it waited to be picked up.
    pub fn picked_up(&self) {
        if let Some(m) = &self.metrics {
            m.picked_up(self.completed);
        }
    }
}

/// `picked_up` for a drained batch, with the time read once: a run of replies completed at the
/// same instant (one read of a connection) for the same service is one
/// histogram update; the values recorded are those of one update each.
pub fn picked_up_all(items: &[Delivered], now: Instant) {
    let mut run: Option<(&Arc<ServiceMetrics>, Instant, u64)> = None;
    for d in items {
        let Some(m) = &d.metrics else { continue };
        match &mut run {
            Some((rm, at, n)) if *at == d.completed && Arc::ptr_eq(rm, m) => *n += 1,
            _ => {
                if let Some((rm, at, n)) = run.replace((m, d.completed, 1)) {
                    rm.picked_up_n(now.saturating_duration_since(at), n);
                }
            }
        }
    }
    if let Some((rm, at, n)) = run {
        rm.picked_up_n(now.saturating_duration_since(at), n);
    }
}

enum Target {
    Slot(Arc<Slot>),
    Queue(Arc<CompletionQueue>, u64),
    Parts(Arc<dyn Parts>),
}

pub struct Completion {
    target: Option<Target>,
    metrics: Option<Arc<ServiceMetrics>>,
}

impl Completion {
    pub fn slot(slot: Arc<Slot>) -> Self {
        Completion {
            target: Some(Target::Slot(slot)),
            metrics: None,
        }
    }
    pub fn queue(queue: Arc<CompletionQueue>, token: u64) -> Self {
        Completion {
            target: Some(Target::Queue(queue, token)),
            metrics: None,
        }
    }
    /// A reply in parts: each part goes to `parts` as it arrives.
    pub fn stream(parts: Arc<dyn Parts>) -> Self {
        Completion {
            target: Some(Target::Parts(parts)),
            metrics: None,
        }
    }
    /// A completion nobody waits for (heartbeats, kernel-internal requests).
    pub fn none() -> Self {
        Completion {
            target: None,
            metrics: None,
        }
    }
    /// Count errors and pick-up delay in these metrics.
    pub fn with_metrics(mut self, m: Arc<ServiceMetrics>) -> Self {
        self.metrics = Some(m);
        self
    }
    pub fn is_none(&self) -> bool {
        self.target.is_none()
    }
    /// One part of a reply in parts. Returns false when the consumer is
    /// `capacity` items behind: stop reading until `Parts::room`. A loop's
    /// queue takes parts as `Part`s; a blocking slot has nowhere to put
    /// them: the protocol must only stream for requests that asked for it.
    pub fn item(&self, reply: Reply) -> Result<bool, Reply> {
        match &self.target {
            Some(Target::Parts(parts)) => Ok(parts.push(Ok(reply))),
            // A loop's queue takes parts too (unbounded: the loop converts
            // them as they come, so the raw reply is never all held).
            Some(Target::Queue(q, token)) => {
                q.push(Delivered {
                    token: *token,
                    outcome: Ok(Box::new(Part(reply))),
                    completed: Instant::now(),
                    metrics: None,
                });
                Ok(true)
            }
            _ => Err(reply),
        }
    }
    /// The stream this completion feeds, if it is one.
    pub fn parts(&self) -> Option<&Arc<dyn Parts>> {
        match &self.target {
            Some(Target::Parts(parts)) => Some(parts),
            _ => None,
        }
    }
    pub fn complete(self, outcome: Outcome) {
        self.complete_at(outcome, Instant::now());
    }
    /// `complete`, with when it was complete read by the caller (once for
    /// all the replies one read of a connection brought).
    pub fn complete_at(mut self, outcome: Outcome, completed: Instant) {
        if let Some(t) = self.target.take() {
            deliver(t, outcome, self.metrics.take(), completed);
        }
    }
}

fn deliver(
    target: Target,
    outcome: Outcome,
    metrics: Option<Arc<ServiceMetrics>>,
    completed: Instant,
) {
    if let (Err(e), Some(m)) = (&outcome, &metrics) {
        m.error(e.kind);
    }
    match target {
        Target::Slot(s) => s.put(Delivered {
            token: 0,
            outcome,
            completed,
            metrics,
        }),
        Target::Queue(q, token) => q.push(Delivered {
            token,
            outcome,
            completed,
            metrics,
        }),
        Target::Parts(parts) => parts.end(outcome),
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(t) = self.target.take() {
            deliver(
                t,
                // Whether it was written is not known here: say "written"
                // (the outcome is unknown), never "not sent".
                Err(KernelError::closed(
                    "the I/O kernel dropped this request (it is shutting down); retry after restarting the client",
                )
                .at(super::error::Stage::Written)),
                self.metrics.take(),
                Instant::now(),
            );
        }
    }
}

/// One blocking caller's reply slot.
#[derive(Default)]
pub struct Slot {
    value: Mutex<Option<Delivered>>,
    ready: Condvar,
    /// Set with `value`, for a caller's spin (`spin_wait`).
    filled: AtomicBool,
    /// Its caller never spins (the blocking floor's "no spin" variant).
    no_spin: bool,
}

impl Slot {
    pub fn new() -> Arc<Self> {
        Arc::new(Slot::default())
    }
    /// A slot whose caller sleeps at once, never spinning; still counted
    /// among the callers waiting.
    pub fn without_spin() -> Arc<Self> {
        Arc::new(Slot {
            no_spin: true,
            ..Slot::default()
        })
    }
    fn put(&self, d: Delivered) {
        let mut g = self.value.lock().unwrap_or_else(|e| e.into_inner());
        *g = Some(d);
        self.filled.store(true, Ordering::Release);
        drop(g);
        self.ready.notify_one();
    }
    /// Wait up to `max`; `None` if nothing arrived in that time. With few
    /// others waiting, a caller spins a little first (`spin_wait`).
    pub fn wait(&self, max: Duration) -> Option<Delivered> {
        let start = Instant::now();
        let waiting = SPIN_WAIT.enter();
        if !self.no_spin {
            waiting.spin(&self.filled, start);
        }
        let end = start + max;
        let mut g = self.value.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(d) = g.take() {
                waiting.record(d.completed.saturating_duration_since(start));
                return Some(d);
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
    /// Set by the watchdog; taken (and logged) by the consumer.
    alert: Mutex<Option<String>>,
    alerted: AtomicBool,
}

static QUEUES: Mutex<Vec<Weak<CompletionQueue>>> = Mutex::new(Vec::new());
/// Wakes the watchdog when some queue goes from empty to non-empty.
static PENDING: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Resolves when some completion queue has items (the watchdog sleeps here
/// while nothing is waiting, so an idle kernel does no periodic work).
pub async fn wait_for_pending() {
    loop {
        let any = QUEUES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .any(|q| !q.items.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
        if any {
            return;
        }
        PENDING.notified().await;
    }
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
        let q = Arc::new(CompletionQueue {
            items: Mutex::new(Vec::new()),
            efd,
            alert: Mutex::new(None),
            alerted: AtomicBool::new(false),
        });
        let mut all = QUEUES.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&q));
        Ok(q)
    }

    /// The descriptor that becomes readable when completions are waiting.
    pub fn fd(&self) -> RawFd {
        self.efd.as_raw_fd()
    }

    pub(super) fn push(&self, d: Delivered) {
        let mut g = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = g.is_empty();
        g.push(d);
        drop(g);
        if was_empty {
            PENDING.notify_one();
            let one: u64 = 1;
            // SAFETY: writing 8 bytes from a valid u64 to our own eventfd.
            // EAGAIN (counter saturated) is harmless: the fd is readable.
            unsafe { libc::write(self.efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Take every waiting completion. Clears the wake-up first, so an item
    /// pushed after the swap always re-arms the fd.
    pub fn drain(&self) -> Vec<Delivered> {
        let mut out = Vec::new();
        self.drain_into(&mut out);
        out
    }

    /// `drain` into `out` (which must be empty) by swapping buffers: the
    /// queue keeps `out`'s capacity, so a steady stream of batches costs no
    /// allocation and no regrowth on either side.
    pub fn drain_into(&self, out: &mut Vec<Delivered>) {
        debug_assert!(out.is_empty());
        let mut buf: u64 = 0;
        // SAFETY: reading 8 bytes into a valid u64 from our own non-blocking eventfd.
        unsafe { libc::read(self.efd.as_raw_fd(), (&mut buf as *mut u64).cast(), 8) };
        let mut g = self.items.lock().unwrap_or_else(|e| e.into_inner());
        self.alerted.store(false, Ordering::Relaxed);
        std::mem::swap(&mut *g, out);
    }

    /// Whether completions are waiting (pushed since the last `drain`).
    pub fn has_items(&self) -> bool {
        !self
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// How long the oldest waiting completion has waited.
    pub fn oldest_wait(&self) -> Option<Duration> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .map(|d| d.completed.elapsed())
    }

    /// The watchdog's message, once (for the consumer to log).
    pub fn take_alert(&self) -> Option<String> {
        self.alert.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Watchdog: every queue whose oldest completion has waited longer than
/// `threshold` gets one alert per episode (cleared when it is drained).
/// Returns how many queues are stuck now.
pub fn check_stalls(threshold: Duration, describe: impl Fn(Duration) -> String) -> usize {
    let queues: Vec<Arc<CompletionQueue>> = QUEUES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    let mut stuck = 0;
    for q in queues {
        if let Some(age) = q.oldest_wait().filter(|a| *a >= threshold) {
            stuck += 1;
            if !q.alerted.swap(true, Ordering::Relaxed) {
                super::stats::stalls().add(1.0);
                *q.alert.lock().unwrap_or_else(|e| e.into_inner()) = Some(describe(age));
            }
        }
    }
    stuck
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_receives_and_drop_completes_with_closed() {
        let s = Slot::new();
        Completion::slot(s.clone()).complete(Ok(Box::new(5u32)));
        let v = s.wait(Duration::from_secs(1)).unwrap().outcome.unwrap();
        assert_eq!(*v.downcast::<u32>().unwrap(), 5);
        drop(Completion::slot(s.clone()));
        let e = s.wait(Duration::from_secs(1)).unwrap().outcome.unwrap_err();
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
