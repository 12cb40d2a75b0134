//! The asyncio side of completion: one `Completer` per event loop.
//!
//! A request submitted from a coroutine registers its future here under a
//! token and hands the kernel a `Completion` for that token. The loop watches
//! `fileno()` (an eventfd) with `add_reader`; `drain()` runs once per wake-up
//! and resolves every ready future in one pass with one GIL acquisition —
//! the Python objects are built here, never in the kernel, each by the
//! conversion (`Conv`) its protocol binding chose when it submitted it.
//!
//! A cancelled future stays registered until its reply arrives; the reply is
//! then dropped (the kernel still consumed it from the wire, so nothing
//! shifts onto other callers).
//!
//! The pending futures (and their post-processing callables) are visible to
//! the garbage collector, so a cycle through a future's callbacks back to
//! the completer can be collected.
//!
//! Requests submitted during one turn of the loop are held and handed to
//! the kernel in groups (`cork`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pyo3::exceptions::PyOSError;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyModule, PyTuple};
use pyo3::PyTraverseError;

use super::conv::Conv;
use super::cork::{Cork, Corked};
use crate::kernel::completion::{picked_up_all, Delivered};
use crate::kernel::{runtime, Completion, CompletionQueue, Outcome, Part};

/// Tokens are sequential integers made here, never chosen by a peer, so
/// they can be their own hash (no SipHash on every submit and reply).
#[derive(Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Tokens = BuildHasherDefault<TokenHasher>;

struct Entry {
    fut: Py<PyAny>,
    post: Option<Py<PyAny>>,
    conv: Conv,
    /// What the parts of a reply in parts (`Part`) converted to so far: a
    /// list the reply's own conversion (also a list) is appended to.
    acc: Option<Py<PyList>>,
}

#[pyclass(frozen, weakref, module = "iokernel._native")]
pub struct Completer {
    q: Arc<CompletionQueue>,
    pending: Mutex<HashMap<u64, Entry, Tokens>>,
    next: AtomicU64,
    #[pyo3(get)]
    generation: u64,
    /// `drain`'s buffers, kept for their capacity (empty between drains).
    bufs: Mutex<Buffers>,
    /// Requests of this loop turn, not handed to the kernel yet.
    cork: Arc<Cork>,
}

type Buffers = (Vec<Delivered>, Vec<(Option<Entry>, Outcome)>);

