//! Binary encoders of the built-in scalar types (see `encode.rs`): what
//! Python values each accepts, and the bytes PostgreSQL's `*_recv` reads.

use bytes::{BufMut, BytesMut};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDate, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess,
    PyFloat, PyInt, PyList, PyString, PyTime, PyTimeAccess, PyTuple, PyType, PyTzInfo,
};

use super::{expected, misfit, Fail, Res};
use crate::codec::pg_text::days_from_civil;
use crate::python::pg::types::oid::*;

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UUID_T: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static JSON_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static IP_INTERFACE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static IP_NETWORK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static BITSTRING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static PATH_T: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const DAY_US: i64 = 86_400_000_000;

/// The Python type's name, for messages.
pub fn type_name_of(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string())
}

/// Whether we send type `t` (built in) in binary; the rest go as text (a str).
pub fn binary(t: u32) -> bool {
    matches!(
        t,
        BOOL | BYTEA
            | CHAR
            | NAME
            | TEXT
            | VARCHAR
            | BPCHAR
            | XML
            | UNKNOWN
            | INT2
            | INT4
            | INT8
            | OID
            | XID
            | CID
            | XID8
            | PG_LSN
            | FLOAT4
            | FLOAT8
            | NUMERIC
            | DATE
            | TIME
            | TIMETZ
            | TIMESTAMP
            | TIMESTAMPTZ
            | INTERVAL
            | UUID
            | JSON
            | JSONB
            | INET
            | CIDR
            | BIT
            | VARBIT
            | POINT
            | LSEG
            | BOX
            | LINE
            | PATH
            | POLYGON
            | CIRCLE
            | TID
            | TXID_SNAPSHOT
            | PG_SNAPSHOT
            | INT2VECTOR
            | OIDVECTOR
            | VOID
            | RECORD
    ) || super::range_subtype(t).is_some()
        || super::multirange_range(t).is_some()
}

/// A str's UTF-8 (no NUL: PostgreSQL text cannot hold it).
pub fn put_str(s: &Bound<'_, PyString>, out: &mut BytesMut) -> Res<()> {
    let s = s.to_str()?;
    if s.contains('\0') {
        return misfit(
            "PostgreSQL text cannot contain NUL (\\x00) characters; send bytes as bytea",
        );
    }
    out.put_slice(s.as_bytes());
    Ok(())
}

/// An integer as asyncpg takes one: int (bool too) or anything with
/// `__index__`; an integral float or Decimal (asyncpg truncates a fraction,
/// we refuse it).
fn integer(v: &Bound<'_, PyAny>) -> Res<i128> {
    let py = v.py();
    if let Ok(i) = v.cast::<PyInt>() {
        return i
            .extract::<i128>()
            .or_else(|_| misfit("value out of int64 range"));
    }
    let frac = v.is_instance_of::<PyFloat>()
        || v.is_instance(DECIMAL.import(py, "decimal", "Decimal")?)?;
    if frac {
        // NaN and the infinities have no int; a fraction would be lost.
        let whole = v
            .call_method0(intern!(py, "__int__"))
            .ok()
            .filter(|i| v.eq(i).unwrap_or(false));
        let Some(i) = whole else {
            return misfit(format!(
                "{} with a fraction (or not finite) for an integer type; round it first",
                type_name_of(v)
            ));
        };
        return i
            .extract::<i128>()
            .or_else(|_| misfit("value out of int64 range"));
    }
    if v.hasattr(intern!(py, "__index__"))? {
        let i = v.call_method0(intern!(py, "__index__"))?;
        return i
            .extract::<i128>()
            .or_else(|_| misfit("value out of int64 range"));
    }
    misfit(format!(
        "'{}' object cannot be interpreted as an integer",
        type_name_of(v)
    ))
}

fn ranged(v: &Bound<'_, PyAny>, lo: i128, hi: i128, what: &str) -> Res<i128> {
    let i = integer(v)?;
    if i < lo || i > hi {
        return misfit(format!("value out of {what} range"));
    }
    Ok(i)
}

