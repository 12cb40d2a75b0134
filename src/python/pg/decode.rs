//! Result cells to Python, by column type and format: binary for every
//! built-in type asyncpg decodes (and enums, domains, arrays, ranges,
//! multiranges and composites of them), text for the rest (`str`, the
//! server's own output), through `set_type_codec` decoders where given.
//!
//! The Python types are asyncpg's: `ipaddress` objects for inet/cidr,
//! `iokernel.pgtypes` (`BitString`, `Point`, `Box`, `Line`, `LineSegment`,
//! `Path`, `Polygon`, `Circle`, `Range`) for bit strings, geometry and
//! ranges, lists for arrays and multiranges, tuples for tid, snapshots and
//! anonymous records, `Record` for named composites, an aware `time` for
//! timetz, None for void. Dates, times, timestamps, intervals, numerics,
//! uuids go through `values::to_python` (the same rules as text); json and
//! jsonb are their text (`str`), as in asyncpg.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyBytes, PyDelta, PyDict, PyFloat, PyList, PyString, PyTime, PyTuple, PyTzInfo,
};

#[path = "decode_scalar.rs"]
mod scalar;

use scalar::{inet, numeric};

use super::record::Desc;
use super::types::{oid::*, Kind, Registry};
use super::values::{decode_cell, to_python};
use crate::codec::pg_text::{self, civil_from_days, Value};

static PGTYPES: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

const PG_EPOCH_DAYS: i64 = 10_957;
const DAY_US: i64 = 86_400_000_000;

fn pgtype<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    PGTYPES
        .get_or_try_init(py, || {
            py.import("iokernel.pgtypes").map(|m| m.into_any().unbind())
        })?
        .bind(py)
        .getattr(name)
}

/// A cursor over one binary value; every read is bounds-checked.
struct Rd<'a> {
    b: &'a [u8],
    t: u32,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> PyResult<&'a [u8]> {
        if self.b.len() < n {
            return Err(PyValueError::new_err(format!(
                "malformed binary value of type {}: {} bytes short",
                self.t,
                n - self.b.len()
            )));
        }
        let (h, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(h)
    }
    fn u8(&mut self) -> PyResult<u8> {
        Ok(self.take(1)?[0])
    }
    /// The next `N` bytes as an array (for the big-endian readers).
    fn arr<const N: usize>(&mut self) -> PyResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn i16(&mut self) -> PyResult<i16> {
        self.arr().map(i16::from_be_bytes)
    }
    fn u16(&mut self) -> PyResult<u16> {
        self.arr().map(u16::from_be_bytes)
    }
    fn i32(&mut self) -> PyResult<i32> {
        self.arr().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> PyResult<u32> {
        self.arr().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> PyResult<i64> {
        self.arr().map(i64::from_be_bytes)
    }
    fn f64(&mut self) -> PyResult<f64> {
        Ok(f64::from_bits(self.i64()? as u64))
    }
    /// A length-prefixed value (None for -1).
    fn value(&mut self) -> PyResult<Option<&'a [u8]>> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(n as usize)?))
    }
    fn end(&self) -> PyResult<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(PyValueError::new_err(format!(
                "malformed binary value of type {}: {} extra bytes",
                self.t,
                self.b.len()
            )))
        }
    }
}

/// One cell of type `t` in `format` (0 text, 1 binary); None is NULL.
pub fn cell(
    py: Python<'_>,
    t: u32,
    format: i16,
    b: Option<&[u8]>,
    reg: &Registry,
) -> PyResult<Py<PyAny>> {
    let Some(b) = b else {
        return Ok(py.None());
    };
    if let Some(c) = reg.custom.get(&t) {
        if c.json_loads && format == 0 {
            // `decoder=json.loads`: the native parser, same result.
            return super::json::loads(py, b);
        }
        let arg = if format == 1 {
            PyBytes::new(py, b).into_any()
        } else {
            PyString::new(py, &String::from_utf8_lossy(b)).into_any()
        };
        return Ok(c.decoder.bind(py).call1((arg,))?.unbind());
    }
    if format == 1 {
        return binary(py, t, b, reg);
    }
    let elem = reg.element(t);
    let custom_elem = elem.is_some_and(|e| reg.custom.contains_key(&e));
    if t < 16384 && t != UNKNOWN && !custom_elem {
        return decode_cell(py, t, Some(b));
    }
    // Text of a type we do not decode: str; an array of them: a list of
    // str; an array of a type with a codec: its elements' text through it.
    if let Some(e) = elem {
        return match pg_text::decode_array_of(TEXT, b) {
            Ok(v) => texts(py, v, e, reg),
            Err(e) => Err(PyValueError::new_err(e)),
        };
    }
    Ok(PyString::new(py, &String::from_utf8_lossy(b))
        .into_any()
        .unbind())
}

