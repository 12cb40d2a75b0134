//! `ItemStream`: the Python end of a kernel `Items` stream (rows of a big
//! result in batches, COPY data, notifications), for a blocking consumer or
//! an asyncio one. Each item is turned into Python by the `Conv` its
//! protocol binding chose; an error item raises (a subscription's gap
//! notice is a `ConnectionError`, and the stream goes on after it).
//!
//! Blocking: `next(timeout)` waits with the GIL released (Ctrl-C is let
//! through every 100 ms). Asyncio: `try_next()` takes what is there without
//! waiting; when it returns None the consumer `arm`s a future of its loop,
//! which the loop's completer resolves (with None) when the kernel pushes
//! the next item — one wake-up per burst, as for replies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyStopIteration, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::completer::Completer;
use super::conv::Conv;
use super::errors::to_pyerr;
use crate::kernel::items::Next;
use crate::kernel::{Items, KernelError, Reply};

#[pyclass(frozen, module = "iokernel._native")]
pub struct ItemStream {
    items: Arc<Items>,
    conv: Conv,
    /// The asyncio consumer's completer and the token its markers use.
    waker: Option<(Py<Completer>, u64)>,
}

fn woken(py: Python<'_>, _: Reply, _: usize) -> PyResult<Py<PyAny>> {
    Ok(py.None())
}

impl ItemStream {
    /// A stream for a blocking consumer (`completer` None) or for the loop
    /// of `completer`; `capacity` items may wait before the kernel stops
    /// reading.
    pub fn new(
        py: Python<'_>,
        capacity: usize,
        conv: Conv,
        completer: Option<&Bound<'_, Completer>>,
    ) -> (Arc<Items>, Self) {
        let (items, waker) = match completer {
            Some(c) => {
                let token = c.get().reserve();
                let items = Items::with_queue(capacity, c.get().queue(), token);
                (items, Some((c.clone().unbind(), token)))
            }
            None => (Items::new(capacity), None),
        };
        let _ = py;
        let s = ItemStream {
            items: items.clone(),
            conv,
            waker,
        };
        (items, s)
    }

    fn take(&self, py: Python<'_>, next: Next) -> PyResult<Option<Py<PyAny>>> {
        match next {
            Next::Item(outcome) => self.conv.apply(py, outcome).map(Some),
            Next::Ended => Err(PyStopIteration::new_err(())),
            Next::Empty => Ok(None),
        }
    }
}

impl ItemStream {
    /// Every item (each a list) joined into one list, waiting for each as
    /// `next` does, within `timeout` (+1 s: the kernel's deadline ends the
    /// stream first; this only guards against a kernel that stopped).
    pub fn collect(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let out = PyList::empty(py);
        let wait = timeout.map(|t| t + 1.0);
        loop {
            match self.next(py, wait) {
                Ok(Some(batch)) => {
                    out.call_method1(intern!(py, "extend"), (batch,))?;
                }
                Ok(None) => {
                    self.close();
                    return Err(to_pyerr(
                        py,
                        KernelError::timeout("the I/O kernel did not answer in time"),
                    ));
                }
                Err(e) if e.is_instance_of::<PyStopIteration>(py) => {
                    return Ok(out.into_any().unbind())
                }
                Err(e) => {
                    self.close();
                    return Err(e);
                }
            }
        }
    }
}

#[pymethods]
impl ItemStream {
    /// The next item, waiting up to `timeout` seconds (None: until one
    /// comes); None if nothing came in time. Raises StopIteration at the end.
    #[pyo3(signature = (timeout = None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let end = timeout
            .and_then(|t| Duration::try_from_secs_f64(t.max(0.0)).ok())
            .and_then(|d| Instant::now().checked_add(d));
        loop {
            let step = match end {
                Some(e) => e
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
                None => Duration::from_millis(100),
            };
            let items = self.items.clone();
            let got = py.detach(move || items.next(step));
            if !matches!(got, Next::Empty) {
                return self.take(py, got);
            }
            py.check_signals()?;
            if end.is_some_and(|e| Instant::now() >= e) {
                return Ok(None);
            }
        }
    }

    /// The next item if one is waiting, else None (StopIteration at the end).
    fn try_next(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.take(py, self.items.try_next())
    }

    /// Asyncio: resolve `fut` (with None) when the next item arrives. Call
    /// after `try_next` returned None.
    fn arm(&self, fut: Py<PyAny>) -> PyResult<()> {
        let Some((c, token)) = &self.waker else {
            return Err(PyTypeError::new_err(
                "this stream has no event loop: use next()",
            ));
        };
        // No marker can be lost: `try_next` found the stream empty and
        // re-armed its wake-up, and the loop (this thread) drains markers
        // only after this returns.
        c.get().register_at(*token, fut, Conv::new(woken, 0));
        Ok(())
    }

    /// Stop: items not taken are dropped; the kernel no longer waits for
    /// room (what is still to come is read and discarded).
    fn close(&self) {
        self.items.close();
        if let Some((c, token)) = &self.waker {
            c.get().unregister(*token);
        }
    }

    /// Items waiting to be taken.
    fn __len__(&self) -> usize {
        self.items.len()
    }
}
