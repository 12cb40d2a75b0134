//! Python-side conversion: request arguments into RESP bytes, reply frames
//! into the Python objects redis-py users expect. Runs on the calling thread
//! with the GIL held; the kernel never sees a Python object.
//!
//! `one` and `many` are the conversions a request carries to whoever picks
//! its reply up (the blocking caller, or the loop's completer).
//!
//! Text follows a client's `mode` (redis-py's `decode_responses` and
//! `encoding_errors`, UTF-8 being the only encoding): bit 0 says whether
//! replies' strings become `str`; the bits above it are the index of the
//! error handler in `ENCODING_ERRORS` (0: strict), used where bytes are not
//! UTF-8 (replies) or a `str` argument is not encodable (lone surrogates).
//! Valid text never leaves Rust; only those rare cases call Python's codec.

use bytes::BytesMut;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PySet, PyString, PyTuple};

use super::errors::response_error;
use crate::codec::resp::{self, Frame};
use crate::kernel::Reply;
use crate::protocols::redis::Frames;
use crate::python::core::conv::{downcast, Conv};
use crate::python::core::errors::ErrorClass;

/// The error handlers `encoding_errors` may name, numbered as the Python
/// side numbers them (`iokernel._native.ENCODING_ERRORS`).
pub const ENCODING_ERRORS: [&str; 6] = [
    "strict",
    "replace",
    "ignore",
    "backslashreplace",
    "surrogateescape",
    "surrogatepass",
];

/// The error handler of `mode` (strict for an index past the table).
fn handler(mode: u8) -> &'static str {
    ENCODING_ERRORS
        .get(usize::from(mode >> 1))
        .copied()
        .unwrap_or("strict")
}

/// One command's reply; an error reply raises `ResponseError`. `mode`: see
/// the module's header.
pub const fn one(mode: u8) -> Conv {
    Conv::new(one_frame, mode as usize)
}

/// A pipeline's replies as a list; error replies are `ResponseError`
/// instances in place.
pub const fn many(mode: u8) -> Conv {
    Conv::new(frame_list, mode as usize)
}

/// What a typed method does to a reply after `one` converted it, done here
/// for the natively implemented methods (`fast`) exactly as the Python
/// helper of the same name in `_redis_commands_support` does it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Post {
    /// The reply as converted.
    Raw = 0,
    /// `ok_or_none`: None stays None; True for OK (or RESP3 true); else False.
    OkOrNone = 1,
    /// `to_bool`: `bool(reply)`.
    Bool = 2,
    /// `float_or_none`: None stays None; else `float(reply)`.
    FloatOrNone = 3,
}

/// `one`, then `post`.
pub const fn posted(mode: u8, post: Post) -> Conv {
    Conv::new(one_posted, mode as usize | (post as usize) << 8)
}

fn one_posted(py: Python<'_>, reply: Reply, arg: usize) -> PyResult<Py<PyAny>> {
    let v = one_frame(py, reply, arg & 0xff)?;
    let b = v.bind(py);
    Ok(match arg >> 8 {
        1 if b.is_none() => v,
        1 => {
            let ok = b.is(&*pyo3::types::PyBool::new(py, true))
                || b.cast::<PyBytes>().is_ok_and(|x| x.as_bytes() == b"OK")
                || b.cast::<PyString>()
                    .is_ok_and(|x| x.to_str().is_ok_and(|t| t == "OK"));
            pyo3::types::PyBool::new(py, ok)
                .to_owned()
                .into_any()
                .unbind()
        }
        2 => pyo3::types::PyBool::new(py, b.is_truthy()?)
            .to_owned()
            .into_any()
            .unbind(),
        3 if b.is_none() => v,
        3 => py.get_type::<PyFloat>().call1((b,))?.unbind(),
        _ => v,
    })
}

fn one_frame(py: Python<'_>, reply: Reply, mode: usize) -> PyResult<Py<PyAny>> {
    match *downcast::<Frame>(reply)? {
        Frame::Error(m) | Frame::BulkError(m) => {
            Err(PyErr::from_value(response_error(py, &m)?.into_bound(py)))
        }
        f => frame_to_py(py, f, mode as u8),
    }
}

fn frame_list(py: Python<'_>, reply: Reply, mode: usize) -> PyResult<Py<PyAny>> {
    let fs = downcast::<Frames>(reply)?;
    let mut out = Vec::with_capacity(fs.0.len());
    for f in fs.0 {
        out.push(frame_to_py(py, f, mode as u8)?);
    }
    Ok(PyList::new(py, out)?.into_any().unbind())
}

static DATA_ERROR: ErrorClass = ErrorClass::new("DataError");

/// redis-py's `DataError` (also a `TypeError`): an argument Redis has no
/// spelling for. Falls back to `TypeError` if the class cannot be found.
fn data_error(py: Python<'_>, msg: String) -> PyErr {
    match DATA_ERROR.get(py) {
        Ok(class) => PyErr::from_type(class.clone(), msg),
        Err(_) => PyTypeError::new_err(msg),
    }
}

