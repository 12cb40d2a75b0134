//! Parameters encoded for their declared types (the statement's Describe),
//! in PostgreSQL's binary format wherever the type has one and we know it,
//! else as text (`money`, types an extension defines, `set_type_codec`
//! text codecs). A Python value that does not fit its parameter's type is
//! refused here, before anything is sent, with asyncpg's `DataError`:
//! `invalid input for query argument $2 (int4): 'x' (expected int, got str)`.
//!
//! What each type accepts follows asyncpg (checked by
//! tests/integration/test_pg_types.py), with two deliberate differences
//! (docs/architecture.md): a float or Decimal with a fraction is refused for
//! an integer type (asyncpg truncates it), and json/jsonb take any value
//! `json.dumps` can write besides the str asyncpg wants ("char" takes str too).
//! Scalars are in `encode_scalar.rs`; containers (arrays, ranges,
//! composites) here.

#[path = "encode_net.rs"]
mod net;
#[path = "encode_numeric.rs"]
mod numeric;
#[path = "encode_scalar.rs"]
mod scalar;

use bytes::{BufMut, BytesMut};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use super::types::{multirange_range, oid, range_subtype, Kind, Registry};
use crate::python::core::errors::ErrorClass;

static DATA_ERROR: ErrorClass = ErrorClass::new("PostgresDataError");
static INTERFACE_ERROR: ErrorClass = ErrorClass::new("InterfaceError");
static RANGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

pub(crate) use scalar::type_name_of;

/// Why a value does not fit (the part of the message in parentheses).
pub type Why = String;

/// A failure while encoding: a value that does not fit, or a Python error.
pub enum Fail {
    Misfit(Why),
    Py(PyErr),
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Py(e)
    }
}

pub type Res<T> = Result<T, Fail>;

pub fn misfit<T>(why: impl Into<String>) -> Res<T> {
    Err(Fail::Misfit(why.into()))
}

/// `expected int, got str`.
pub fn expected<T>(what: &str, v: &Bound<'_, PyAny>) -> Res<T> {
    misfit(format!("expected {what}, got {}", type_name_of(v)))
}

/// The Bind parameter section (format codes, then the values) for `args`
/// against the statement's parameter types; raises `DataError` (a value
/// that does not fit) or `InterfaceError` (wrong number of arguments).
pub fn bind_section(
    args: &Bound<'_, PyTuple>,
    types: &[u32],
    reg: &Registry,
) -> PyResult<BytesMut> {
    let py = args.py();
    if args.len() != types.len() {
        let s = if types.len() == 1 { "" } else { "s" };
        let msg = format!(
            "the server expects {} argument{s} for this query, {} {} passed",
            types.len(),
            args.len(),
            if args.len() == 1 { "was" } else { "were" }
        );
        return Err(PyErr::from_value(INTERFACE_ERROR.get(py)?.call1((msg,))?));
    }
    let n = types.len();
    let mut out = BytesMut::with_capacity(8 + 4 * n + 16 * n);
    out.put_u16(n as u16);
    let formats = out.len();
    out.put_bytes(0, 2 * n);
    out.put_u16(n as u16);
    for (i, (v, &t)) in args.iter().zip(types).enumerate() {
        match param(&v, t, reg, &mut out) {
            Ok(binary) => out[formats + 2 * i + 1] = u8::from(binary),
            Err(f) => return Err(data_error(py, i + 1, &v, t, reg, f)),
        }
    }
    Ok(out)
}

/// One parameter, length-prefixed; true when in binary.
pub fn param(v: &Bound<'_, PyAny>, t: u32, reg: &Registry, out: &mut BytesMut) -> Res<bool> {
    if v.is_none() {
        out.put_i32(-1);
        return Ok(true);
    }
    let binary = binary_param(t, reg);
    let start = out.len();
    out.put_i32(0);
    let r = if binary {
        value(v, t, reg, out)
    } else {
        text(v, t, reg, out)
    };
    if let Err(e) = r {
        out.truncate(start);
        return Err(e);
    }
    let Ok(len) = i32::try_from(out.len() - start - 4) else {
        out.truncate(start);
        return misfit("longer than 2 GiB");
    };
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(binary)
}

