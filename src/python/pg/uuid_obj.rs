//! `iokernel.pg.UUID`: what uuid results decode to. A subclass of the
//! standard `uuid.UUID` (`isinstance(u, uuid.UUID)` holds; `==`, hashing,
//! ordering, `str`, `repr`, `int`, `bytes`, `hex`, `version`, `urn`... are
//! the standard ones) that keeps its 16 bytes inline and makes `int` only
//! when asked, as asyncpg's UUID does. The standard class holds a separate
//! 128-bit int object per value (56 + 44 bytes a value on 3.11); this one
//! is 56 bytes, one allocation.
//!
//! Layout: the base's own (object header, its `int` and `is_safe` slots,
//! `__weakref__`), then the bytes. `int` and `is_safe` here are read-only
//! computed attributes, so the base's slots stay NULL (only
//! `uuid.UUID.int.__set__(u, x)` could fill them; dealloc releases them).
//! Holding no references, the type is not collected (no collector header)
//! where the base keeps its weak-reference list in a plain slot (3.10,
//! 3.11); on newer Pythons, whose base keeps it before the header, it is a
//! collected type like the base, untracked from birth.
//!
//! Pickling gives a plain `uuid.UUID` (readable without iokernel); copying
//! returns the object itself (it is immutable). Calling the type takes
//! `uuid.UUID`'s arguments.

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;
use std::ptr::null_mut;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple, PyType};

type Obj = *mut ffi::PyObject;

/// The type and what its instances' layout needs, made once.
struct Info {
    ty: Py<PyType>,
    /// Where the 16 bytes are (the base's basicsize).
    data: usize,
    /// Whether this type is collected (see the module comment).
    gc: bool,
}

static INFO: PyOnceLock<Info> = PyOnceLock::new();
/// The base's object slots (`int`, `is_safe`), released by `dealloc`.
static BASE_SLOTS: OnceLock<Vec<usize>> = OnceLock::new();
static STD_UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SAFE_UNKNOWN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn info(py: Python<'_>) -> PyResult<&Info> {
    INFO.get_or_try_init(py, || make_type(py))
}

/// `uuid.UUID`.
pub fn std_uuid(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    STD_UUID.import(py, "uuid", "UUID")
}

/// The `iokernel.pg.UUID` type.
pub fn uuid_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    Ok(info(py)?.ty.bind(py))
}

/// Adds `UUID` to the native module.
pub fn add_type(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("UUID", uuid_type(m.py())?)
}

/// A new `iokernel.pg.UUID` holding `b`.
pub fn new_uuid(py: Python<'_>, b: [u8; 16]) -> PyResult<Py<PyAny>> {
    let i = info(py)?;
    // SAFETY: `i.ty` is the UUID type; its tp_alloc (PyType_GenericAlloc)
    // returns a zeroed object of its basicsize (`data` + 16) or NULL with
    // an exception set. The object has no references to visit, so a
    // collected one is untracked at once.
    unsafe {
        let t = i.ty.bind(py).as_type_ptr();
        let alloc = (*t).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
        let obj = alloc(t, 0);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        if i.gc {
            ffi::PyObject_GC_UnTrack(obj.cast());
        }
        obj.cast::<u8>()
            .add(i.data)
            .cast::<[u8; 16]>()
            .write_unaligned(b);
        Ok(Bound::from_owned_ptr(py, obj).unbind())
    }
}

/// The 16 bytes of `v` if it is an `iokernel.pg.UUID`.
pub fn bytes_of(v: &Bound<'_, PyAny>) -> Option<[u8; 16]> {
    let i = INFO.get(v.py())?;
    if !v.get_type().is(i.ty.bind(v.py())) {
        return None;
    }
    // SAFETY: `v` is an instance of the type, whose layout has the bytes
    // at `data`.
    Some(unsafe { read(v.as_ptr(), i.data) })
}

unsafe fn read(obj: Obj, data: usize) -> [u8; 16] {
    obj.cast::<u8>()
        .add(data)
        .cast::<[u8; 16]>()
        .read_unaligned()
}

/// The bytes of `obj`, which CPython's slot dispatch guarantees is one of
/// ours (the type is final, so no subclass can change the layout).
unsafe fn data(py: Python<'_>, obj: Obj) -> PyResult<[u8; 16]> {
    Ok(read(obj, info(py)?.data))
}

