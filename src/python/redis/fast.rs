//! `ClientCore`: the native base class of `iokernel.redis.Client` and
//! `AsyncClient`, and the hot commands implemented on it.
//!
//! It holds what every command needs (the `RedisService`, `decode`, the
//! client's timeout, the dedicated connection id) as native fields, which
//! the Python classes read and write as `_svc`, `_decode`, `_timeout` and
//! `_conn`. The methods in `fast_methods` (GET, SET, HGET, HSET, INCR, ...)
//! encode their arguments straight into RESP, submit, and return the reply
//! (blocking client) or the `Call` (asyncio client): no Python frame, no
//! argument tuple, reply post-processing in `convert::posted`.
//!
//! Only the common, plain forms take this path: positional arguments of
//! exactly `str`/`bytes` (keys) or `str`/`bytes`/`int`/`float` (values)
//! and `int` (amounts, seconds). Anything else — a keyword argument, a
//! subclass, a bool, a memoryview, a wrong count, a closed client — goes to
//! the Python method of the same name (`super()`), so validation, error
//! types and messages are exactly the Python layer's, whatever it decides.

use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PySuper, PyTuple};

use super::convert::{self, Post};
use super::RedisService;
use crate::codec::resp;
use crate::kernel::Summary;
use crate::protocols::redis::Pending;
use crate::python::core::completer::Completer;

/// How one positional argument may be encoded on the fast path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A key or field name: exactly `str` or `bytes`.
    Key,
    /// A value: exactly `str`, `bytes`, `int` (not bool) or `float`.
    Val,
    /// A count or time: exactly `int` (not bool).
    Int,
    /// `mget`'s first argument: a key, or a list/tuple of keys.
    Keys,
}

/// One natively implemented method: the Python method name (for the
/// fallback), the command, the positional arguments it takes here.
pub struct Spec {
    pub method: &'static str,
    pub cmd: &'static [u8],
    /// Required positional arguments.
    pub args: &'static [Kind],
    /// One optional positional argument and the bytes sent when it is
    /// omitted (e.g. INCRBY's amount, 1).
    pub opt: Option<(Kind, &'static [u8])>,
    /// More positional arguments of this kind (at least one, except after
    /// `Kind::Keys`; with none the Python method decides what that means).
    pub rest: Option<Kind>,
    pub post: Post,
}

pub struct State {
    pub svc: Py<PyAny>,
    pub native: Option<Py<RedisService>>,
    /// Text mode: `decode_responses` and `encoding_errors` (convert.rs).
    pub decode: u8,
    pub timeout: Option<f64>,
    pub conn: Option<u64>,
}

#[pyclass(frozen, subclass, module = "iokernel._native")]
pub struct ClientCore {
    /// Asyncio client (methods return a `Call`) or blocking client; from
    /// the class attribute `_fast_async` of the subclass.
    pub is_async: bool,
    pub st: Mutex<State>,
}

fn encode_str(a: &Bound<'_, PyAny>, out: &mut BytesMut) -> bool {
    if let Ok(b) = a.cast_exact::<PyBytes>() {
        resp::encode_bulk(b.as_bytes(), out);
        true
    } else if let Ok(s) = a.cast_exact::<PyString>() {
        match s.to_str() {
            Ok(t) => {
                resp::encode_bulk(t.as_bytes(), out);
                true
            }
            Err(_) => false,
        }
    } else {
        false
    }
}

fn encode_int(a: &Bound<'_, PyAny>, out: &mut BytesMut) -> bool {
    match a.cast_exact::<PyInt>().map(|i| i.extract::<i64>()) {
        Ok(Ok(v)) => {
            resp::encode_bulk(v.to_string().as_bytes(), out);
            true
        }
        _ => false,
    }
}

/// Encode `a` as `kind`; false (nothing useful written) if it is not one
/// the fast path takes. Returns how many bulk strings were written.
fn encode(kind: Kind, a: &Bound<'_, PyAny>, out: &mut BytesMut) -> Option<usize> {
    let ok = match kind {
        Kind::Key => encode_str(a, out),
        Kind::Int => encode_int(a, out),
        Kind::Val => {
            encode_str(a, out)
                || encode_int(a, out)
                || match a.cast_exact::<PyFloat>() {
                    Ok(f) => match f.repr() {
                        Ok(r) => match r.to_str() {
                            Ok(t) => {
                                resp::encode_bulk(t.as_bytes(), out);
                                true
                            }
                            Err(_) => false,
                        },
                        Err(_) => false,
                    },
                    Err(_) => false,
                }
        }
        Kind::Keys => {
            if encode_str(a, out) {
                return Some(1);
            }
            let items = if let Ok(l) = a.cast_exact::<PyList>() {
                l.iter().collect::<Vec<_>>()
            } else if let Ok(t) = a.cast_exact::<PyTuple>() {
                t.iter().collect::<Vec<_>>()
            } else {
                return None;
            };
            for k in &items {
                if !encode_str(k, out) {
                    return None;
                }
            }
            return Some(items.len());
        }
    };
    ok.then_some(1)
}

/// The kind of positional argument `i`, or None past the last one allowed.
fn kind_of(spec: &Spec, i: usize) -> Option<Kind> {
    if i < spec.args.len() {
        Some(spec.args[i])
    } else if let Some((k, _)) = spec.opt {
        (i == spec.args.len()).then_some(k)
    } else {
        spec.rest
    }
}

/// How many bulk strings `a` of `kind` becomes (a list of keys: its length).
fn width(kind: Kind, a: &Bound<'_, PyAny>) -> usize {
    if kind == Kind::Keys {
        if let Ok(l) = a.cast_exact::<PyList>() {
            return l.len();
        }
        if let Ok(t) = a.cast_exact::<PyTuple>() {
            return t.len();
        }
    }
    1
}

thread_local! {
    /// Where `build` encodes (its capacity kept between calls).
    static SCRATCH: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::with_capacity(256));
}

