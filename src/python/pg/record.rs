//! `iokernel.pg.Record`: a row that behaves like a tuple (index, slice,
//! length, iteration, equality with tuples) and like a read-only mapping by
//! column name (`r["name"]`, `get`, `keys`, `values`, `items`, `"name" in r`),
//! as asyncpg's Record does. This file is the object itself (making one, the
//! type, the collector's view); `record_methods` is its C layout with the
//! accessors, and its behaviour (this module uses that one, not the reverse).
//!
//! One allocation per row, like a tuple: the variable-size object header
//! (`ob_size` = number of values), one pointer to the result's shared
//! descriptor (`Desc`: a tuple `(names, index)`, the column names and a
//! name → position dict), then the values inline. A 6-column row is
//! 32 + 6 × 8 = 80 bytes + the collector's 16-byte header (asyncpg's: 104;
//! the former pyo3 object holding a separate values tuple: 152, see
//! tests/integration/test_pg_record.py). pyo3 cannot declare a variable-size
//! class, so the type is made with `PyType_FromSpec` (basicsize 32,
//! itemsize 8) and its slots are written here against the C API.
//!
//! Invariants the unsafe code relies on:
//! - a Record is only made by `Desc::record`; `desc` is set before anything
//!   else and `ob_size` counts the slots filled so far, so every slot below
//!   `ob_size` holds an owned, non-NULL reference, even in a Record dropped
//!   half-built after a decoding error;
//! - nothing changes after `Desc::record` returns (no setters, no
//!   `tp_clear`): as for a tuple, a reference cycle through a Record always
//!   passes a mutable object (a jsonb dict or list) that the collector
//!   clears instead, so readers never meet a cleared slot;
//! - `desc` is always a tuple `(tuple of str, dict of str → int)` made by
//!   `Desc::new`; positions read from the dict are still checked against
//!   `ob_size` (a composite value may carry fewer fields than its type);
//! - a Record holding no value of a collected type (ints, str, datetimes...)
//!   is never tracked by the collector: it can be in no cycle (its values
//!   cannot change), so collections skip it (tuples are untracked likewise).
//!   Deep nesting is bounded by PostgreSQL's type nesting (a composite cannot
//!   contain itself), so deallocation needs no trashcan.

use std::ffi::c_void;
use std::os::raw::c_int;
use std::ptr::addr_of_mut;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

use super::record_methods::{self, values, RecordObject};

static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The `Record` type, made once (by the module's init, `add_type`).
pub(super) fn record_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    TYPE.get_or_try_init(py, || make_type(py))
        .map(|t| t.bind(py))
}

/// Adds `Record` to the native module.
pub fn add_type(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Record", record_type(m.py())?)
}

/// What the Records of one result share: the column names and the name →
/// position map (the first of duplicate names wins, as in asyncpg).
pub struct Desc<'py> {
    obj: Bound<'py, PyTuple>,
    ty: *mut ffi::PyTypeObject,
}

impl<'py> Desc<'py> {
    pub fn new<'a>(
        py: Python<'py>,
        names: impl ExactSizeIterator<Item = &'a str>,
    ) -> PyResult<Self> {
        let names = PyTuple::new(py, names)?;
        let index = PyDict::new(py);
        for (i, n) in names.iter().enumerate().rev() {
            index.set_item(n, i)?;
        }
        let ty = record_type(py)?.as_type_ptr();
        Ok(Desc {
            obj: PyTuple::new(py, [names.into_any(), index.into_any()])?,
            ty,
        })
    }

    /// A Record of up to `n` values, each decoded straight into its slot
    /// (no intermediate tuple or vector). An error drops the half-built
    /// Record and is returned.
    pub fn record(
        &self,
        n: usize,
        values: impl Iterator<Item = PyResult<Py<PyAny>>>,
    ) -> PyResult<Py<PyAny>> {
        let py = self.obj.py();
        let size = ffi::Py_ssize_t::try_from(n)
            .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("too many values"))?;
        // SAFETY: `self.ty` is the Record type (a GC type of basicsize 32 and
        // itemsize 8), so the allocation has room for `n` value slots after
        // `desc`. The object is owned by `rec` from the moment its header
        // and `desc` are valid, with `ob_size` = 0, so dropping it at any
        // point frees exactly the slots filled (see the invariants above).
        // It stays untracked until complete, so the collector never sees it
        // half-built.
        unsafe {
            let obj: *mut RecordObject = ffi::PyObject_GC_NewVar(self.ty, size);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            (*obj).head.ob_size = 0;
            (*obj).desc = self.obj.clone().into_ptr();
            let rec = Bound::from_owned_ptr(py, obj.cast()).unbind();
            let slots = addr_of_mut!((*obj).values).cast::<*mut ffi::PyObject>();
            let mut collected = false;
            for (i, v) in values.take(n).enumerate() {
                let v = v?.into_ptr();
                collected |= ffi::PyType_IS_GC(ffi::Py_TYPE(v)) != 0;
                slots.add(i).write(v);
                (*obj).head.ob_size = i as ffi::Py_ssize_t + 1;
            }
            if collected {
                ffi::PyObject_GC_Track(obj.cast());
            }
            Ok(rec)
        }
    }
}

