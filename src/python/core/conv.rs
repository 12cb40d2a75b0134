//! `Conv`: how one reply becomes a Python object.
//!
//! The kernel hands back an opaque `Reply` whose concrete type only the
//! protocol that built it knows. So the protocol binding picks the
//! conversion when it submits the request (a plain function plus one word
//! of argument: a flag, a column index) and it travels with the request —
//! in the completer's pending entry, or on the blocking caller's stack.
//! Whoever picks the reply up calls it; nothing here names a protocol.
//!
//! A `Conv` is two words, `Copy`, and costs one indirect call per reply
//! (the `match` over protocol variants it replaced cost about the same).

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use super::errors::to_pyerr;
use crate::kernel::{Outcome, Reply};

/// A protocol binding's conversion of its own replies; the `usize` is the
/// argument the binding chose for this request.
pub type ConvFn = for<'py> fn(Python<'py>, Reply, usize) -> PyResult<Py<PyAny>>;

#[derive(Clone, Copy)]
pub struct Conv {
    f: ConvFn,
    arg: usize,
}

impl Conv {
    pub const fn new(f: ConvFn, arg: usize) -> Self {
        Conv { f, arg }
    }

    /// A kernel error raises its iokernel exception; a reply goes through
    /// the binding's function.
    #[inline]
    pub fn apply(self, py: Python<'_>, outcome: Outcome) -> PyResult<Py<PyAny>> {
        match outcome {
            Ok(reply) => (self.f)(py, reply, self.arg),
            Err(e) => Err(to_pyerr(py, e)),
        }
    }
}

/// A dedicated connection's id (the reply to a lease, any protocol).
pub const LEASE: Conv = Conv::new(lease_id, 0);

fn lease_id(py: Python<'_>, reply: Reply, _: usize) -> PyResult<Py<PyAny>> {
    let id = downcast::<u64>(reply)?;
    Ok((*id).into_pyobject(py)?.into_any().unbind())
}

/// The reply as the type its protocol builds; anything else is a bug in
/// iokernel, not in the caller's code, and the error says so.
#[inline]
pub fn downcast<T: 'static>(reply: Reply) -> PyResult<Box<T>> {
    reply.downcast::<T>().map_err(|_| mismatch())
}

fn mismatch() -> PyErr {
    PyOSError::new_err(
        "iokernel internal error: a reply arrived in an unexpected shape; please report it",
    )
}