/// The command as RESP, or None if any argument is not for the fast path.
/// Encoded into this thread's scratch buffer and copied out at its exact
/// size: one allocation per command, freed by one `free` on the kernel
/// thread (a `BytesMut` frozen below its capacity costs a second
/// allocation, for the shared header, and a second `free`).
fn build(spec: &Spec, args: &Bound<'_, PyTuple>) -> Option<Bytes> {
    SCRATCH.with(|s| {
        // Encoding runs no Python code (exact types only); were it ever to
        // re-enter, it gets a fresh buffer rather than a panic.
        let mut guard = s.try_borrow_mut().ok();
        let mut fresh = BytesMut::new();
        let out = guard.as_deref_mut().unwrap_or(&mut fresh);
        out.clear();
        encode_into(spec, args, out)?;
        Some(Bytes::copy_from_slice(out))
    })
}

fn encode_into(spec: &Spec, args: &Bound<'_, PyTuple>, out: &mut BytesMut) -> Option<()> {
    let n = args.len();
    let req = spec.args.len();
    // A variadic command with none of its repeated arguments (`hdel("h")`,
    // `delete()`) is the Python method's to judge; `mget(keys)` is complete.
    let rest_needed = spec.rest.is_some() && spec.args.first() != Some(&Kind::Keys);
    if n < req || (rest_needed && n <= req) {
        return None;
    }
    let default = match spec.opt {
        Some((_, d)) if n == req => Some(d),
        _ => None,
    };
    let mut count = 1 + usize::from(default.is_some());
    for (i, a) in args.iter().enumerate() {
        count += width(kind_of(spec, i)?, &a);
    }
    if count == 1 {
        return None; // e.g. mget([]): the Python method says what that means
    }
    resp::encode_array_header(count, out);
    resp::encode_bulk(spec.cmd, out);
    for (i, a) in args.iter().enumerate() {
        encode(kind_of(spec, i)?, &a, out)?;
    }
    if let Some(d) = default {
        resp::encode_bulk(d, out);
    }
    Some(())
}

impl ClientCore {
    /// Run `spec` natively if the arguments allow it, else the Python
    /// method of the same name.
    pub fn run(
        slf: &Bound<'_, Self>,
        spec: &Spec,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let plain = kwargs.is_none_or(|k| k.is_empty());
        let me = slf.get();
        let snapshot = {
            let st = me.st.lock().unwrap_or_else(|e| e.into_inner());
            st.native
                .as_ref()
                .map(|s| (s.clone_ref(py), st.decode, st.timeout, st.conn))
        };
        let (Some((svc, decode, timeout, conn)), true) = (snapshot, plain) else {
            return fallback(slf, spec, args, kwargs);
        };
        let Some(buf) = build(spec, args) else {
            return fallback(slf, spec, args, kwargs);
        };
        let conv = convert::posted(decode, spec.post);
        let summary = Summary::new(spec.cmd);
        let svc = svc.get();
        if me.is_async {
            let (comp, fut) = Completer::running(py)?;
            let call = svc.s.submit(
                py,
                comp.get(),
                fut,
                buf,
                Pending::one(),
                summary,
                None,
                timeout,
                conn,
                conv,
                None,
            )?;
            Ok(call.unbind())
        } else {
            svc.s
                .blocking(py, buf, Pending::one(), summary, timeout, conn, conv)
        }
    }
}

fn fallback(
    slf: &Bound<'_, ClientCore>,
    spec: &Spec,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let py = slf.py();
    let sup = PySuper::new(&py.get_type::<ClientCore>(), slf.as_any())?;
    Ok(sup.getattr(spec.method)?.call(args, kwargs)?.unbind())
}

impl ClientCore {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
}
