//! The natively implemented Redis commands of `ClientCore` (see `fast`):
//! one `Spec` per method and a one-line `#[pymethods]` wrapper each, plus
//! the fields the Python classes read and write (`_svc`, `_decode`,
//! `_timeout`, `_conn`).
//!
//! A method here must mean exactly what the Python method of the same name
//! in `iokernel._redis_commands` means for plain positional arguments
//! (tests/integration/redis_commands/test_fast_path.py compares both);
//! anything else falls back to that method.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use super::convert::Post;
use super::fast::{ClientCore, Kind, Spec, State};
use super::RedisService;

#[rustfmt::skip]
mod specs {
    use super::{Kind, Post, Spec};

    pub static GET: Spec = Spec { method: "get", cmd: b"GET", args: &[Kind::Key], opt: None, rest: None, post: Post::Raw };
    pub static SET: Spec = Spec { method: "set", cmd: b"SET", args: &[Kind::Key, Kind::Val], opt: None, rest: None, post: Post::OkOrNone };
    pub static SETNX: Spec = Spec { method: "setnx", cmd: b"SETNX", args: &[Kind::Key, Kind::Val], opt: None, rest: None, post: Post::Bool };
    pub static GETSET: Spec = Spec { method: "getset", cmd: b"GETSET", args: &[Kind::Key, Kind::Val], opt: None, rest: None, post: Post::Raw };
    pub static GETDEL: Spec = Spec { method: "getdel", cmd: b"GETDEL", args: &[Kind::Key], opt: None, rest: None, post: Post::Raw };
    pub static APPEND: Spec = Spec { method: "append", cmd: b"APPEND", args: &[Kind::Key, Kind::Val], opt: None, rest: None, post: Post::Raw };
    pub static STRLEN: Spec = Spec { method: "strlen", cmd: b"STRLEN", args: &[Kind::Key], opt: None, rest: None, post: Post::Raw };
    pub static MGET: Spec = Spec { method: "mget", cmd: b"MGET", args: &[Kind::Keys], opt: None, rest: Some(Kind::Key), post: Post::Raw };
    pub static INCR: Spec = Spec { method: "incr", cmd: b"INCRBY", args: &[Kind::Key], opt: Some((Kind::Int, b"1")), rest: None, post: Post::Raw };
    pub static INCRBY: Spec = Spec { method: "incrby", cmd: b"INCRBY", args: &[Kind::Key], opt: Some((Kind::Int, b"1")), rest: None, post: Post::Raw };
    pub static DECR: Spec = Spec { method: "decr", cmd: b"DECRBY", args: &[Kind::Key], opt: Some((Kind::Int, b"1")), rest: None, post: Post::Raw };
    pub static DECRBY: Spec = Spec { method: "decrby", cmd: b"DECRBY", args: &[Kind::Key], opt: Some((Kind::Int, b"1")), rest: None, post: Post::Raw };
    pub static DELETE: Spec = Spec { method: "delete", cmd: b"DEL", args: &[], opt: None, rest: Some(Kind::Key), post: Post::Raw };
    pub static UNLINK: Spec = Spec { method: "unlink", cmd: b"UNLINK", args: &[], opt: None, rest: Some(Kind::Key), post: Post::Raw };
    pub static EXISTS: Spec = Spec { method: "exists", cmd: b"EXISTS", args: &[], opt: None, rest: Some(Kind::Key), post: Post::Raw };
    pub static TOUCH: Spec = Spec { method: "touch", cmd: b"TOUCH", args: &[], opt: None, rest: Some(Kind::Key), post: Post::Raw };
    pub static EXPIRE: Spec = Spec { method: "expire", cmd: b"EXPIRE", args: &[Kind::Key, Kind::Int], opt: None, rest: None, post: Post::Bool };
    pub static PEXPIRE: Spec = Spec { method: "pexpire", cmd: b"PEXPIRE", args: &[Kind::Key, Kind::Int], opt: None, rest: None, post: Post::Bool };
    pub static TTL: Spec = Spec { method: "ttl", cmd: b"TTL", args: &[Kind::Key], opt: None, rest: None, post: Post::Raw };
    pub static PTTL: Spec = Spec { method: "pttl", cmd: b"PTTL", args: &[Kind::Key], opt: None, rest: None, post: Post::Raw };
    pub static PERSIST: Spec = Spec { method: "persist", cmd: b"PERSIST", args: &[Kind::Key], opt: None, rest: None, post: Post::Bool };
    pub static HGET: Spec = Spec { method: "hget", cmd: b"HGET", args: &[Kind::Key, Kind::Key], opt: None, rest: None, post: Post::Raw };
    pub static HSET: Spec = Spec { method: "hset", cmd: b"HSET", args: &[Kind::Key, Kind::Key, Kind::Val], opt: None, rest: None, post: Post::Raw };
    pub static HSETNX: Spec = Spec { method: "hsetnx", cmd: b"HSETNX", args: &[Kind::Key, Kind::Key, Kind::Val], opt: None, rest: None, post: Post::Bool };
    pub static HDEL: Spec = Spec { method: "hdel", cmd: b"HDEL", args: &[Kind::Key], opt: None, rest: Some(Kind::Key), post: Post::Raw };
    pub static HEXISTS: Spec = Spec { method: "hexists", cmd: b"HEXISTS", args: &[Kind::Key, Kind::Key], opt: None, rest: None, post: Post::Bool };
    pub static HINCRBY: Spec = Spec { method: "hincrby", cmd: b"HINCRBY", args: &[Kind::Key, Kind::Key], opt: Some((Kind::Int, b"1")), rest: None, post: Post::Raw };
    pub static HLEN: Spec = Spec { method: "hlen", cmd: b"HLEN", args: &[Kind::Key], opt: None, rest: None, post: Post::Raw };
    pub static HSTRLEN: Spec = Spec { method: "hstrlen", cmd: b"HSTRLEN", args: &[Kind::Key, Kind::Key], opt: None, rest: None, post: Post::Raw };
    pub static LPUSH: Spec = Spec { method: "lpush", cmd: b"LPUSH", args: &[Kind::Key], opt: None, rest: Some(Kind::Val), post: Post::Raw };
    pub static RPUSH: Spec = Spec { method: "rpush", cmd: b"RPUSH", args: &[Kind::Key], opt: None, rest: Some(Kind::Val), post: Post::Raw };
    pub static LLEN: Spec = Spec { method: "llen", cmd: b"LLEN", args: &[Kind::Key], opt: None, rest: None, post: Post::Raw };
    pub static LINDEX: Spec = Spec { method: "lindex", cmd: b"LINDEX", args: &[Kind::Key, Kind::Int], opt: None, rest: None, post: Post::Raw };
    pub static SADD: Spec = Spec { method: "sadd", cmd: b"SADD", args: &[Kind::Key], opt: None, rest: Some(Kind::Val), post: Post::Raw };
    pub static SREM: Spec = Spec { method: "srem", cmd: b"SREM", args: &[Kind::Key], opt: None, rest: Some(Kind::Val), post: Post::Raw };
    pub static SISMEMBER: Spec = Spec { method: "sismember", cmd: b"SISMEMBER", args: &[Kind::Key, Kind::Val], opt: None, rest: None, post: Post::Bool };
    pub static SCARD: Spec = Spec { method: "scard", cmd: b"SCARD", args: &[Kind::Key], opt: None, rest: None, post: Post::Raw };
    pub static ZSCORE: Spec = Spec { method: "zscore", cmd: b"ZSCORE", args: &[Kind::Key, Kind::Val], opt: None, rest: None, post: Post::FloatOrNone };
    pub static ZCARD: Spec = Spec { method: "zcard", cmd: b"ZCARD", args: &[Kind::Key], opt: None, rest: None, post: Post::Raw };
}

