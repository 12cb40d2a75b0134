//! What `iokernel.pg.Record` is laid out as (`RecordObject`, `values`,
//! `desc`; the invariants are in `record`) and what it does: sequence and mapping access, `get`/`keys`/`values`/`items`,
//! comparison and hashing like the tuple of its values, and the repr
//! `<Record a=1 b='x'>`.
//!
//! The frequent paths (`r[i]`, `r["name"]`, `len`, `in`, iteration, `get`
//! with positional arguments) are plain C-API calls that raise by setting
//! the error indicator. The rest go through `shim`, which attaches pyo3
//! properly (so dropped references are released at once, not deferred) and
//! turns an error or a panic into a raised exception.

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;
use std::ptr::null_mut;

use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PySlice, PyString, PyTuple};

use std::ptr::addr_of_mut;

type Obj = *mut ffi::PyObject;

const BAD_INDEX: &CStr = c"Record indices must be integers, slices or column names";
const OUT_OF_RANGE: &CStr = c"Record index out of range";

/// The C layout of a Record: `values` has `ob_size` entries (kept here, with
/// its accessors, so that `record` uses this module and not the reverse).
#[repr(C)]
pub(super) struct RecordObject {
    pub(super) head: ffi::PyVarObject,
    pub(super) desc: *mut ffi::PyObject,
    pub(super) values: [*mut ffi::PyObject; 0],
}

/// The values of a Record.
///
/// # Safety
/// `obj` must be a live Record (its type checked by the caller or by
/// CPython's slot dispatch); the slice is valid while `obj` is.
pub(super) unsafe fn values<'a>(obj: *mut ffi::PyObject) -> &'a [*mut ffi::PyObject] {
    let r = obj.cast::<RecordObject>();
    let n = usize::try_from((*r).head.ob_size).unwrap_or(0);
    std::slice::from_raw_parts(addr_of_mut!((*r).values).cast::<*mut ffi::PyObject>(), n)
}

/// The shared `(names, index)` tuple of a Record (borrowed).
///
/// # Safety
/// As for `values`.
pub(super) unsafe fn desc(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    (*obj.cast::<RecordObject>()).desc
}

/// The slots `record::make_type` adds to the type.
pub(super) fn slots() -> Vec<ffi::PyType_Slot> {
    let slot = |slot: c_int, pfunc: *mut c_void| ffi::PyType_Slot { slot, pfunc };
    vec![
        slot(ffi::Py_sq_length, length as *mut c_void),
        slot(ffi::Py_mp_length, length as *mut c_void),
        slot(ffi::Py_sq_item, item as *mut c_void),
        slot(ffi::Py_sq_contains, contains as *mut c_void),
        slot(ffi::Py_mp_subscript, subscript as *mut c_void),
        slot(ffi::Py_tp_iter, iter as *mut c_void),
        slot(ffi::Py_tp_richcompare, richcompare as *mut c_void),
        slot(ffi::Py_tp_hash, hash as *mut c_void),
        slot(ffi::Py_tp_repr, repr as *mut c_void),
        slot(ffi::Py_tp_methods, methods() as *mut c_void),
    ]
}

/// The method table (kept by the type, so leaked once when the type is made).
fn methods() -> *mut ffi::PyMethodDef {
    let def = |name: &'static CStr, ml_meth, ml_flags, doc: &'static CStr| ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth,
        ml_flags,
        ml_doc: doc.as_ptr(),
    };
    let noargs = |f: ffi::PyCFunction| ffi::PyMethodDefPointer { PyCFunction: f };
    let get = ffi::PyMethodDefPointer {
        PyCFunctionWithKeywords: get,
    };
    let table = vec![
        def(
            c"get",
            get,
            ffi::METH_VARARGS | ffi::METH_KEYWORDS,
            c"get(key, default=None): the value of column `key`, or `default`.",
        ),
        def(
            c"keys",
            noargs(keys),
            ffi::METH_NOARGS,
            c"An iterator over the column names.",
        ),
        def(
            c"values",
            noargs(values_iter),
            ffi::METH_NOARGS,
            c"An iterator over the values.",
        ),
        def(
            c"items",
            noargs(items),
            ffi::METH_NOARGS,
            c"An iterator over (name, value) pairs.",
        ),
        ffi::PyMethodDef::zeroed(),
    ];
    Box::leak(table.into_boxed_slice()).as_mut_ptr()
}