#[pymethods]
impl Completer {
    #[new]
    fn new() -> PyResult<Self> {
        let q = CompletionQueue::new()
            .map_err(|e| PyOSError::new_err(format!("iokernel: cannot create eventfd: {e}")))?;
        Ok(Completer {
            q,
            pending: Mutex::new(HashMap::default()),
            next: AtomicU64::new(1),
            generation: runtime::generation(),
            bufs: Mutex::new((Vec::new(), Vec::new())),
            cork: Arc::default(),
        })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // try_lock: the collector may run while this thread holds the map
        // (an allocation in register); a skipped visit only delays collection.
        if let Ok(map) = self.pending.try_lock() {
            for e in map.values() {
                visit.call(&e.fut)?;
                visit.call(&e.post)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let taken = match self.pending.try_lock() {
            Ok(mut map) => std::mem::take(&mut *map),
            Err(_) => return,
        };
        drop(taken); // outside the lock: dropping a future may run Python code
    }

    /// The descriptor to watch with `loop.add_reader`.
    fn fileno(&self) -> i32 {
        self.q.fd()
    }

    /// Requests submitted through this completer and not yet answered.
    fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Resolve every future whose reply is ready. Returns how many.
    ///
    /// Replies the kernel finished while this ran are resolved too (up to
    /// `ROUNDS` passes): their tasks then wake in the same loop turn as the
    /// others, instead of the loop paying a turn of their own (a selector
    /// poll, this callback) for them.
    fn drain(&self, py: Python<'_>) -> usize {
        let mut total = 0;
        for _ in 0..ROUNDS {
            let n = self.drain_once(py);
            total += n;
            if n == 0 || !self.q.has_items() {
                break;
            }
        }
        total
    }
}

/// Passes one `drain` makes at most, so a kernel that keeps answering
/// cannot hold the loop in one callback.
const ROUNDS: usize = 4;

impl Completer {
    fn drain_once(&self, py: Python<'_>) -> usize {
        // The buffers of the last pass (taken, so that a pass re-entered
        // from Python code it runs just starts with empty ones).
        let (mut items, mut work) =
            std::mem::take(&mut *self.bufs.lock().unwrap_or_else(|e| e.into_inner()));
        items.clear();
        self.q.drain_into(&mut items);
        if items.is_empty() {
            return 0;
        }
        if let Some(msg) = self.q.take_alert() {
            log_warning(py, &msg);
        }
        let parted = items
            .iter()
            .any(|d| matches!(&d.outcome, Ok(r) if r.is::<Part>()));
        if parted {
            return self.drain_parts(py, items);
        }
        picked_up_all(&items, Instant::now());
        work.clear();
        {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            work.extend(items.drain(..).map(|d| (map.remove(&d.token), d.outcome)));
        }
        let n = work.len();
        for (entry, outcome) in work.drain(..) {
            if let Some(e) = entry {
                finish(py, e, outcome);
            }
        }
        *self.bufs.lock().unwrap_or_else(|e| e.into_inner()) = (items, work);
        n
    }
}

impl Completer {
    /// `drain` for a batch holding parts of replies (`Part`): each entry is
    /// taken out once, gathers its parts in order, and is finished by its
    /// reply or put back to wait for the rest.
    fn drain_parts(&self, py: Python<'_>, items: Vec<Delivered>) -> usize {
        let n = items.len();
        let mut local: HashMap<u64, Option<Entry>, Tokens> = HashMap::default();
        {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for d in &items {
                local.entry(d.token).or_insert_with(|| map.remove(&d.token));
            }
        }
        for d in items {
            d.picked_up();
            let slot = local.get_mut(&d.token).expect("taken above");
            let Some(e) = slot.take() else { continue };
            match d.outcome {
                Ok(r) if r.is::<Part>() => *slot = gather(py, e, r),
                outcome => finish(py, e, outcome),
            }
        }
        let rest: Vec<(u64, Entry)> = local
            .into_iter()
            .filter_map(|(t, e)| e.map(|e| (t, e)))
            .collect();
        if !rest.is_empty() {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            map.extend(rest);
        }
        n
    }
}

/// Resolve an entry's future with its reply (appended to its gathered
/// parts, if any), through its conversion and `post`.
fn finish(py: Python<'_>, mut e: Entry, outcome: Outcome) {
    let mut value = e.conv.apply(py, outcome);
    if let (Ok(v), Some(acc)) = (&value, e.acc.take()) {
        let acc = acc.into_bound(py);
        value = acc
            .call_method1(intern!(py, "extend"), (v,))
            .map(|_| acc.into_any().unbind());
    }
    if let (Ok(v), Some(post)) = (&value, &e.post) {
        value = post.call1(py, (v,));
    }
    let fut = e.fut.bind(py);
    // A cancelled future refuses the result; that is expected.
    let _ = match value {
        Ok(v) => fut.call_method1(intern!(py, "set_result"), (v,)),
        Err(err) => fut.call_method1(intern!(py, "set_exception"), (err.into_value(py),)),
    };
}

/// Convert one part of a reply and gather it into the entry's list; None
/// (the future failed with the error) if it could not be converted: the
/// rest of that reply is then dropped as it comes.
fn gather(py: Python<'_>, mut e: Entry, part: crate::kernel::Reply) -> Option<Entry> {
    let inner = match part.downcast::<Part>() {
        Ok(p) => p.0,
        Err(_) => return Some(e),
    };
    let got = e.conv.apply(py, Ok(inner)).and_then(|v| {
        let acc = match &e.acc {
            Some(a) => a.clone_ref(py),
            None => {
                let a = PyList::empty(py).unbind();
                e.acc = Some(a.clone_ref(py));
                a
            }
        };
        acc.bind(py)
            .call_method1(intern!(py, "extend"), (v,))
            .map(|_| ())
    });
    match got {
        Ok(()) => Some(e),
        Err(err) => {
            let _ = e
                .fut
                .bind(py)
                .call_method1(intern!(py, "set_exception"), (err.into_value(py),));
            None
        }
    }
}

/// asyncio.get_running_loop, the iokernel._aio module, _aio.completer,
/// asyncio.Future.
type AioRefs = (Py<PyAny>, Py<PyModule>, Py<PyAny>, Py<PyAny>);
static AIO: PyOnceLock<AioRefs> = PyOnceLock::new();

impl Completer {
    /// The running loop's completer and a new future of that loop, for an
    /// asyncio call made in one native call: the completer is the one
    /// cached in `iokernel._aio._last` when that is this loop's, else the
    /// one `_aio.completer` finds or makes. The future is
    /// `asyncio.Future(loop=loop)` when `_last` says the loop's own
    /// `create_future` would make just that (its third item is then that
    /// call's keyword arguments, one dict reused for every future: the
    /// type has no vectorcall, so a keyword by name would cost a new dict
    /// per call); else `loop.create_future()`.
    ///
    /// The loop cached in `_last` is taken as the running one without
    /// asking `asyncio.get_running_loop()` when it is one of asyncio's own
    /// loops and its `_thread_id` (set by `run_forever`, cleared when it
    /// stops) is this thread: on Python 3.11 `get_running_loop()`, and
    /// `Future()` without a loop, each make a `getpid` system call (its
    /// fork check; ours is `_aio._forget_after_fork`), ~0.2 µs apiece on a
    /// virtual machine, twice per request.
    #[inline]
    pub fn running(py: Python<'_>) -> PyResult<(Bound<'_, Completer>, Bound<'_, PyAny>)> {
        let aio = AIO.get_or_try_init(py, || -> PyResult<_> {
            let asyncio = py.import("asyncio")?;
            let m = py.import("iokernel._aio")?;
            let completer = m.getattr("completer")?.unbind();
            Ok((
                asyncio.getattr("get_running_loop")?.unbind(),
                m.unbind(),
                completer,
                asyncio.getattr("Future")?.unbind(),
            ))
        })?;
        let last = aio.1.bind(py).getattr(intern!(py, "_last"))?;
        let mut last = last.cast_into::<PyTuple>()?;
        let cached = last.get_item(0)?;
        let lp = if last.get_item(3)?.is_truthy()? && runs_here(&cached)? {
            cached
        } else {
            aio.0.call0(py)?.into_bound(py)
        };
        if !last.get_item(0)?.is(&lp) {
            aio.2.bind(py).call1((&lp,))?; // makes and caches this loop's entry
            last = aio
                .1
                .bind(py)
                .getattr(intern!(py, "_last"))?
                .cast_into::<PyTuple>()?;
        }
        let comp = last.get_item(1)?.cast_into::<Completer>()?;
        let kwargs = last.get_item(2)?;
        let fut = if let Ok(kw) = kwargs.cast::<PyDict>() {
            future_of(aio.3.bind(py), kw)?
        } else {
            lp.call_method0(intern!(py, "create_future"))?
        };
        Ok((comp, fut))
    }

    /// Register a future (made by the caller's loop) under a fresh token.
    /// The completer holds no reference to the loop itself, so a loop that
    /// is dropped is not kept alive by a cycle through its reader callback.
    #[inline]
    pub fn register(&self, fut: Py<PyAny>, post: Option<Py<PyAny>>, conv: Conv) -> u64 {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                token,
                Entry {
                    fut,
                    post,
                    conv,
                    acc: None,
                },
            );
        token
    }

    /// Hold a request until the end of this loop turn (`cork::Cork::hold`).
    pub fn cork<B: Corked + 'static>(
        &self,
        fut: &Bound<'_, PyAny>,
        join: impl FnOnce(Option<&mut B>) -> Option<B>,
    ) {
        self.cork.hold(fut, join);
    }