/// Runs `f` for a C slot of `pg.UUID` (`slot::guard`).
fn shim<R>(failed: R, f: impl FnOnce(Python<'_>) -> PyResult<R>) -> R {
    super::slot::guard("pg.UUID", failed, f)
}

fn hex(b: &[u8; 16], dashes: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if dashes && matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(x >> 4)] as char);
        s.push(HEX[usize::from(x & 15)] as char);
    }
    s
}

unsafe extern "C" fn str(obj: Obj) -> Obj {
    shim(null_mut(), |py| {
        Ok(PyString::new(py, &hex(&data(py, obj)?, true)).into_ptr())
    })
}

/// `hash(self.int)`, as `uuid.UUID.__hash__`, without making the int: a
/// non-negative int hashes to itself modulo 2**61 - 1 (64-bit CPython;
/// `sys.hash_info.modulus`, checked when the type is made).
unsafe extern "C" fn hash(obj: Obj) -> ffi::Py_hash_t {
    shim(-1, |py| {
        let v = u128::from_be_bytes(data(py, obj)?) % HASH_MODULUS;
        Ok(v as ffi::Py_hash_t)
    })
}

const HASH_MODULUS: u128 = (1 << 61) - 1;

/// As `uuid.UUID`'s comparisons: by `int` against any `uuid.UUID`,
/// NotImplemented against anything else.
unsafe extern "C" fn richcompare(a: Obj, b: Obj, op: c_int) -> Obj {
    shim(null_mut(), |py| {
        let a = Bound::from_borrowed_ptr(py, a);
        let b = Bound::from_borrowed_ptr(py, b);
        let Some(x) = bytes_of(&a) else {
            return Ok(py.NotImplemented().into_ptr());
        };
        let Some(y) = bytes_of(&b) else {
            if !b.is_instance(std_uuid(py)?)? {
                return Ok(py.NotImplemented().into_ptr());
            }
            let x = u128::from_be_bytes(x).into_pyobject(py)?;
            let y = b.getattr(intern!(py, "int"))?;
            return Ok(x.rich_compare(y, compare_op(op)?)?.into_ptr());
        };
        let o = x.cmp(&y);
        let r = match op {
            ffi::Py_LT => o.is_lt(),
            ffi::Py_LE => o.is_le(),
            ffi::Py_EQ => o.is_eq(),
            ffi::Py_NE => o.is_ne(),
            ffi::Py_GT => o.is_gt(),
            _ => o.is_ge(),
        };
        Ok(pyo3::types::PyBool::new(py, r)
            .to_owned()
            .into_any()
            .into_ptr())
    })
}

fn compare_op(op: c_int) -> PyResult<pyo3::basic::CompareOp> {
    use pyo3::basic::CompareOp::*;
    Ok(match op {
        ffi::Py_LT => Lt,
        ffi::Py_LE => Le,
        ffi::Py_EQ => Eq,
        ffi::Py_NE => Ne,
        ffi::Py_GT => Gt,
        ffi::Py_GE => Ge,
        _ => return Err(pyo3::exceptions::PySystemError::new_err("bad comparison")),
    })
}

unsafe extern "C" fn get_int(obj: Obj, _: *mut c_void) -> Obj {
    shim(null_mut(), |py| {
        Ok(u128::from_be_bytes(data(py, obj)?)
            .into_pyobject(py)?
            .into_ptr())
    })
}

unsafe extern "C" fn get_bytes(obj: Obj, _: *mut c_void) -> Obj {
    shim(null_mut(), |py| {
        Ok(PyBytes::new(py, &data(py, obj)?).into_ptr())
    })
}

unsafe extern "C" fn get_hex(obj: Obj, _: *mut c_void) -> Obj {
    shim(null_mut(), |py| {
        Ok(PyString::new(py, &hex(&data(py, obj)?, false)).into_ptr())
    })
}

/// `SafeUUID.unknown`, what `uuid.UUID(bytes=...)` has.
unsafe extern "C" fn get_is_safe(_: Obj, _: *mut c_void) -> Obj {
    shim(null_mut(), |py| {
        let u = SAFE_UNKNOWN.get_or_try_init(py, || {
            py.import("uuid")?
                .getattr("SafeUUID")?
                .getattr("unknown")
                .map(Bound::unbind)
        })?;
        Ok(u.clone_ref(py).into_ptr())
    })
}