fn encode_one(a: &Bound<'_, PyAny>, out: &mut BytesMut, mode: u8) -> PyResult<()> {
    if let Ok(b) = a.cast::<PyBytes>() {
        resp::encode_bulk(b.as_bytes(), out);
    } else if let Ok(s) = a.cast::<PyString>() {
        match s.to_str() {
            Ok(t) => resp::encode_bulk(t.as_bytes(), out),
            // Not encodable (a lone surrogate): as redis-py, str.encode
            // with the client's error handler (strict raises).
            Err(e) if mode >> 1 == 0 => return Err(e),
            Err(_) => {
                let b = s.call_method1("encode", ("utf-8", handler(mode)))?;
                resp::encode_bulk(b.cast::<PyBytes>()?.as_bytes(), out);
            }
        }
    } else if a.is_instance_of::<pyo3::types::PyBool>() {
        return Err(data_error(
            a.py(),
            "invalid argument of type bool: convert it to bytes, str, int or float first (e.g. int(flag))".into(),
        ));
    } else if let Ok(i) = a.cast::<PyInt>() {
        match i.extract::<i64>() {
            Ok(v) => resp::encode_bulk(v.to_string().as_bytes(), out),
            Err(_) => resp::encode_bulk(i.str()?.to_str()?.as_bytes(), out),
        }
    } else if let Ok(f) = a.cast::<PyFloat>() {
        resp::encode_bulk(f.repr()?.to_str()?.as_bytes(), out);
    } else if let Ok(b) = a.cast::<PyByteArray>() {
        // SAFETY: the bytes are copied out at once, with the GIL held and no
        // Python code running that could resize the bytearray.
        resp::encode_bulk(unsafe { b.as_bytes() }, out);
    } else if let Ok(buf) = pyo3::buffer::PyBuffer::<u8>::get(a) {
        resp::encode_bulk(&buf.to_vec(a.py())?, out);
    } else {
        let t = a.get_type().name()?;
        return Err(data_error(
            a.py(),
            format!("invalid argument of type {t}: convert it to bytes, str, int or float first"),
        ));
    }
    Ok(())
}

/// Append one command (a tuple of arguments) as a RESP array; `mode` as
/// in the module's header.
pub fn encode_command(args: &Bound<'_, PyTuple>, out: &mut BytesMut, mode: u8) -> PyResult<()> {
    if args.is_empty() {
        return Err(PyTypeError::new_err("a command needs at least its name"));
    }
    resp::encode_array_header(args.len(), out);
    for a in args.iter() {
        encode_one(&a, out, mode)?;
    }
    Ok(())
}

fn text(py: Python<'_>, b: &[u8], mode: u8) -> PyResult<Py<PyAny>> {
    if mode & 1 == 0 {
        return Ok(PyBytes::new(py, b).into_any().unbind());
    }
    match std::str::from_utf8(b) {
        Ok(s) => Ok(PyString::new(py, s).into_any().unbind()),
        // As redis-py with decode_responses: bytes that are not UTF-8
        // raise UnicodeDecodeError (the whole reply fails) ...
        Err(e) if mode >> 1 == 0 => Err(PyErr::from_value(
            pyo3::exceptions::PyUnicodeDecodeError::new_utf8(py, b, e)?.into_any(),
        )),
        // ... unless encoding_errors names another handler: Python's codec.
        Err(_) => Ok(PyBytes::new(py, b)
            .call_method1("decode", ("utf-8", handler(mode)))?
            .unbind()),
    }
}

/// Convert a reply frame. Error frames become `ResponseError` instances.
pub fn frame_to_py(py: Python<'_>, f: Frame, mode: u8) -> PyResult<Py<PyAny>> {
    Ok(match f {
        Frame::Bulk(b) | Frame::Simple(b) => text(py, &b, mode)?,
        Frame::Verbatim { data, .. } => text(py, &data, mode)?,
        Frame::Integer(i) => i.into_pyobject(py)?.into_any().unbind(),
        Frame::Null => py.None(),
        Frame::Error(b) | Frame::BulkError(b) => response_error(py, &b)?,
        Frame::Array(v) | Frame::Push(v) => list(py, v, mode)?.into_any().unbind(),
        Frame::Double(d) => PyFloat::new(py, d).into_any().unbind(),
        Frame::Boolean(b) => pyo3::types::PyBool::new(py, b)
            .to_owned()
            .into_any()
            .unbind(),
        Frame::BigNumber(b) => py
            .get_type::<PyInt>()
            .call1((String::from_utf8_lossy(&b).as_ref(),))?
            .unbind(),
        Frame::Set(v) => {
            let items = list(py, v, mode)?;
            match PySet::new(py, items.iter()) {
                Ok(s) => s.into_any().unbind(),
                Err(_) => items.into_any().unbind(),
            }
        }
        Frame::Map(pairs) => {
            let d = PyDict::new(py);
            let mut kv = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                kv.push((frame_to_py(py, k, mode)?, frame_to_py(py, v, mode)?));
            }
            let mut hashable = true;
            for (k, v) in &kv {
                if d.set_item(k, v).is_err() {
                    hashable = false;
                    break;
                }
            }
            if hashable {
                d.into_any().unbind()
            } else {
                let l = PyList::empty(py);
                for (k, v) in kv {
                    l.append(PyTuple::new(py, [k, v])?)?;
                }
                l.into_any().unbind()
            }
        }
    })
}

fn list(py: Python<'_>, v: Vec<Frame>, mode: u8) -> PyResult<Bound<'_, PyList>> {
    let mut items = Vec::with_capacity(v.len());
    for f in v {
        items.push(frame_to_py(py, f, mode)?);
    }
    PyList::new(py, items)
}
