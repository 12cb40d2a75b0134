//! PostgreSQL values to and from Python, both in TEXT format.
//!
//! Results: `codec::pg_text` parses a cell by its column type OID; `to_python`
//! turns the `Value` into what asyncpg would return (int, float, Decimal, str,
//! bytes, bool, date, time, naive or UTC-aware datetime, timedelta, UUID,
//! lists). Where asyncpg has a rule for what Python cannot hold, we follow it:
//! `infinity` dates and timestamps become `date.max`/`datetime.max` (and
//! `-infinity` the `min`s, naive even for timestamptz, as asyncpg does), and
//! an interval's months count as 30 days and every 12 months as 365 days.
//! BC years, years past 9999 and `24:00:00` raise ValueError. json/jsonb
//! are their text (str), as in asyncpg; one choice differs from asyncpg on
//! purpose: `"char"` is str, not bytes.
//!
//! Parameters: `encode_param` writes one Bind parameter (Int32 length, then
//! text; -1 for None) for a server that infers the type (OID 0). The text is
//! what PostgreSQL's input functions accept for any type the server may infer:
//! `t`/`f`, digits, `NaN`/`Infinity`, ISO dates and times with the offset kept,
//! `\x`-hex bytea, ISO 8601 durations, JSON for dicts, and `{...}` array
//! literals with every element quoted. `date.max`/`datetime.max` and the mins
//! go as `infinity`/`-infinity`, mirroring the decoding.
//!
//! `_pg_decode_cell` and `_pg_encode_param` expose both directions to tests.

use bytes::{BufMut, BytesMut};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDate, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyDict,
    PyFloat, PyInt, PyList, PyString, PyTime, PyTimeAccess, PyTuple, PyType, PyTzInfo,
};

use crate::codec::pg_text::{self, civil_from_days, days_from_civil, oid, Value};

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static JSON_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn cached<'py>(
    cell: &'static PyOnceLock<Py<PyAny>>,
    py: Python<'py>,
    module: &str,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.import(py, module, name)
}

/// Array literals nest at most this deep, as in PostgreSQL (MAXDIM).
const MAX_DIMS: usize = 6;

/// The last day Python's `datetime` can hold, in days since 1970-01-01.
const PY_MAX_DAY: i64 = 2_932_896;
/// `datetime.min` (0001-01-01), in days since 1970-01-01.
const PY_MIN_DAY: i64 = -719_162;
const DAY_US: i64 = 86_400_000_000;

/// Convert a decoded value to the Python object asyncpg would return.
pub fn to_python(py: Python<'_>, v: Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::Null => py.None(),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        Value::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Value::Float(f) => PyFloat::new(py, f).into_any().unbind(),
        Value::Numeric(s) => DECIMAL
            .import(py, "decimal", "Decimal")?
            .call1((s,))?
            .unbind(),
        Value::Text(s) => PyString::new(py, &s).into_any().unbind(),
        Value::Bytes(b) => PyBytes::new(py, &b).into_any().unbind(),
        Value::Json(s) => PyString::new(py, &s).into_any().unbind(),
        Value::Date { year, month, day } => {
            let y = py_year(year, || {
                format!("date {}", show_date(year, month, day, None))
            })?;
            PyDate::new(py, y, month, day)?.into_any().unbind()
        }
        Value::DateInfinity(pos) => {
            let (y, m, d) = if pos { (9999, 12, 31) } else { (1, 1, 1) };
            PyDate::new(py, y, m, d)?.into_any().unbind()
        }
        Value::Time {
            hour,
            minute,
            second,
            micro,
        } => {
            if hour == 24 {
                return Err(PyValueError::new_err(
                    "time 24:00:00 does not fit in datetime.time (hours 0 to 23)",
                ));
            }
            PyTime::new(py, hour, minute, second, micro, None)?
                .into_any()
                .unbind()
        }
        Value::Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        }
        | Value::TimestampTz {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        } => {
            let utc = PyTzInfo::utc(py)?;
            let tz = matches!(v, Value::TimestampTz { .. }).then_some(&*utc);
            let y = py_year(year, || {
                let t = Some((hour, minute, second));
                format!("timestamp {}", show_date(year, month, day, t))
            })?;
            // 24:00:00 is the next midnight
            let (y, month, day, hour) = if hour == 24 {
                let (ny, nm, nd) = civil_from_days(days_from_civil(y.into(), month, day) + 1);
                let ny = py_year(ny as i32, || {
                    format!(
                        "timestamp {}",
                        show_date(ny as i32, nm, nd, Some((0, 0, 0)))
                    )
                })?;
                (ny, nm, nd, 0)
            } else {
                (y, month, day, hour)
            };
            PyDateTime::new(py, y, month, day, hour, minute, second, micro, tz)?
                .into_any()
                .unbind()
        }
        Value::TimestampInfinity(pos) => {
            let dt = if pos {
                PyDateTime::new(py, 9999, 12, 31, 23, 59, 59, 999_999, None)?
            } else {
                PyDateTime::new(py, 1, 1, 1, 0, 0, 0, 0, None)?
            };
            dt.into_any().unbind()
        }
        Value::Interval {
            months,
            days,
            micros,
        } => interval(py, months, days, micros)?,
        Value::Uuid(b) => super::uuid_obj::new_uuid(py, b)?,
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for v in items {
                out.push(to_python(py, v)?);
            }
            PyList::new(py, out)?.into_any().unbind()
        }
    })
}