/// The `DataError` for parameter `pos` (1-based).
pub fn data_error(
    py: Python<'_>,
    pos: usize,
    v: &Bound<'_, PyAny>,
    t: u32,
    reg: &Registry,
    f: Fail,
) -> PyErr {
    let why = match f {
        Fail::Misfit(w) => w,
        Fail::Py(e) => e
            .value(py)
            .str()
            .map_or_else(|_| e.to_string(), |s| s.to_string()),
    };
    let mut shown = v.repr().map_or_else(|_| "?".to_string(), |r| r.to_string());
    if shown.chars().count() > 40 {
        shown = shown.chars().take(40).collect::<String>() + "...";
    }
    let msg = format!(
        "invalid input for query argument ${pos} ({}): {shown} ({why})",
        reg.name(t)
    );
    match DATA_ERROR.get(py).and_then(|c| c.call1((msg.clone(),))) {
        Ok(e) => PyErr::from_value(e),
        Err(_) => PyValueError::new_err(msg),
    }
}

/// Whether a parameter of type `t` goes in binary.
pub(super) fn binary_param(t: u32, reg: &Registry) -> bool {
    if let Some(c) = reg.custom.get(&t) {
        return c.binary;
    }
    if let Some(e) = reg.element(t) {
        return binary_param(e, reg);
    }
    if t < 16384 {
        return scalar::binary(t);
    }
    match reg.user.get(&t).map(|u| &u.kind) {
        Some(Kind::Enum) => true,
        Some(Kind::Domain(b)) => binary_param(*b, reg),
        Some(Kind::Range(s)) => binary_param(*s, reg),
        Some(Kind::Multirange(r)) => binary_param(*r, reg),
        Some(Kind::Composite(f)) => f.iter().all(|f| binary_param(f.1, reg)),
        Some(Kind::Array(_)) => unreachable!("element() handled arrays"),
        Some(Kind::Other) | None => false,
    }
}

/// The binary form of non-None `v` as type `t` (no length prefix).
pub fn value(v: &Bound<'_, PyAny>, t: u32, reg: &Registry, out: &mut BytesMut) -> Res<()> {
    if let Some(c) = reg.custom.get(&t) {
        let r = c.encoder.bind(v.py()).call1((v,))?;
        let Ok(b) = r.cast::<PyBytes>() else {
            return misfit(format!(
                "the binary encoder given to set_type_codec returned {}, not bytes",
                type_name_of(&r)
            ));
        };
        out.put_slice(b.as_bytes());
        return Ok(());
    }
    if let Some(e) = reg.element(t) {
        return array(v, e, reg, out);
    }
    if t < 16384 {
        if let Some(s) = range_subtype(t) {
            return range(v, s, reg, out);
        }
        if let Some(r) = multirange_range(t) {
            return multirange(v, r, reg, out);
        }
        if t == oid::RECORD {
            return misfit(
                "input of anonymous composite types is not supported; cast the \
                           parameter to a named composite type",
            );
        }
        return scalar::value(v, t, out);
    }
    match reg.user.get(&t).map(|u| &u.kind) {
        Some(Kind::Enum) => scalar::value(v, oid::TEXT, out),
        Some(Kind::Domain(b)) => value(v, *b, reg, out),
        Some(Kind::Range(s)) => range(v, *s, reg, out),
        Some(Kind::Multirange(r)) => multirange(v, *r, reg, out),
        Some(Kind::Composite(fields)) => composite(v, fields, reg, out),
        _ => scalar::value(v, oid::TEXT, out),
    }
}

/// The text form of non-None `v` as type `t`: a str the server parses,
/// or a custom text encoder's result; arrays of such types as `{...}`.
pub(super) fn text(v: &Bound<'_, PyAny>, t: u32, reg: &Registry, out: &mut BytesMut) -> Res<()> {
    if let Some(c) = reg.custom.get(&t) {
        let r = c.encoder.bind(v.py()).call1((v,))?;
        let Ok(s) = r.cast::<PyString>() else {
            return misfit(format!(
                "the text encoder given to set_type_codec returned {}, not str",
                type_name_of(&r)
            ));
        };
        return scalar::put_str(s, out);
    }
    if let Some(e) = reg.element(t) {
        let items = sequence(v)?;
        out.put_u8(b'{');
        let mut one = BytesMut::new();
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            if item.is_none() {
                out.put_slice(b"NULL");
                continue;
            }
            one.clear();
            text(item, e, reg, &mut one)?;
            out.put_u8(b'"');
            for &b in one.iter() {
                if b == b'"' || b == b'\\' {
                    out.put_u8(b'\\');
                }
                out.put_u8(b);
            }
            out.put_u8(b'"');
        }
        out.put_u8(b'}');
        return Ok(());
    }
    if let Some(Kind::Domain(b)) = reg.user.get(&t).map(|u| &u.kind) {
        return text(v, *b, reg, out);
    }
    match v.cast::<PyString>() {
        Ok(s) => scalar::put_str(s, out),
        Err(_) => expected("str", v),
    }
}