/// `(uuid.UUID, (str(self),))`: unpickles as a standard UUID.
unsafe extern "C" fn reduce(obj: Obj, _: Obj) -> Obj {
    shim(null_mut(), |py| {
        let s = PyString::new(py, &hex(&data(py, obj)?, true));
        let args = PyTuple::new(py, [s])?;
        Ok(PyTuple::new(py, [std_uuid(py)?.clone().into_any(), args.into_any()])?.into_ptr())
    })
}

/// `copy.copy` and `copy.deepcopy`: the object itself (immutable).
unsafe extern "C" fn same(obj: Obj, _: Obj) -> Obj {
    ffi::Py_INCREF(obj);
    obj
}

/// `iokernel.pg.UUID(...)`: `uuid.UUID(...)`'s arguments, its bytes.
unsafe extern "C" fn new(_: *mut ffi::PyTypeObject, args: Obj, kwargs: Obj) -> Obj {
    shim(null_mut(), |py| {
        let f = std_uuid(py)?.as_ptr();
        let u = Bound::from_owned_ptr_or_err(py, ffi::PyObject_Call(f, args, kwargs))?;
        let b = u.getattr(intern!(py, "bytes"))?;
        let b: [u8; 16] = b
            .cast::<PyBytes>()?
            .as_bytes()
            .try_into()
            .map_err(|_| pyo3::exceptions::PyValueError::new_err("uuid bytes not 16 long"))?;
        Ok(new_uuid(py, b)?.into_ptr())
    })
}

/// Everything was done by `new` (`uuid.UUID.__init__` would try to set
/// the read-only `int`).
unsafe extern "C" fn init(_: Obj, _: Obj, _: Obj) -> c_int {
    0
}

/// The non-collected variant's dealloc: weak references, the base's slots
/// (NULL unless set through the base's descriptors), the memory, and the
/// reference every instance of a heap type holds on its type.
unsafe extern "C" fn dealloc(obj: Obj) {
    let ty = ffi::Py_TYPE(obj);
    let off = (*ty).tp_weaklistoffset;
    if off > 0 && !(*obj.cast::<u8>().offset(off).cast::<Obj>()).is_null() {
        ffi::PyObject_ClearWeakRefs(obj);
    }
    for &s in BASE_SLOTS.get().map_or(&[][..], Vec::as_slice) {
        let p = obj.cast::<u8>().add(s).cast::<Obj>();
        let v = *p;
        *p = null_mut();
        ffi::Py_XDECREF(v);
    }
    ffi::PyObject_Free(obj.cast());
    ffi::Py_DECREF(ty.cast());
}

unsafe extern "C" fn traverse(_: Obj, _: ffi::visitproc, _: *mut c_void) -> c_int {
    0
}