/// `0044-03-15 BC` for astronomical year -43, with the time if given.
fn show_date(year: i32, month: u8, day: u8, time: Option<(u8, u8, u8)>) -> String {
    let (y, bc) = if year <= 0 {
        (1 - i64::from(year), " BC")
    } else {
        (i64::from(year), "")
    };
    let t = time.map_or(String::new(), |(h, m, s)| format!(" {h:02}:{m:02}:{s:02}"));
    format!("{y:04}-{month:02}-{day:02}{t}{bc}")
}

fn py_year(year: i32, what: impl FnOnce() -> String) -> PyResult<i32> {
    if (1..=9999).contains(&year) {
        Ok(year)
    } else {
        Err(PyValueError::new_err(format!(
            "{} is out of range for Python's datetime (years 1 to 9999)",
            what()
        )))
    }
}

/// asyncpg's rule: months % 12 count 30 days, each 12 months 365 days.
fn interval(py: Python<'_>, months: i32, days: i32, micros: i64) -> PyResult<Py<PyAny>> {
    let (years, rest) = (i64::from(months / 12), i64::from(months % 12));
    let days = i64::from(days) + rest * 30 + years * 365 + micros.div_euclid(DAY_US);
    let us = micros.rem_euclid(DAY_US);
    if days.abs() > 999_999_999 {
        return Err(PyOverflowError::new_err(format!(
            "interval of {months} months, {days} days and {micros} microseconds does not fit \
             in datetime.timedelta (at most 999999999 days)"
        )));
    }
    let (secs, us) = ((us / 1_000_000) as i32, (us % 1_000_000) as i32);
    Ok(PyDelta::new(py, days as i32, secs, us, false)?
        .into_any()
        .unbind())
}

/// Decode one result cell (None = SQL NULL) of type `type_oid` straight to
/// Python. A cell the type's grammar rejects raises ValueError.
pub fn decode_cell(py: Python<'_>, type_oid: u32, text: Option<&[u8]>) -> PyResult<Py<PyAny>> {
    let Some(text) = text else {
        return Ok(py.None());
    };
    // The most common types skip the intermediate `Value`.
    match type_oid {
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => {
            if let Ok(s) = std::str::from_utf8(text) {
                return Ok(PyString::new(py, s).into_any().unbind());
            }
        }
        oid::INT2 | oid::INT4 | oid::INT8 => {
            if let Some(i) = std::str::from_utf8(text)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                return Ok(i.into_pyobject(py)?.into_any().unbind());
            }
        }
        _ => {}
    }
    match pg_text::decode(type_oid, text) {
        Ok(v) => to_python(py, v),
        Err(e) => Err(PyValueError::new_err(e)),
    }
}

/// Append one Bind parameter in TEXT format: Int32 length + bytes, or
/// Int32 -1 for None. On error `out` is left as it was.
pub fn encode_param(obj: &Bound<'_, PyAny>, out: &mut BytesMut) -> PyResult<()> {
    let start = out.len();
    if obj.is_none() {
        out.put_i32(-1);
        return Ok(());
    }
    out.put_i32(0);
    if let Err(e) = write_text(obj, out, 0) {
        out.truncate(start);
        return Err(e);
    }
    let Ok(len) = i32::try_from(out.len() - start - 4) else {
        out.truncate(start);
        return Err(PyValueError::new_err("parameter longer than 2 GiB"));
    };
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// `uuid.UUID`.
pub fn uuid_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    UUID.import(py, "uuid", "UUID")
}

