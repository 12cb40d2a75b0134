//! `Call`: what an async method returns. The request was sent when the
//! method was called; a `Call` is only the way to wait for its reply.
//!
//! `await call` hands the event loop the future's own C iterator
//! (`__await__`), so awaiting costs what awaiting a bare future costs. A
//! `Call` also has `send`/`throw`/`close`, so `asyncio.create_task(call)`,
//! `TaskGroup.create_task` and `asyncio.iscoroutine` accept it as they accept
//! redis-py's and asyncpg's coroutines. This replaced a Python coroutine
//! wrapper (one coroutine object and one extra frame resumption per call).
//!
//! A `Call` takes part in garbage collection: a failed call's exception
//! holds a traceback whose frames may hold the `Call` (a local, or a task
//! made by `wait_for`), and that cycle must be collectable.

use std::sync::Mutex;

use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

#[pyclass(frozen, module = "iokernel._native")]
pub struct Call {
    fut: Py<PyAny>,
    /// The future's iterator, once a task drives us with send().
    it: Mutex<Option<Py<PyAny>>>,
}

impl Call {
    pub fn wrap<'py>(py: Python<'py>, fut: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(
            py,
            Call {
                fut: fut.unbind(),
                it: Mutex::new(None),
            },
        )?
        .into_any())
    }

    fn iter(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut g = self.it.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(it) = &*g {
            return Ok(it.clone_ref(py));
        }
        let it = await_of(py, &self.fut)?;
        *g = Some(it.clone_ref(py));
        Ok(it)
    }
}

/// `fut.__await__()`, through the type's `am_await` slot when it has one
/// (asyncio's C future does): no method lookup, no slot-wrapper call.
fn await_of(py: Python<'_>, fut: &Py<PyAny>) -> PyResult<Py<PyAny>> {
    // SAFETY: `fut` is a live object (we hold a reference and the GIL); its
    // type object and `tp_as_async` table live as long as it does, and the
    // slot is called with that object as the C API documents. A NULL result
    // means an exception is set, which `from_owned_ptr_or_err` takes.
    unsafe {
        let tp = pyo3::ffi::Py_TYPE(fut.as_ptr());
        let am = (*tp).tp_as_async;
        if !am.is_null() {
            if let Some(f) = (*am).am_await {
                return Bound::from_owned_ptr_or_err(py, f(fut.as_ptr())).map(Bound::unbind);
            }
        }
    }
    fut.call_method0(py, intern!(py, "__await__"))
}

#[pymethods]
impl Call {
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.fut)?;
        // The collector may run while this thread holds the lock (an
        // allocation inside iter()); skipping the visit then only means the
        // cycle is collected on a later pass.
        if let Ok(it) = self.it.try_lock() {
            visit.call(&*it)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        if let Ok(mut it) = self.it.try_lock() {
            it.take();
        }
    }

    fn __await__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        await_of(py, &self.fut)
    }

    fn send(&self, py: Python<'_>, value: Py<PyAny>) -> PyResult<Py<PyAny>> {
        self.iter(py)?
            .call_method1(py, intern!(py, "send"), (value,))
    }

    #[pyo3(signature = (typ, val = None, tb = None))]
    fn throw(
        &self,
        py: Python<'_>,
        typ: Py<PyAny>,
        val: Option<Py<PyAny>>,
        tb: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let it = self.iter(py)?;
        match (val, tb) {
            (None, None) => it.call_method1(py, intern!(py, "throw"), (typ,)),
            (v, None) => it.call_method1(py, intern!(py, "throw"), (typ, v)),
            (v, t) => it.call_method1(py, intern!(py, "throw"), (typ, v, t)),
        }
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(it) = self.it.lock().unwrap_or_else(|e| e.into_inner()).take() {
            it.call_method0(py, intern!(py, "close"))?;
        }
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<iokernel call {}>", self.fut.bind(py).repr()?))
    }
}