/// A list or tuple (or other sized iterable that is not str/bytes/dict).
fn sequence<'py>(v: &Bound<'py, PyAny>) -> Res<Vec<Bound<'py, PyAny>>> {
    if let Ok(l) = v.cast::<PyList>() {
        return Ok(l.iter().collect());
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return Ok(t.iter().collect());
    }
    if v.is_instance_of::<PyString>()
        || v.is_instance_of::<PyBytes>()
        || v.is_instance_of::<PyDict>()
    {
        return expected("a list or tuple", v);
    }
    match v.try_iter() {
        Ok(it) if v.len().is_ok() => Ok(it.collect::<PyResult<Vec<_>>>()?),
        _ => expected("a list or tuple", v),
    }
}

fn is_nested(v: &Bound<'_, PyAny>) -> bool {
    v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()
}

/// An array: nested lists are dimensions (rectangular, at most 6), except
/// where the element type itself takes a tuple (point, range, composite).
fn array(v: &Bound<'_, PyAny>, elem: u32, reg: &Registry, out: &mut BytesMut) -> Res<()> {
    // For element types that are themselves sequences (point, range,
    // composite), only lists are dimensions; tuples are elements.
    let takes_seq = takes_sequence(elem, reg);
    let is_dim = |x: &Bound<'_, PyAny>| {
        if takes_seq {
            x.is_instance_of::<PyList>()
        } else {
            is_nested(x)
        }
    };
    let mut dims: Vec<i32> = Vec::new();
    let mut level = sequence(v)?;
    loop {
        let n = i32::try_from(level.len()).map_err(|_| Fail::Misfit("too many elements".into()))?;
        dims.push(n);
        if dims.len() > 6 {
            return misfit("more than 6 dimensions");
        }
        match level.first() {
            Some(f) if is_dim(f) => level = sequence(f)?,
            _ => break,
        }
    }
    let mut flat: Vec<Bound<'_, PyAny>> = Vec::new();
    flatten(v, &dims, 0, &mut flat)?;
    let has_null = flat.iter().any(|x| x.is_none());
    let ndim = if flat.is_empty() && dims == [0] {
        0
    } else {
        dims.len() as i32
    };
    out.put_i32(ndim);
    out.put_i32(i32::from(has_null));
    out.put_u32(elem);
    if ndim > 0 {
        for d in &dims {
            out.put_i32(*d);
            out.put_i32(1);
        }
    }
    for x in &flat {
        if x.is_none() {
            out.put_i32(-1);
            continue;
        }
        let start = out.len();
        out.put_i32(0);
        value(x, elem, reg, out)?;
        let len = (out.len() - start - 4) as i32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

fn flatten<'py>(
    v: &Bound<'py, PyAny>,
    dims: &[i32],
    d: usize,
    out: &mut Vec<Bound<'py, PyAny>>,
) -> Res<()> {
    let items = sequence(v)?;
    if items.len() != dims[d] as usize {
        return misfit("multi-dimensional arrays must have sub-arrays of matching length");
    }
    for x in items {
        if d + 1 < dims.len() {
            if x.is_none() || !is_nested(&x) {
                return misfit("multi-dimensional arrays must have sub-arrays of matching length");
            }
            flatten(&x, dims, d + 1, out)?;
        } else {
            out.push(x);
        }
    }
    Ok(())
}

/// Element types whose values are themselves tuples or lists.
fn takes_sequence(t: u32, reg: &Registry) -> bool {
    use oid::*;
    if matches!(
        t,
        POINT
            | LSEG
            | PATH
            | BOX
            | POLYGON
            | LINE
            | CIRCLE
            | TID
            | TXID_SNAPSHOT
            | PG_SNAPSHOT
            | INT2VECTOR
            | OIDVECTOR
    ) || range_subtype(t).is_some()
        || multirange_range(t).is_some()
    {
        return true;
    }
    match reg.user.get(&t).map(|u| &u.kind) {
        Some(Kind::Domain(b)) => takes_sequence(*b, reg),
        Some(Kind::Range(_) | Kind::Multirange(_) | Kind::Composite(_)) => true,
        _ => false,
    }
}