const SUPPORTED: &str = "None, bool, int, float, decimal.Decimal, str, bytes, bytearray, \
    memoryview, datetime.date, datetime.datetime, datetime.time, datetime.timedelta, \
    uuid.UUID, dict (sent as JSON), list and tuple (sent as arrays)";

/// The text of a non-None value. `depth` counts enclosing array literals.
fn write_text(obj: &Bound<'_, PyAny>, out: &mut BytesMut, depth: usize) -> PyResult<()> {
    let py = obj.py();
    if let Ok(b) = obj.cast::<PyBool>() {
        out.put_slice(if b.is_true() { b"t" } else { b"f" });
    } else if let Ok(i) = obj.cast::<PyInt>() {
        match i.extract::<i64>() {
            Ok(v) => out.put_slice(v.to_string().as_bytes()),
            Err(_) => out.put_slice(i.str()?.to_str()?.as_bytes()),
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        if v.is_nan() {
            out.put_slice(b"NaN");
        } else if v.is_infinite() {
            out.put_slice(if v > 0.0 { b"Infinity" } else { b"-Infinity" });
        } else {
            // Debug is the shortest text that round-trips (`1e300`, `0.1`).
            out.put_slice(format!("{v:?}").as_bytes());
        }
    } else if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_str()?;
        if s.contains('\0') {
            // The server would refuse the whole Bind; say why here.
            return Err(PyValueError::new_err(
                "PostgreSQL text cannot contain NUL (\\x00) characters; send bytes as bytea",
            ));
        }
        out.put_slice(s.as_bytes());
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        put_hex(b.as_bytes(), out);
    } else if let Ok(b) = obj.cast::<PyByteArray>() {
        put_hex(&b.to_vec(), out);
    } else if let Ok(dt) = obj.cast::<PyDateTime>() {
        put_datetime(dt, out)?;
    } else if let Ok(d) = obj.cast::<PyDate>() {
        let (y, m, day) = (d.get_year(), d.get_month(), d.get_day());
        match (y, m, day) {
            (9999, 12, 31) => out.put_slice(b"infinity"),
            (1, 1, 1) => out.put_slice(b"-infinity"),
            _ => out.put_slice(format!("{y:04}-{m:02}-{day:02}").as_bytes()),
        }
    } else if let Ok(t) = obj.cast::<PyTime>() {
        put_time(
            t.get_hour(),
            t.get_minute(),
            t.get_second(),
            t.get_microsecond(),
            out,
        );
        let off = t.call_method0("utcoffset")?;
        if !off.is_none() {
            put_offset(offset_seconds(&off)?, out);
        }
    } else if let Ok(td) = obj.cast::<PyDelta>() {
        let (d, s, us) = (td.get_days(), td.get_seconds(), td.get_microseconds());
        let frac = if us != 0 {
            format!(".{us:06}")
        } else {
            String::new()
        };
        out.put_slice(format!("P{d}DT{s}{frac}S").as_bytes());
    } else if obj.is_instance(DECIMAL.import(py, "decimal", "Decimal")?)? {
        let s = obj.str()?;
        let s = s.to_str()?;
        // -NaN and sNaN are still NaN to PostgreSQL
        out.put_slice(if s.ends_with("NaN") {
            b"NaN"
        } else {
            s.as_bytes()
        });
    } else if obj.is_instance(UUID.import(py, "uuid", "UUID")?)? {
        out.put_slice(obj.str()?.to_str()?.as_bytes());
    } else if obj.is_instance_of::<PyDict>() {
        let s = cached(&JSON_DUMPS, py, "json", "dumps")?.call1((obj,))?;
        out.put_slice(s.cast::<PyString>()?.to_str()?.as_bytes());
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        put_array(obj, out, depth + 1)?;
    } else if let Ok(buf) = pyo3::buffer::PyBuffer::<u8>::get(obj) {
        put_hex(&buf.to_vec(py)?, out);
    } else {
        let t = obj.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "cannot send a value of type {t} as a PostgreSQL parameter; supported: {SUPPORTED}"
        )));
    }
    Ok(())
}

fn put_hex(b: &[u8], out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 + 2 * b.len());
    out.put_slice(b"\\x");
    for &x in b {
        out.put_u8(HEX[usize::from(x >> 4)]);
        out.put_u8(HEX[usize::from(x & 15)]);
    }
}