/// A text array's elements (parsed as text) through element decoders.
fn texts(py: Python<'_>, v: Value, elem: u32, reg: &Registry) -> PyResult<Py<PyAny>> {
    match v {
        Value::Array(items) => {
            let out = items
                .into_iter()
                .map(|x| texts(py, x, elem, reg))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, out)?.into_any().unbind())
        }
        Value::Text(s) => cell(py, elem, 0, Some(s.as_bytes()), reg),
        other => to_python(py, other),
    }
}

fn utf8(py: Python<'_>, b: &[u8]) -> PyResult<Py<PyAny>> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(PyString::new(py, s).into_any().unbind()),
        Err(_) => Err(PyValueError::new_err(
            "the server sent text that is not UTF-8",
        )),
    }
}

/// A binary value of type `t`.
pub fn binary(py: Python<'_>, t: u32, b: &[u8], reg: &Registry) -> PyResult<Py<PyAny>> {
    let mut r = Rd { b, t };
    let v: Py<PyAny> = match t {
        BOOL => PyBool::new(py, r.u8()? != 0).to_owned().into_any().unbind(),
        INT2 => r.i16()?.into_pyobject(py)?.into_any().unbind(),
        INT4 => r.i32()?.into_pyobject(py)?.into_any().unbind(),
        INT8 => r.i64()?.into_pyobject(py)?.into_any().unbind(),
        OID | XID | CID => r.u32()?.into_pyobject(py)?.into_any().unbind(),
        XID8 | PG_LSN => (r.i64()? as u64).into_pyobject(py)?.into_any().unbind(),
        FLOAT4 => PyFloat::new(py, f64::from(f32::from_bits(r.u32()?)))
            .into_any()
            .unbind(),
        FLOAT8 => PyFloat::new(py, r.f64()?).into_any().unbind(),
        TEXT | VARCHAR | BPCHAR | NAME | XML | CHAR => return utf8(py, b),
        BYTEA => return Ok(PyBytes::new(py, b).into_any().unbind()),
        // The text, as asyncpg returns it (`set_type_codec` for objects).
        JSON => return utf8(py, b),
        JSONB => {
            if r.u8()? != 1 {
                return Err(PyValueError::new_err("unknown jsonb binary version"));
            }
            return utf8(py, r.b);
        }
        UUID => {
            let u: [u8; 16] = r.take(16)?.try_into().unwrap_or_default();
            to_python(py, Value::Uuid(u))?
        }
        NUMERIC => numeric(py, &mut r)?,
        DATE => {
            let d = r.i32()?;
            let v = match d {
                i32::MAX => Value::DateInfinity(true),
                i32::MIN => Value::DateInfinity(false),
                d => {
                    let (y, m, day) = civil_from_days(i64::from(d) + PG_EPOCH_DAYS);
                    Value::Date {
                        year: y as i32,
                        month: m,
                        day,
                    }
                }
            };
            to_python(py, v)?
        }
        TIMESTAMP | TIMESTAMPTZ => {
            let us = r.i64()?;
            let v = match us {
                i64::MAX => Value::TimestampInfinity(true),
                i64::MIN => Value::TimestampInfinity(false),
                us => {
                    let (y, m, d) = civil_from_days(us.div_euclid(DAY_US) + PG_EPOCH_DAYS);
                    let (hour, minute, second, micro) = hms(us.rem_euclid(DAY_US));
                    let year = y as i32;
                    if t == TIMESTAMP {
                        Value::Timestamp {
                            year,
                            month: m,
                            day: d,
                            hour,
                            minute,
                            second,
                            micro,
                        }
                    } else {
                        Value::TimestampTz {
                            year,
                            month: m,
                            day: d,
                            hour,
                            minute,
                            second,
                            micro,
                        }
                    }
                }
            };
            to_python(py, v)?
        }
        TIME => {
            let (hour, minute, second, micro) = hms(r.i64()?);
            to_python(
                py,
                Value::Time {
                    hour,
                    minute,
                    second,
                    micro,
                },
            )?
        }
        TIMETZ => {
            let (h, m, s, us) = hms(r.i64()?);
            let zone = r.i32()?;
            if h == 24 {
                return Err(PyValueError::new_err(
                    "time 24:00:00 does not fit in datetime.time (hours 0 to 23)",
                ));
            }
            let off = PyDelta::new(py, 0, -zone, 0, true)?;
            let tz = PyTzInfo::fixed_offset(py, off)?;
            PyTime::new(py, h, m, s, us, Some(&tz))?.into_any().unbind()
        }
        INTERVAL => {
            let micros = r.i64()?;
            let days = r.i32()?;
            let months = r.i32()?;
            to_python(
                py,
                Value::Interval {
                    months,
                    days,
                    micros,
                },
            )?
        }
        INET | CIDR => inet(py, t, &mut r)?,
        BIT | VARBIT => {
            let n = r.i32()?;
            let bytes = PyBytes::new(py, r.b);
            r.b = &[];
            pgtype(py, "BitString")?
                .call_method1("from_bytes", (bytes, n))?
                .unbind()
        }
        POINT => point(py, &mut r)?.unbind(),
        LSEG | BOX => {
            let (a, c) = (point(py, &mut r)?, point(py, &mut r)?);
            let cls = if t == LSEG { "LineSegment" } else { "Box" };
            pgtype(py, cls)?.call1((a, c))?.unbind()
        }
        LINE => {
            let (a, b2, c) = (r.f64()?, r.f64()?, r.f64()?);
            pgtype(py, "Line")?.call1((a, b2, c))?.unbind()
        }
        CIRCLE => {
            let c = point(py, &mut r)?;
            let rad = r.f64()?;
            pgtype(py, "Circle")?.call1((c, rad))?.unbind()
        }
        PATH | POLYGON => {
            let closed = if t == PATH { r.u8()? != 0 } else { true };
            let n = r.i32()?.max(0) as usize;
            let mut pts = Vec::with_capacity(n.min(r.b.len() / 16));
            for _ in 0..n {
                pts.push(point(py, &mut r)?);
            }
            let args = PyTuple::new(py, pts)?;
            if t == PATH {
                let kw = PyDict::new(py);
                kw.set_item("is_closed", closed)?;
                pgtype(py, "Path")?.call(args, Some(&kw))?.unbind()
            } else {
                pgtype(py, "Polygon")?.call1(args)?.unbind()
            }
        }
        TID => {
            let (blk, off) = (r.u32()?, r.u16()?);
            PyTuple::new(
                py,
                [
                    blk.into_pyobject(py)?.into_any(),
                    off.into_pyobject(py)?.into_any(),
                ],
            )?
            .into_any()
            .unbind()
        }
        TXID_SNAPSHOT | PG_SNAPSHOT => {
            let n = r.i32()?.max(0) as usize;
            let (xmin, xmax) = (r.i64()?, r.i64()?);
            let mut xip = Vec::with_capacity(n.min(r.b.len() / 8));
            for _ in 0..n {
                xip.push(r.i64()?);
            }
            let xip = PyTuple::new(py, xip)?;
            PyTuple::new(
                py,
                [
                    xmin.into_pyobject(py)?.into_any(),
                    xmax.into_pyobject(py)?.into_any(),
                    xip.into_any(),
                ],
            )?
            .into_any()
            .unbind()
        }
        VOID => py.None(),
        RECORD => return record(py, &mut r, None, reg),
        INT2VECTOR | OIDVECTOR => return array(py, &mut r, reg),
        _ => {
            if reg.element(t).is_some() {
                return array(py, &mut r, reg);
            }
            if let Some(s) = super::types::range_subtype(t) {
                return range(py, &mut r, s, reg);
            }
            if let Some(rt) = super::types::multirange_range(t) {
                return multirange(py, &mut r, rt, reg);
            }
            return match reg.user.get(&t).map(|u| &u.kind) {
                Some(Kind::Enum) | Some(Kind::Other) | None => utf8(py, b),
                Some(Kind::Domain(base)) => binary(py, *base, b, reg),
                Some(Kind::Range(s)) => range(py, &mut r, *s, reg),
                Some(Kind::Multirange(rt)) => multirange(py, &mut r, *rt, reg),
                Some(Kind::Composite(f)) => record(py, &mut r, Some(f), reg),
                Some(Kind::Array(_)) => array(py, &mut r, reg),
            };
        }
    };
    r.end()?;
    Ok(v)
}