fn float(v: &Bound<'_, PyAny>) -> Res<f64> {
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(f.value());
    }
    if v.is_instance_of::<PyString>() || v.is_instance_of::<PyBytes>() {
        return misfit(format!("must be real number, not {}", type_name_of(v)));
    }
    match v.extract::<f64>() {
        Ok(f) => Ok(f),
        Err(_) => misfit(format!("must be real number, not {}", type_name_of(v))),
    }
}

fn bytes_like(v: &Bound<'_, PyAny>) -> Res<Vec<u8>> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if v.is_instance_of::<PyString>() {
        return misfit("a bytes-like object is required, not 'str'");
    }
    match pyo3::buffer::PyBuffer::<u8>::get(v) {
        Ok(buf) => Ok(buf.to_vec(v.py())?),
        Err(_) => misfit(format!(
            "a bytes-like object is required, not '{}'",
            type_name_of(v)
        )),
    }
}

fn text_of<'a>(v: &'a Bound<'_, PyAny>) -> Res<&'a Bound<'a, PyString>> {
    match v.cast::<PyString>() {
        Ok(s) => Ok(s),
        Err(_) => expected("str", v),
    }
}

fn offset_us(off: &Bound<'_, PyAny>) -> Res<i64> {
    let td = off.cast::<PyDelta>().map_err(PyErr::from)?;
    Ok(
        (i64::from(td.get_days()) * 86_400 + i64::from(td.get_seconds())) * 1_000_000
            + i64::from(td.get_microseconds()),
    )
}

fn day_number(y: i32, m: u8, d: u8) -> i64 {
    days_from_civil(y.into(), m, d) - PG_EPOCH_DAYS
}

/// Microseconds since 2000-01-01 of a datetime's wall clock.
fn wall_us(dt: &Bound<'_, PyDateTime>) -> i64 {
    day_number(dt.get_year(), dt.get_month(), dt.get_day()) * DAY_US
        + time_us(
            dt.get_hour(),
            dt.get_minute(),
            dt.get_second(),
            dt.get_microsecond(),
        )
}

fn time_us(h: u8, m: u8, s: u8, us: u32) -> i64 {
    ((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(s)) * 1_000_000 + i64::from(us)
}

fn is_max_datetime(dt: &Bound<'_, PyDateTime>) -> bool {
    (
        dt.get_year(),
        dt.get_month(),
        dt.get_day(),
        dt.get_hour(),
        dt.get_minute(),
        dt.get_second(),
        dt.get_microsecond(),
    ) == (9999, 12, 31, 23, 59, 59, 999_999)
}

fn is_min_datetime(dt: &Bound<'_, PyDateTime>) -> bool {
    (
        dt.get_year(),
        dt.get_month(),
        dt.get_day(),
        dt.get_hour(),
        dt.get_minute(),
        dt.get_second(),
        dt.get_microsecond(),
    ) == (1, 1, 1, 0, 0, 0, 0)
}

fn points(v: &Bound<'_, PyAny>, n: Option<usize>, out: &mut BytesMut) -> Res<usize> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = v.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = v.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        let it = v
            .try_iter()
            .or_else(|_| expected("a sequence of points", v))?;
        it.collect::<PyResult<_>>()?
    };
    if let Some(n) = n {
        if items.len() != n {
            return misfit(format!("expected {n} points, got {}", items.len()));
        }
    }
    for p in &items {
        floats(p, 2, out)?;
    }
    Ok(items.len())
}

fn floats(v: &Bound<'_, PyAny>, n: usize, out: &mut BytesMut) -> Res<()> {
    if v.is_instance_of::<PyString>() || v.is_instance_of::<PyBytes>() {
        return expected(&format!("a tuple of {n} numbers"), v);
    }
    let items: Vec<Bound<'_, PyAny>> = match v.try_iter() {
        Ok(it) => it.collect::<PyResult<_>>()?,
        Err(_) => return expected(&format!("a tuple of {n} numbers"), v),
    };
    if items.len() != n {
        return misfit(format!("expected {n} numbers, got {}", items.len()));
    }
    for x in &items {
        out.put_f64(float(x)?);
    }
    Ok(())
}