fn put_time(h: u8, m: u8, s: u8, us: u32, out: &mut BytesMut) {
    out.put_slice(format!("{h:02}:{m:02}:{s:02}").as_bytes());
    if us != 0 {
        out.put_slice(format!(".{us:06}").as_bytes());
    }
}

/// A `utcoffset()` timedelta in whole seconds; sub-second offsets refused.
fn offset_seconds(off: &Bound<'_, PyAny>) -> PyResult<i64> {
    let td = off.cast::<PyDelta>()?;
    if td.get_microseconds() != 0 {
        return Err(PyValueError::new_err(
            "UTC offsets with microseconds cannot be sent to PostgreSQL",
        ));
    }
    Ok(i64::from(td.get_days()) * 86_400 + i64::from(td.get_seconds()))
}

/// `+05:30`, `-08:00`, `+00:19:32`.
fn put_offset(secs: i64, out: &mut BytesMut) {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    out.put_slice(format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60).as_bytes());
    if a % 60 != 0 {
        out.put_slice(format!(":{:02}", a % 60).as_bytes());
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]`, the offset as given. As in
/// asyncpg, a datetime whose UTC value is `datetime.max` (or min) is sent
/// as `infinity` (or `-infinity`).
fn put_datetime(dt: &Bound<'_, PyDateTime>, out: &mut BytesMut) -> PyResult<()> {
    let (y, mo, d) = (dt.get_year(), dt.get_month(), dt.get_day());
    let (h, mi, s, us) = (
        dt.get_hour(),
        dt.get_minute(),
        dt.get_second(),
        dt.get_microsecond(),
    );
    let off = dt.call_method0("utcoffset")?;
    let off = if off.is_none() {
        None
    } else {
        Some(offset_seconds(&off)?)
    };
    let local_us = (days_from_civil(y.into(), mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(s))
        * 1_000_000
        + i64::from(us);
    let utc_us = local_us - off.unwrap_or(0) * 1_000_000;
    if utc_us == (PY_MAX_DAY + 1) * DAY_US - 1 {
        out.put_slice(b"infinity");
        return Ok(());
    }
    if utc_us == PY_MIN_DAY * DAY_US {
        out.put_slice(b"-infinity");
        return Ok(());
    }
    out.put_slice(format!("{y:04}-{mo:02}-{d:02} ").as_bytes());
    put_time(h, mi, s, us, out);
    if let Some(off) = off {
        put_offset(off, out);
    }
    Ok(())
}

/// `{...}` with every element quoted and `"`/`\` escaped, None as NULL and
/// nested lists or tuples as nested braces.
fn put_array(seq: &Bound<'_, PyAny>, out: &mut BytesMut, depth: usize) -> PyResult<()> {
    if depth > MAX_DIMS {
        return Err(PyValueError::new_err(
            "lists nested more than 6 deep cannot be sent as a PostgreSQL array",
        ));
    }
    out.put_u8(b'{');
    let mut scratch = BytesMut::new();
    for (i, item) in seq.try_iter()?.enumerate() {
        let item = item?;
        if i > 0 {
            out.put_u8(b',');
        }
        if item.is_none() {
            out.put_slice(b"NULL");
        } else if item.is_instance_of::<PyList>() || item.is_instance_of::<PyTuple>() {
            put_array(&item, out, depth + 1)?;
        } else {
            scratch.clear();
            write_text(&item, &mut scratch, depth)?;
            out.reserve(scratch.len() + 2);
            out.put_u8(b'"');
            for &b in scratch.iter() {
                if b == b'"' || b == b'\\' {
                    out.put_u8(b'\\');
                }
                out.put_u8(b);
            }
            out.put_u8(b'"');
        }
    }
    out.put_u8(b'}');
    Ok(())
}

/// Test hook: `decode_cell` from Python.
#[pyfunction]
#[pyo3(signature = (type_oid, text))]
pub fn _pg_decode_cell(py: Python<'_>, type_oid: u32, text: Option<&[u8]>) -> PyResult<Py<PyAny>> {
    decode_cell(py, type_oid, text)
}

/// Test hook: the text `encode_param` sends for `obj`, or None for NULL.
#[pyfunction]
pub fn _pg_encode_param(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyBytes>>> {
    let mut out = BytesMut::new();
    encode_param(obj, &mut out)?;
    let len = i32::from_be_bytes([out[0], out[1], out[2], out[3]]);
    if len < 0 {
        return Ok(None);
    }
    assert_eq!(len as usize, out.len() - 4, "length prefix");
    Ok(Some(PyBytes::new(py, &out[4..]).unbind()))
}