fn hms(us: i64) -> (u8, u8, u8, u32) {
    let s = us.div_euclid(1_000_000);
    (
        (s / 3600) as u8,
        (s / 60 % 60) as u8,
        (s % 60) as u8,
        us.rem_euclid(1_000_000) as u32,
    )
}

fn point<'py>(py: Python<'py>, r: &mut Rd<'_>) -> PyResult<Bound<'py, PyAny>> {
    let (x, y) = (r.f64()?, r.f64()?);
    pgtype(py, "Point")?.call1((x, y))
}

/// An array (any element type; the element type is in the value) as a
/// list, nested per dimension; lower bounds are dropped (as asyncpg does).
fn array(py: Python<'_>, r: &mut Rd<'_>, reg: &Registry) -> PyResult<Py<PyAny>> {
    let ndim = r.i32()?;
    let _flags = r.i32()?;
    let elem = r.u32()?;
    if !(0..=6).contains(&ndim) {
        return Err(PyValueError::new_err(format!("array of {ndim} dimensions")));
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        let n = r.i32()?;
        let _lb = r.i32()?;
        dims.push(n.max(0) as usize);
    }
    if dims.is_empty() {
        r.end()?;
        return Ok(PyList::empty(py).into_any().unbind());
    }
    let out = level(py, r, &dims, elem, reg)?;
    r.end()?;
    Ok(out)
}