/// The binary form of non-None `v` as built-in scalar type `t`.
pub fn value(v: &Bound<'_, PyAny>, t: u32, out: &mut BytesMut) -> Res<()> {
    let py = v.py();
    match t {
        BOOL => match v.cast::<PyBool>() {
            Ok(b) => out.put_u8(u8::from(b.is_true())),
            Err(_) => {
                return misfit(format!(
                    "a boolean is required (got type {})",
                    type_name_of(v)
                ))
            }
        },
        INT2 => out.put_i16(ranged(v, i16::MIN.into(), i16::MAX.into(), "int16")? as i16),
        INT4 => out.put_i32(ranged(v, i32::MIN.into(), i32::MAX.into(), "int32")? as i32),
        INT8 => out.put_i64(ranged(v, i64::MIN.into(), i64::MAX.into(), "int64")? as i64),
        OID | XID | CID => out.put_u32(ranged(v, 0, u32::MAX.into(), "uint32")? as u32),
        XID8 | PG_LSN => out.put_u64(ranged(v, 0, u64::MAX.into(), "uint64")? as u64),
        FLOAT8 => out.put_f64(float(v)?),
        FLOAT4 => {
            let f = float(v)?;
            if f.is_finite() && f.abs() > f64::from(f32::MAX) {
                return misfit("value out of float32 range");
            }
            out.put_f32(f as f32)
        }
        NUMERIC => super::numeric::put(v, out)?,
        TEXT | VARCHAR | BPCHAR | NAME | XML | UNKNOWN => put_str(text_of(v)?, out)?,
        JSON | JSONB => {
            if t == JSONB {
                out.put_u8(1);
            }
            match v.cast::<PyString>() {
                Ok(s) => put_str(s, out)?,
                Err(_) => {
                    let s = JSON_DUMPS.import(py, "json", "dumps")?.call1((v,))?;
                    put_str(s.cast::<PyString>().map_err(PyErr::from)?, out)?
                }
            }
        }
        CHAR => {
            // asyncpg takes bytes; we also take a str (we return "char" as str).
            if let Ok(s) = v.cast::<PyString>() {
                let s = s.to_str()?;
                if s.len() > 1 {
                    return misfit("\"char\" holds one byte");
                }
                out.put_slice(s.as_bytes());
            } else {
                let b = bytes_like(v)?;
                out.put_slice(&b[..b.len().min(1)]);
            }
        }
        BYTEA => out.put_slice(&bytes_like(v)?),
        UUID => {
            if let Some(b) = crate::python::pg::uuid_obj::bytes_of(v) {
                out.put_slice(&b);
                return Ok(());
            }
            let u = if v.is_instance(UUID_T.import(py, "uuid", "UUID")?)? {
                v.clone()
            } else if v.is_instance_of::<PyString>() {
                UUID_T.import(py, "uuid", "UUID")?.call1((v,))?
            } else {
                return expected("uuid.UUID or str", v);
            };
            let b = u.getattr(intern!(py, "bytes"))?;
            out.put_slice(b.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes());
        }
        DATE => {
            let Ok(d) = v.cast::<PyDate>() else {
                return expected("datetime.date", v);
            };
            let (y, m, day) = (d.get_year(), d.get_month(), d.get_day());
            let n = match (y, m, day) {
                (9999, 12, 31) => i32::MAX,
                (1, 1, 1) => i32::MIN,
                _ => day_number(y, m, day) as i32,
            };
            out.put_i32(n);
        }
        TIMESTAMP => {
            let dt = as_datetime(v)?;
            if !dt.call_method0(intern!(py, "utcoffset"))?.is_none() {
                return misfit(
                    "a timezone-aware datetime for a timestamp without time zone; \
                               use timestamptz or a naive datetime",
                );
            }
            out.put_i64(if is_max_datetime(&dt) {
                i64::MAX
            } else if is_min_datetime(&dt) {
                i64::MIN
            } else {
                wall_us(&dt)
            });
        }
        TIMESTAMPTZ => {
            let mut dt = as_datetime(v)?;
            if is_max_datetime(&dt) {
                out.put_i64(i64::MAX);
                return Ok(());
            }
            if is_min_datetime(&dt) {
                out.put_i64(i64::MIN);
                return Ok(());
            }
            let mut off = dt.call_method0(intern!(py, "utcoffset"))?;
            if off.is_none() {
                // Naive: local time, as asyncpg (and datetime.astimezone) read it.
                dt = dt
                    .call_method0(intern!(py, "astimezone"))?
                    .cast_into::<PyDateTime>()
                    .map_err(PyErr::from)?;
                off = dt.call_method0(intern!(py, "utcoffset"))?;
            }
            let utc = wall_us(&dt) - offset_us(&off)?;
            let top = (2_932_896 + 1 - PG_EPOCH_DAYS) * DAY_US - 1;
            let bottom = (-719_162 - PG_EPOCH_DAYS) * DAY_US;
            out.put_i64(if utc == top {
                i64::MAX
            } else if utc == bottom {
                i64::MIN
            } else {
                utc
            });
        }
        TIME | TIMETZ => {
            let (h, m, s, us, off) = if let Ok(dt) = v.cast::<PyDateTime>() {
                let off = dt.call_method0(intern!(py, "utcoffset"))?;
                (
                    dt.get_hour(),
                    dt.get_minute(),
                    dt.get_second(),
                    dt.get_microsecond(),
                    off,
                )
            } else if let Ok(tm) = v.cast::<PyTime>() {
                let off = tm.call_method0(intern!(py, "utcoffset"))?;
                (
                    tm.get_hour(),
                    tm.get_minute(),
                    tm.get_second(),
                    tm.get_microsecond(),
                    off,
                )
            } else {
                return expected("datetime.time", v);
            };
            out.put_i64(time_us(h, m, s, us));
            if t == TIMETZ {
                if off.is_none() {
                    return misfit("a naive time for time with time zone; give it a tzinfo");
                }
                let secs = offset_us(&off)? / 1_000_000;
                out.put_i32(-(secs as i32));
            }
        }
        INTERVAL => {
            let Ok(td) = v.cast::<PyDelta>() else {
                return expected("datetime.timedelta", v);
            };
            out.put_i64(i64::from(td.get_seconds()) * 1_000_000 + i64::from(td.get_microseconds()));
            out.put_i32(td.get_days());
            out.put_i32(0);
        }
        INET | CIDR => super::net::put_inet(v, t == CIDR, out)?,
        MACADDR | MACADDR8 => super::net::put_mac(v, if t == MACADDR { 6 } else { 8 }, out)?,
        BIT | VARBIT => {
            let bs = BITSTRING.import(py, "iokernel.pgtypes", "BitString")?;
            if v.is_instance(bs)? {
                let n: i32 = v.len()? as i32;
                out.put_i32(n);
                let b = v.call_method0("bytes")?;
                out.put_slice(b.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes());
            } else {
                let b = bytes_like(v)
                    .or_else(|_| expected("iokernel.pgtypes.BitString or bytes", v))?;
                out.put_i32((b.len() * 8) as i32);
                out.put_slice(&b);
            }
        }
        POINT => floats(v, 2, out)?,
        LINE => floats(v, 3, out)?,
        LSEG | BOX => {
            points(v, Some(2), out)?;
        }
        CIRCLE => {
            let items: Vec<Bound<'_, PyAny>> = match v.try_iter() {
                Ok(it) if !v.is_instance_of::<PyString>() => it.collect::<PyResult<_>>()?,
                _ => return expected("a ((x, y), r) tuple", v),
            };
            if items.len() != 2 {
                return expected("a ((x, y), r) tuple", v);
            }
            floats(&items[0], 2, out)?;
            out.put_f64(float(&items[1])?);
        }
        PATH => {
            let closed = if v.is_instance(PATH_T.import(py, "iokernel.pgtypes", "Path")?)? {
                v.getattr("is_closed")?.is_truthy()?
            } else {
                v.is_instance_of::<PyTuple>()
            };
            out.put_u8(u8::from(closed));
            let at = out.len();
            out.put_i32(0);
            let n = points(v, None, out)? as i32;
            out[at..at + 4].copy_from_slice(&n.to_be_bytes());
        }
        POLYGON => {
            let at = out.len();
            out.put_i32(0);
            let n = points(v, None, out)? as i32;
            out[at..at + 4].copy_from_slice(&n.to_be_bytes());
        }
        TID => {
            let items: Vec<Bound<'_, PyAny>> = match v.try_iter() {
                Ok(it) if !v.is_instance_of::<PyString>() => it.collect::<PyResult<_>>()?,
                _ => return expected("a (block, offset) tuple", v),
            };
            if items.len() != 2 {
                return expected("a (block, offset) tuple", v);
            }
            out.put_u32(ranged(&items[0], 0, u32::MAX.into(), "uint32")? as u32);
            out.put_u16(ranged(&items[1], 0, u16::MAX.into(), "uint16")? as u16);
        }
        TXID_SNAPSHOT | PG_SNAPSHOT => {
            let items: Vec<Bound<'_, PyAny>> = match v.try_iter() {
                Ok(it) if v.is_instance_of::<PyTuple>() || v.is_instance_of::<PyList>() => {
                    it.collect::<PyResult<_>>()?
                }
                _ => {
                    return misfit(format!(
                        "list or tuple expected (got type {})",
                        type_name_of(v)
                    ))
                }
            };
            if items.len() != 3 {
                return misfit("expected (xmin, xmax, [xip, ...])");
            }
            let xip: Vec<Bound<'_, PyAny>> = items[2].try_iter()?.collect::<PyResult<_>>()?;
            out.put_i32(xip.len() as i32);
            out.put_i64(ranged(&items[0], 0, i64::MAX.into(), "int64")? as i64);
            out.put_i64(ranged(&items[1], 0, i64::MAX.into(), "int64")? as i64);
            for x in &xip {
                out.put_i64(ranged(x, 0, i64::MAX.into(), "int64")? as i64);
            }
        }
        INT2VECTOR | OIDVECTOR => {
            let items: Vec<Bound<'_, PyAny>> = match v.try_iter() {
                Ok(it) if !v.is_instance_of::<PyString>() => it.collect::<PyResult<_>>()?,
                _ => return expected("a list of int", v),
            };
            out.put_i32(1);
            out.put_i32(0);
            out.put_u32(if t == INT2VECTOR { INT2 } else { OID });
            out.put_i32(items.len() as i32);
            out.put_i32(0);
            for x in &items {
                if t == INT2VECTOR {
                    out.put_i32(2);
                    out.put_i16(ranged(x, i16::MIN.into(), i16::MAX.into(), "int16")? as i16);
                } else {
                    out.put_i32(4);
                    out.put_u32(ranged(x, 0, u32::MAX.into(), "uint32")? as u32);
                }
            }
        }
        VOID => return misfit("void takes only None"),
        _ => put_str(text_of(v)?, out)?,
    }
    Ok(())
}

/// A datetime, or a date as its midnight (asyncpg does the same).
fn as_datetime<'py>(v: &Bound<'py, PyAny>) -> Res<Bound<'py, PyDateTime>> {
    if let Ok(dt) = v.cast::<PyDateTime>() {
        return Ok(dt.clone());
    }
    if let Ok(d) = v.cast::<PyDate>() {
        return Ok(PyDateTime::new(
            v.py(),
            d.get_year(),
            d.get_month(),
            d.get_day(),
            0,
            0,
            0,
            0,
            None,
        )?);
    }
    expected("datetime.datetime", v)
}

#[allow(dead_code)]
fn utc(py: Python<'_>) -> PyResult<Bound<'_, PyTzInfo>> {
    PyTzInfo::utc(py).map(|u| u.to_owned())
}

#[allow(dead_code)]
fn no_fail(_: Fail) {}

pub(super) fn ip_interface(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    IP_INTERFACE.import(py, "ipaddress", "ip_interface")
}

pub(super) fn ip_network(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    IP_NETWORK.import(py, "ipaddress", "ip_network")
}