/// A list of the `n` items of `items` (Records), made at its final size
/// (no vector of them first, no regrowth).
pub fn list<'py>(
    py: Python<'py>,
    n: usize,
    items: impl Iterator<Item = PyResult<Py<PyAny>>>,
) -> PyResult<Bound<'py, PyList>> {
    let size = ffi::Py_ssize_t::try_from(n)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("too many rows"))?;
    // SAFETY: PyList_New gives a list of `n` NULL slots, each set at most
    // once. Until all are set the list is untracked, so no Python code the
    // decoders run (a custom codec) can reach it through the collector; a
    // list with NULL slots left is only dropped (list_dealloc skips them)
    // or cut to its filled part, never handed out.
    unsafe {
        let list: Bound<'py, PyList> =
            Bound::from_owned_ptr_or_err(py, ffi::PyList_New(size))?.cast_into_unchecked();
        ffi::PyObject_GC_UnTrack(list.as_ptr().cast());
        let mut filled = 0;
        for (i, item) in items.take(n).enumerate() {
            ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item?.into_ptr());
            filled = i + 1;
        }
        if filled < n {
            return Ok(list.get_slice(0, filled));
        }
        ffi::PyObject_GC_Track(list.as_ptr().cast());
        Ok(list)
    }
}

/// Frees a Record: untracks it first (the collector must not visit it
/// while its references go), then drops its values, its descriptor and
/// the reference every instance of a heap type holds on its type.
unsafe extern "C" fn dealloc(obj: *mut ffi::PyObject) {
    let ty = ffi::Py_TYPE(obj);
    ffi::PyObject_GC_UnTrack(obj.cast());
    for &v in values(obj) {
        ffi::Py_DECREF(v);
    }
    ffi::Py_XDECREF((*obj.cast::<RecordObject>()).desc);
    ffi::PyObject_GC_Del(obj.cast());
    ffi::Py_DECREF(ty.cast());
}

/// The collector's view: the type (heap types must report it), the
/// descriptor and every value. No `tp_clear` (see the invariants).
unsafe extern "C" fn traverse(
    obj: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    let d = (*obj.cast::<RecordObject>()).desc;
    for p in [ffi::Py_TYPE(obj).cast(), d]
        .into_iter()
        .chain(values(obj).iter().copied())
    {
        if !p.is_null() {
            let rc = visit(p, arg);
            if rc != 0 {
                return rc;
            }
        }
    }
    0
}

fn make_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    let slot = |slot: c_int, pfunc: *mut c_void| ffi::PyType_Slot { slot, pfunc };
    let mut slots = vec![
        slot(ffi::Py_tp_dealloc, dealloc as *mut c_void),
        slot(ffi::Py_tp_traverse, traverse as *mut c_void),
        slot(
            ffi::Py_tp_doc,
            c"A row: a tuple of its values that is also a read-only mapping by column name."
                .as_ptr() as *mut c_void,
        ),
    ];
    slots.extend(record_methods::slots());
    slots.push(ffi::PyType_Slot::default());
    let basicsize = std::mem::size_of::<RecordObject>();
    let itemsize = std::mem::size_of::<*mut ffi::PyObject>();
    let mut spec = ffi::PyType_Spec {
        // Kept by the type (tp_name), hence a static string.
        name: c"iokernel.pg.Record".as_ptr(),
        basicsize: basicsize as c_int,
        itemsize: itemsize as c_int,
        // Not subclassable and no Python constructor, as before: Records
        // come only from results.
        flags: (ffi::Py_TPFLAGS_DEFAULT
            | ffi::Py_TPFLAGS_HAVE_GC
            | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION
            | ffi::Py_TPFLAGS_IMMUTABLETYPE) as std::os::raw::c_uint,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: the spec and its slots are valid for the call (CPython copies
    // them); the name and the method table it keeps are 'static.
    unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&mut spec))
            .map(|t| t.cast_into_unchecked::<PyType>().unbind())
    }
}