fn make_type(py: Python<'_>) -> PyResult<Info> {
    let hash_mod: u128 = py
        .import("sys")?
        .getattr("hash_info")?
        .getattr("modulus")?
        .extract()?;
    if hash_mod != HASH_MODULUS {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "iokernel.pg.UUID needs 64-bit CPython's hash modulus",
        ));
    }
    let base = std_uuid(py)?;
    let bt = base.as_type_ptr();
    // SAFETY: reading the base type's fields; its member table (a heap
    // type's, made by `class UUID: __slots__ = ...`) ends with a NULL name.
    let (data, slots, weak) = unsafe {
        let mut slots = Vec::new();
        let mut m = (*bt).tp_members;
        while !m.is_null() && !(*m).name.is_null() {
            if (*m).type_code == ffi::Py_T_OBJECT_EX || (*m).type_code == 6 {
                slots.push(usize::try_from((*m).offset).unwrap_or(0));
            }
            m = m.add(1);
        }
        let data = usize::try_from((*bt).tp_basicsize).unwrap_or(0);
        (data, slots, (*bt).tp_weaklistoffset)
    };
    let gc = weak <= 0;
    let _ = BASE_SLOTS.set(slots);
    let slot = |slot: c_int, pfunc: *mut c_void| ffi::PyType_Slot { slot, pfunc };
    let mut s = vec![
        slot(ffi::Py_tp_hash, hash as *mut c_void),
        slot(ffi::Py_tp_richcompare, richcompare as *mut c_void),
        slot(ffi::Py_tp_str, str as *mut c_void),
        slot(ffi::Py_tp_new, new as *mut c_void),
        slot(ffi::Py_tp_init, init as *mut c_void),
        slot(ffi::Py_tp_methods, methods() as *mut c_void),
        slot(ffi::Py_tp_getset, getset() as *mut c_void),
        slot(
            ffi::Py_tp_doc,
            c"A uuid.UUID keeping its 16 bytes inline (what uuid results are).".as_ptr()
                as *mut c_void,
        ),
    ];
    if !gc {
        // A traverse function keeps the collected flag from being
        // inherited; with it, the type's own dealloc and plain free.
        s.push(slot(ffi::Py_tp_traverse, traverse as *mut c_void));
        s.push(slot(ffi::Py_tp_dealloc, dealloc as *mut c_void));
        s.push(slot(ffi::Py_tp_free, ffi::PyObject_Free as *mut c_void));
    }
    s.push(ffi::PyType_Slot::default());
    let mut spec = ffi::PyType_Spec {
        // Kept by the type (tp_name), hence a static string.
        name: c"iokernel.pg.UUID".as_ptr(),
        basicsize: c_int::try_from(data + 16)
            .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("uuid.UUID too big"))?,
        itemsize: 0,
        // Final: `bytes_of` and the slots rely on the exact layout.
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_IMMUTABLETYPE) as std::os::raw::c_uint,
        slots: s.as_mut_ptr(),
    };
    // SAFETY: the spec and its slots are valid for the call (CPython copies
    // them); the name and the tables it keeps are 'static; the base is a
    // live type.
    let ty = unsafe {
        let bases = PyTuple::new(py, [base])?;
        Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpecWithBases(&mut spec, bases.as_ptr()))?
            .cast_into_unchecked::<PyType>()
    };
    // SAFETY: reading the new type's flags.
    let is_gc = unsafe { ffi::PyType_IS_GC(ty.as_type_ptr()) != 0 };
    if is_gc != gc {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "iokernel.pg.UUID: unexpected collector flag",
        ));
    }
    Ok(Info {
        ty: ty.unbind(),
        data,
        gc,
    })
}

/// The method table (kept by the type, so leaked once when it is made).
fn methods() -> *mut ffi::PyMethodDef {
    let def =
        |name: &'static CStr, f: ffi::PyCFunction, flags, doc: &'static CStr| ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: f },
            ml_flags: flags,
            ml_doc: doc.as_ptr(),
        };
    let table = vec![
        def(
            c"__reduce__",
            reduce,
            ffi::METH_NOARGS,
            c"Pickles as a uuid.UUID.",
        ),
        def(
            c"__copy__",
            same,
            ffi::METH_NOARGS,
            c"The UUID itself (immutable).",
        ),
        def(
            c"__deepcopy__",
            same,
            ffi::METH_O,
            c"The UUID itself (immutable).",
        ),
        ffi::PyMethodDef::zeroed(),
    ];
    Box::leak(table.into_boxed_slice()).as_mut_ptr()
}

/// The attribute table (kept by the type, so leaked once).
fn getset() -> *mut ffi::PyGetSetDef {
    let def = |name: &'static CStr, get: ffi::getter, doc: &'static CStr| ffi::PyGetSetDef {
        name: name.as_ptr(),
        get: Some(get),
        set: None,
        doc: doc.as_ptr(),
        closure: null_mut(),
    };
    let table = vec![
        def(
            c"int",
            get_int,
            c"The UUID as a 128-bit integer (made on each read).",
        ),
        def(c"bytes", get_bytes, c"The UUID as 16 bytes (big-endian)."),
        def(c"hex", get_hex, c"The UUID as 32 lowercase hex digits."),
        def(
            c"is_safe",
            get_is_safe,
            c"SafeUUID.unknown, as for uuid.UUID(bytes=...).",
        ),
        ffi::PyGetSetDef::default(),
    ];
    Box::leak(table.into_boxed_slice()).as_mut_ptr()
}