fn range_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    RANGE.import(py, "iokernel.pgtypes", "Range")
}

/// A range: an `iokernel.pgtypes.Range` or a `(lower, upper)` pair (`[)`
/// bounds, None for infinite), as asyncpg takes.
fn range(v: &Bound<'_, PyAny>, sub: u32, reg: &Registry, out: &mut BytesMut) -> Res<()> {
    let py = v.py();
    // iokernel's Range, or one like it (asyncpg's).
    let like = v.is_instance(range_type(py)?)? || v.hasattr("isempty")?;
    let (lower, upper, lower_inc, upper_inc, empty) = if like {
        (
            v.getattr("lower")?,
            v.getattr("upper")?,
            v.getattr("lower_inc")?.is_truthy()?,
            v.getattr("upper_inc")?.is_truthy()?,
            v.getattr("isempty")?.is_truthy()?,
        )
    } else if is_nested(v) {
        let items = sequence(v)?;
        match items.len() {
            // As asyncpg: both bounds of a pair are included.
            2 => (items[0].clone(), items[1].clone(), true, true, false),
            1 => (
                items[0].clone(),
                py.None().into_bound(py),
                true,
                false,
                false,
            ),
            0 => (
                py.None().into_bound(py),
                py.None().into_bound(py),
                false,
                false,
                true,
            ),
            _ => return misfit("a range is a Range or a (lower, upper) pair"),
        }
    } else {
        return expected("iokernel.pgtypes.Range or a (lower, upper) tuple", v);
    };
    let mut flags = 0u8;
    if empty {
        out.put_u8(0x01);
        return Ok(());
    }
    if lower.is_none() {
        flags |= 0x08;
    } else if lower_inc {
        flags |= 0x02;
    }
    if upper.is_none() {
        flags |= 0x10;
    } else if upper_inc {
        flags |= 0x04;
    }
    out.put_u8(flags);
    for b in [&lower, &upper] {
        if !b.is_none() {
            let start = out.len();
            out.put_i32(0);
            value(b, sub, reg, out)?;
            let len = (out.len() - start - 4) as i32;
            out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}

fn multirange(v: &Bound<'_, PyAny>, rng: u32, reg: &Registry, out: &mut BytesMut) -> Res<()> {
    let items = sequence(v)?;
    let sub = range_subtype(rng)
        .or_else(|| match reg.user.get(&rng).map(|u| &u.kind) {
            Some(Kind::Range(s)) => Some(*s),
            _ => None,
        })
        .ok_or_else(|| Fail::Misfit(format!("unknown range type {rng}")))?;
    out.put_i32(items.len() as i32);
    for r in &items {
        let start = out.len();
        out.put_i32(0);
        range(r, sub, reg, out)?;
        let len = (out.len() - start - 4) as i32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// A composite from a tuple/list (by position) or a mapping (by name).
fn composite(
    v: &Bound<'_, PyAny>,
    fields: &[(String, u32)],
    reg: &Registry,
    out: &mut BytesMut,
) -> Res<()> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(d) = v.cast::<PyDict>() {
        let py = v.py();
        fields
            .iter()
            .map(|(n, _)| {
                d.get_item(n)
                    .map(|x| x.unwrap_or_else(|| py.None().into_bound(py)))
            })
            .collect::<PyResult<_>>()?
    } else if is_nested(v) || v.hasattr("keys").unwrap_or(false) {
        sequence(v)?
    } else {
        return expected("a tuple or a dict", v);
    };
    if items.len() != fields.len() {
        return misfit(format!(
            "the composite type has {} fields, {} given",
            fields.len(),
            items.len()
        ));
    }
    out.put_i32(fields.len() as i32);
    for (x, (_, t)) in items.iter().zip(fields) {
        out.put_u32(*t);
        if x.is_none() {
            out.put_i32(-1);
            continue;
        }
        let start = out.len();
        out.put_i32(0);
        value(x, *t, reg, out)?;
        let len = (out.len() - start - 4) as i32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// Whether `t` is `DataError` or `InterfaceError`.
pub fn ours(py: Python<'_>, t: &Bound<'_, PyType>) -> bool {
    [&DATA_ERROR, &INTERFACE_ERROR]
        .iter()
        .any(|c| c.get(py).is_ok_and(|c| t.is(c)))
}