#[pymethods]
impl ClientCore {
    #[new]
    #[classmethod]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(
        cls: &Bound<'_, PyType>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let py = cls.py();
        let is_async = match cls.getattr("_fast_async") {
            Ok(v) => v.is_truthy()?,
            Err(_) => false,
        };
        Ok(ClientCore {
            is_async,
            st: Mutex::new(State {
                svc: py.None(),
                native: None,
                decode: 0,
                timeout: None,
                conn: None,
            }),
        })
    }

    /// The native service (or the stand-in of a closed client).
    #[getter(_svc)]
    fn get_svc(&self, py: Python<'_>) -> Py<PyAny> {
        self.lock().svc.clone_ref(py)
    }

    #[setter(_svc)]
    fn set_svc(&self, svc: Bound<'_, PyAny>) {
        let native = svc.cast::<RedisService>().ok().map(|s| s.clone().unbind());
        let mut st = self.lock();
        st.native = native;
        st.svc = svc.unbind();
    }

    #[getter(_decode)]
    fn get_decode(&self) -> u8 {
        self.lock().decode
    }

    #[setter(_decode)]
    fn set_decode(&self, v: u8) {
        self.lock().decode = v;
    }

    #[getter(_timeout)]
    fn get_timeout(&self) -> Option<f64> {
        self.lock().timeout
    }

    #[setter(_timeout)]
    fn set_timeout(&self, v: Option<f64>) {
        self.lock().timeout = v;
    }

    #[getter(_conn)]
    fn get_conn(&self) -> Option<u64> {
        self.lock().conn
    }

    #[setter(_conn)]
    fn set_conn(&self, v: Option<u64>) {
        self.lock().conn = v;
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn get(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::GET, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn set(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::SET, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn setnx(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::SETNX, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn getset(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::GETSET, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn getdel(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::GETDEL, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn append(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::APPEND, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn strlen(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::STRLEN, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn mget(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::MGET, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn incr(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::INCR, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn incrby(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::INCRBY, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn decr(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::DECR, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn decrby(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::DECRBY, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn delete(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::DELETE, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn unlink(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::UNLINK, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn exists(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::EXISTS, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn touch(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::TOUCH, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn expire(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::EXPIRE, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn pexpire(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::PEXPIRE, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn ttl(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::TTL, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn pttl(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::PTTL, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn persist(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::PERSIST, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn hget(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::HGET, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn hset(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::HSET, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn hsetnx(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::HSETNX, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn hdel(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::HDEL, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn hexists(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::HEXISTS, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn hincrby(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::HINCRBY, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn hlen(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::HLEN, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn hstrlen(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::HSTRLEN, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn lpush(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::LPUSH, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn rpush(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::RPUSH, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn llen(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::LLEN, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn lindex(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::LINDEX, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn sadd(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::SADD, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn srem(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::SREM, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn sismember(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::SISMEMBER, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn scard(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::SCARD, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn zscore(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::ZSCORE, args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn zcard(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::run(slf, &specs::ZCARD, args, kwargs)
    }
}