/// Runs `f` for a C slot of `pg.Record` (`slot::guard`).
fn shim<R>(failed: R, f: impl FnOnce(Python<'_>) -> PyResult<R>) -> R {
    super::slot::guard("pg.Record", failed, f)
}

/// Sets `exc(msg)` as the current error; returns NULL for the caller.
unsafe fn raise(exc: Obj, msg: &CStr) -> Obj {
    ffi::PyErr_SetString(exc, msg.as_ptr());
    null_mut()
}

/// The position of column `key` (any object: only names are found), or
/// `Err(())` with the error set (an unhashable key).
unsafe fn lookup(obj: Obj, key: Obj) -> Result<Option<usize>, ()> {
    let index = ffi::PyTuple_GET_ITEM(desc(obj), 1);
    let pos = ffi::PyDict_GetItemWithError(index, key);
    if pos.is_null() {
        return if ffi::PyErr_Occurred().is_null() {
            Ok(None)
        } else {
            Err(())
        };
    }
    // The dict maps names to positions made by `Desc::new` (small ints).
    let i = usize::try_from(ffi::PyLong_AsSsize_t(pos)).ok();
    Ok(i.filter(|&i| i < values(obj).len()))
}

/// A new tuple of the values (for comparing, hashing and iterating as one).
unsafe fn as_tuple(obj: Obj) -> Obj {
    let vals = values(obj);
    let t = ffi::PyTuple_New(vals.len() as ffi::Py_ssize_t);
    if !t.is_null() {
        for (i, &v) in vals.iter().enumerate() {
            ffi::PyTuple_SET_ITEM(t, i as ffi::Py_ssize_t, ffi::Py_NewRef(v));
        }
    }
    t
}

unsafe extern "C" fn length(obj: Obj) -> ffi::Py_ssize_t {
    values(obj).len() as ffi::Py_ssize_t
}

/// `sq_item` (`PySequence_GetItem`; a negative index has been made positive).
unsafe extern "C" fn item(obj: Obj, i: ffi::Py_ssize_t) -> Obj {
    match usize::try_from(i).ok().and_then(|i| values(obj).get(i)) {
        Some(&v) => ffi::Py_NewRef(v),
        None => raise(ffi::PyExc_IndexError, OUT_OF_RANGE),
    }
}

/// `name in record`: whether the record has a column of that name (as
/// asyncpg's Record).
unsafe extern "C" fn contains(obj: Obj, key: Obj) -> c_int {
    match lookup(obj, key) {
        Ok(found) => c_int::from(found.is_some()),
        Err(()) => -1,
    }
}

/// `record[i]`, `record["name"]` and (`shim`) `record[a:b]` (a tuple) and
/// other index objects (`__index__`).
unsafe extern "C" fn subscript(obj: Obj, key: Obj) -> Obj {
    let vals = values(obj);
    if ffi::PyUnicode_Check(key) != 0 {
        return match lookup(obj, key) {
            Ok(Some(i)) => ffi::Py_NewRef(vals[i]),
            Ok(None) => {
                ffi::PyErr_SetObject(ffi::PyExc_KeyError, key);
                null_mut()
            }
            Err(()) => null_mut(),
        };
    }
    if ffi::PyLong_Check(key) != 0 {
        let i = ffi::PyLong_AsSsize_t(key);
        if i == -1 && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return raise(ffi::PyExc_TypeError, BAD_INDEX);
        }
        let j = if i < 0 { i + vals.len() as isize } else { i };
        return match usize::try_from(j).ok().and_then(|j| vals.get(j)) {
            Some(&v) => ffi::Py_NewRef(v),
            None => raise(ffi::PyExc_IndexError, OUT_OF_RANGE),
        };
    }
    shim(null_mut(), |py| {
        let key = Bound::from_borrowed_ptr(py, key);
        if let Ok(s) = key.cast::<PySlice>() {
            let ix = s.indices(vals.len() as isize)?;
            let picked = (0..ix.slicelength).map(|k| {
                let at = ix.start + k as isize * ix.step;
                Bound::from_borrowed_ptr(py, vals[at as usize])
            });
            return Ok(PyTuple::new(py, picked)?.into_ptr());
        }
        let i: isize = key
            .extract()
            .map_err(|_| PyTypeError::new_err(BAD_INDEX.to_str().unwrap_or_default()))?;
        let j = if i < 0 { i + vals.len() as isize } else { i };
        match usize::try_from(j).ok().and_then(|j| vals.get(j)) {
            Some(&v) => Ok(ffi::Py_NewRef(v)),
            None => Err(PyIndexError::new_err(
                OUT_OF_RANGE.to_str().unwrap_or_default(),
            )),
        }
    })
}

/// `iter(record)`: an iterator over (a tuple of) its values.
unsafe extern "C" fn iter(obj: Obj) -> Obj {
    let t = as_tuple(obj);
    if t.is_null() {
        return t;
    }
    let it = ffi::PyObject_GetIter(t);
    ffi::Py_DECREF(t);
    it
}