    /// Hand what this turn holds to the kernel now (before a request that
    /// must not wait for the turn's end).
    pub fn uncork(&self) {
        self.cork.flush();
    }

    /// Forget a token whose request never reached the kernel.
    pub fn unregister(&self, token: u64) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token);
    }

    pub fn completion(&self, token: u64) -> Completion {
        Completion::queue(self.q.clone(), token)
    }

    /// A token of its own for a stream (`stream::ItemStream`): its wake-up
    /// markers come under it, each resolving the future `register_at` set.
    pub fn reserve(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Register `fut` under a reserved token (replacing any earlier one).
    pub fn register_at(&self, token: u64, fut: Py<PyAny>, conv: Conv) {
        let old = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                token,
                Entry {
                    fut,
                    post: None,
                    conv,
                    acc: None,
                },
            );
        drop(old); // outside the lock
    }

    /// The queue this loop drains (a stream wakes the loop through it).
    pub fn queue(&self) -> Arc<CompletionQueue> {
        self.q.clone()
    }
}

/// `(completer, future)` of the running loop for a call made from Python
/// code (`Completer::running`): no `getpid` on the way.
#[pyfunction]
pub fn running_call(py: Python<'_>) -> PyResult<(Bound<'_, Completer>, Bound<'_, PyAny>)> {
    Completer::running(py)
}

/// Whether `lp`, one of asyncio's own loops, is running in this thread:
/// `run_forever` keeps its thread's `threading.get_ident()` (on POSIX,
/// `pthread_self()`) in `_thread_id` while it runs, None otherwise.
#[inline]
fn runs_here(lp: &Bound<'_, PyAny>) -> PyResult<bool> {
    let tid = lp.getattr(intern!(lp.py(), "_thread_id"))?;
    if tid.is_none() {
        return Ok(false);
    }
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as u64;
    Ok(tid.extract::<u64>().is_ok_and(|t| t == me))
}

/// `asyncio.Future(**kwargs)`, `kwargs` being the loop's `{"loop": lp}`.
#[inline]
fn future_of<'py>(
    future: &Bound<'py, PyAny>,
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = future.py();
    // SAFETY: `future` (the type) is called with an empty tuple and a dict
    // of keyword arguments, both alive for the call; it returns a new
    // reference or NULL with an exception set (from_owned_ptr_or_err).
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyObject_Call(
                future.as_ptr(),
                PyTuple::empty(py).as_ptr(),
                kwargs.as_ptr(),
            ),
        )
    }
}

/// Log through Python's `logging` (logger "iokernel").
pub fn log_warning(py: Python<'_>, msg: &str) {
    let _ = py
        .import("logging")
        .and_then(|l| l.call_method1("getLogger", ("iokernel",)))
        .and_then(|lg| lg.call_method1("warning", ("%s", msg)));
}