fn level(
    py: Python<'_>,
    r: &mut Rd<'_>,
    dims: &[usize],
    elem: u32,
    reg: &Registry,
) -> PyResult<Py<PyAny>> {
    let mut items = Vec::with_capacity(dims[0].min(r.b.len() / 4 + 1));
    for _ in 0..dims[0] {
        if dims.len() > 1 {
            items.push(level(py, r, &dims[1..], elem, reg)?);
        } else {
            let v = r.value()?;
            items.push(cell(py, elem, 1, v, reg)?);
        }
    }
    Ok(PyList::new(py, items)?.into_any().unbind())
}

/// A record: a tuple for an anonymous one, a `Record` for a named composite.
fn record(
    py: Python<'_>,
    r: &mut Rd<'_>,
    fields: Option<&Vec<(String, u32)>>,
    reg: &Registry,
) -> PyResult<Py<PyAny>> {
    let n = r.i32()?.max(0) as usize;
    let mut vals = Vec::with_capacity(n.min(r.b.len() / 8));
    for _ in 0..n {
        let t = r.u32()?;
        let v = r.value()?;
        vals.push(cell(py, t, 1, v, reg)?);
    }
    r.end()?;
    let Some(fields) = fields else {
        return Ok(PyTuple::new(py, vals)?.into_any().unbind());
    };
    let desc = Desc::new(py, fields.iter().map(|f| f.0.as_str()))?;
    desc.record(vals.len(), vals.into_iter().map(Ok))
}

fn range(py: Python<'_>, r: &mut Rd<'_>, sub: u32, reg: &Registry) -> PyResult<Py<PyAny>> {
    let flags = r.u8()?;
    let cls = pgtype(py, "Range")?;
    let kw = PyDict::new(py);
    if flags & 0x01 != 0 {
        kw.set_item("empty", true)?;
        r.end()?;
        return Ok(cls.call((), Some(&kw))?.unbind());
    }
    let lower = if flags & 0x08 == 0 {
        cell(py, sub, 1, r.value()?, reg)?
    } else {
        py.None()
    };
    let upper = if flags & 0x10 == 0 {
        cell(py, sub, 1, r.value()?, reg)?
    } else {
        py.None()
    };
    r.end()?;
    kw.set_item("lower_inc", flags & 0x02 != 0)?;
    kw.set_item("upper_inc", flags & 0x04 != 0)?;
    Ok(cls.call((lower, upper), Some(&kw))?.unbind())
}

fn multirange(py: Python<'_>, r: &mut Rd<'_>, rt: u32, reg: &Registry) -> PyResult<Py<PyAny>> {
    let sub = super::types::range_subtype(rt)
        .or_else(|| match reg.user.get(&rt).map(|u| &u.kind) {
            Some(Kind::Range(s)) => Some(*s),
            _ => None,
        })
        .ok_or_else(|| PyValueError::new_err(format!("unknown range type {rt}")))?;
    let n = r.i32()?.max(0) as usize;
    let mut out = Vec::with_capacity(n.min(r.b.len() / 5));
    for _ in 0..n {
        let len = r.i32()?.max(0) as usize;
        let mut one = Rd {
            b: r.take(len)?,
            t: rt,
        };
        out.push(range(py, &mut one, sub, reg)?);
    }
    r.end()?;
    Ok(PyList::new(py, out)?.into_any().unbind())
}