/// Compares like the tuple of its values (with Records and tuples), so
/// rows can be sorted and compared as asyncpg's can.
unsafe extern "C" fn richcompare(obj: Obj, other: Obj, op: c_int) -> Obj {
    shim(null_mut(), |py| {
        let other = Bound::from_borrowed_ptr(py, other);
        // The type is final: a Record is exactly of this Record's type.
        let theirs = if ffi::Py_TYPE(other.as_ptr()) == ffi::Py_TYPE(obj) {
            Bound::from_owned_ptr_or_err(py, as_tuple(other.as_ptr()))?
        } else if other.is_instance_of::<PyTuple>() {
            other
        } else {
            return Ok(py.NotImplemented().into_ptr());
        };
        let mine = Bound::from_owned_ptr_or_err(py, as_tuple(obj))?;
        let out = ffi::PyObject_RichCompare(mine.as_ptr(), theirs.as_ptr(), op);
        Ok(Bound::from_owned_ptr_or_err(py, out)?.into_ptr())
    })
}

/// The hash of the tuple of its values (a Record equals that tuple).
unsafe extern "C" fn hash(obj: Obj) -> ffi::Py_hash_t {
    shim(-1, |py| {
        Bound::from_owned_ptr_or_err(py, as_tuple(obj))?.hash()
    })
}

/// The column names (borrowed from the descriptor).
unsafe fn names<'py>(py: Python<'py>, obj: Obj) -> Bound<'py, PyTuple> {
    Bound::from_borrowed_ptr(py, ffi::PyTuple_GET_ITEM(desc(obj), 0)).cast_into_unchecked()
}

unsafe extern "C" fn repr(obj: Obj) -> Obj {
    shim(null_mut(), |py| {
        let mut parts = Vec::new();
        for (n, &v) in names(py, obj).iter().zip(values(obj)) {
            let v = Bound::from_borrowed_ptr(py, v);
            parts.push(format!("{}={}", n.str()?, v.repr()?));
        }
        Ok(PyString::new(py, &format!("<Record {}>", parts.join(" "))).into_ptr())
    })
}

/// `get(key, default=None)`; keyword arguments through `shim`.
unsafe extern "C" fn get(obj: Obj, args: Obj, kwargs: Obj) -> Obj {
    let n = ffi::PyTuple_GET_SIZE(args);
    if kwargs.is_null() && (n == 1 || n == 2) {
        return match lookup(obj, ffi::PyTuple_GET_ITEM(args, 0)) {
            Ok(Some(i)) => ffi::Py_NewRef(values(obj)[i]),
            Ok(None) if n == 2 => ffi::Py_NewRef(ffi::PyTuple_GET_ITEM(args, 1)),
            Ok(None) => ffi::Py_NewRef(ffi::Py_None()),
            Err(()) => null_mut(),
        };
    }
    shim(null_mut(), |py| {
        let args = Bound::from_borrowed_ptr(py, args).cast_into::<PyTuple>()?;
        if args.len() > 2 {
            return Err(PyTypeError::new_err(format!(
                "Record.get() takes at most 2 arguments ({} given)",
                args.len()
            )));
        }
        let mut key = args.get_item(0).ok();
        let mut default = args.get_item(1).ok();
        if !kwargs.is_null() {
            let kw = Bound::from_borrowed_ptr(py, kwargs).cast_into::<PyDict>()?;
            for (k, v) in kw.iter() {
                let slot = match k.extract::<&str>()? {
                    "key" => &mut key,
                    "default" => &mut default,
                    other => {
                        return Err(PyTypeError::new_err(format!(
                            "Record.get() got an unexpected keyword argument '{other}'"
                        )))
                    }
                };
                if slot.replace(v).is_some() {
                    return Err(PyTypeError::new_err(format!(
                        "Record.get() got multiple values for argument '{k}'"
                    )));
                }
            }
        }
        let key = key.ok_or_else(|| {
            PyTypeError::new_err("Record.get() missing 1 required positional argument: 'key'")
        })?;
        Ok(match lookup(obj, key.as_ptr()) {
            Ok(Some(i)) => ffi::Py_NewRef(values(obj)[i]),
            Ok(None) => default.map_or_else(|| py.None().into_ptr(), Bound::into_ptr),
            Err(()) => return Err(PyErr::fetch(py)),
        })
    })
}

unsafe extern "C" fn keys(obj: Obj, _: Obj) -> Obj {
    ffi::PyObject_GetIter(ffi::PyTuple_GET_ITEM(desc(obj), 0))
}

unsafe extern "C" fn values_iter(obj: Obj, _: Obj) -> Obj {
    iter(obj)
}

unsafe extern "C" fn items(obj: Obj, _: Obj) -> Obj {
    shim(null_mut(), |py| {
        let pairs = names(py, obj)
            .iter()
            .zip(values(obj))
            .map(|(n, &v)| PyTuple::new(py, [n, Bound::from_borrowed_ptr(py, v)]))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyTuple::new(py, pairs)?.try_iter()?.into_ptr())
    })
}
