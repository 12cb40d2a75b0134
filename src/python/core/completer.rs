//! The asyncio side of completion: one `Completer` per event loop.
//!
//! A request submitted from a coroutine registers its future here under a
//! token and hands the kernel a `Completion` for that token. The loop watches
//! `fileno()` (an eventfd) with `add_reader`; `drain()` runs once per wake-up
//! and resolves every ready future in one pass with one GIL acquisition —
//! the Python objects are built here, never in the kernel.
//!
//! A cancelled future stays registered until its reply arrives; the reply is
//! then dropped (the kernel still consumed it from the wire, so nothing
//! shifts onto other callers).
//!
//! The pending futures (and their post-processing callables) are visible to
//! the garbage collector, so a cycle through a future's callbacks back to
//! the completer can be collected.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyOSError;

fn mismatch() -> PyErr {
    // A bug in iokernel, not in the caller's code: say so plainly.
    PyOSError::new_err(
        "iokernel internal error: a reply arrived in an unexpected shape; please report it",
    )
}
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

use super::errors::{response_error, to_pyerr};
use crate::codec::resp::Frame;
use crate::kernel::{runtime, Completion, CompletionQueue, Outcome};
use crate::protocols::redis::Frames;
use crate::python::redis::convert::frame_to_py;

/// How to turn a reply into a Python value.
#[derive(Clone, Copy)]
pub enum Conv {
    /// One Redis frame; error frames raise.
    One { decode: bool },
    /// A list of Redis frames; error frames become exception instances.
    Many { decode: bool },
    /// A dedicated-connection id.
    Lease,
    /// A PostgreSQL result, shaped (`pg::ROWS`, `ROW`, `VALUE`, `STATUS`).
    Pg { shape: u8, column: usize },
}

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
}

#[pyclass(frozen, weakref, module = "iokernel._native")]
pub struct Completer {
    q: Arc<CompletionQueue>,
    pending: Mutex<HashMap<u64, Entry, Tokens>>,
    next: AtomicU64,
    #[pyo3(get)]
    generation: u64,
}

pub fn convert(py: Python<'_>, outcome: Outcome, conv: Conv) -> PyResult<Py<PyAny>> {
    let reply = outcome.map_err(|e| to_pyerr(py, e))?;
    match conv {
        Conv::One { decode } => {
            let f = reply.downcast::<Frame>().map_err(|_| mismatch())?;
            match *f {
                Frame::Error(m) | Frame::BulkError(m) => {
                    Err(PyErr::from_value(response_error(py, &m)?.into_bound(py)))
                }
                f => frame_to_py(py, f, decode),
            }
        }
        Conv::Many { decode } => {
            let fs = reply.downcast::<Frames>().map_err(|_| mismatch())?;
            let mut out = Vec::with_capacity(fs.0.len());
            for f in fs.0 {
                out.push(frame_to_py(py, f, decode)?);
            }
            Ok(pyo3::types::PyList::new(py, out)?.into_any().unbind())
        }
        Conv::Pg { shape, column } => crate::python::pg::convert_result(py, reply, shape, column),
        Conv::Lease => {
            let id = reply.downcast::<u64>().map_err(|_| mismatch())?;
            Ok((*id).into_pyobject(py)?.into_any().unbind())
        }
    }
}

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
    fn drain(&self, py: Python<'_>) -> usize {
        let items = self.q.drain();
        if items.is_empty() {
            return 0;
        }
        if let Some(msg) = self.q.take_alert() {
            log_warning(py, &msg);
        }
        let work: Vec<(Option<Entry>, Outcome)> = {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            items
                .into_iter()
                .map(|d| {
                    d.picked_up();
                    (map.remove(&d.token), d.outcome)
                })
                .collect()
        };
        let n = work.len();
        for (entry, outcome) in work {
            let Some(e) = entry else { continue };
            let mut value = convert(py, outcome, e.conv);
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
        n
    }
}

impl Completer {
    /// Register a future (made by the caller's loop) under a fresh token.
    /// The completer holds no reference to the loop itself, so a loop that
    /// is dropped is not kept alive by a cycle through its reader callback.
    pub fn register(&self, fut: Py<PyAny>, post: Option<Py<PyAny>>, conv: Conv) -> u64 {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, Entry { fut, post, conv });
        token
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
}

/// Log through Python's `logging` (logger "iokernel").
pub fn log_warning(py: Python<'_>, msg: &str) {
    let _ = py
        .import("logging")
        .and_then(|l| l.call_method1("getLogger", ("iokernel",)))
        .and_then(|lg| lg.call_method1("warning", ("%s", msg)));
}
