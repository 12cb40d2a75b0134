//! numeric in binary (`numeric_recv`): base-10000 digit groups, the weight
//! of the first group, a sign word and the display scale; from a Decimal,
//! int, float or str (asyncpg takes the same).

use bytes::{BufMut, BytesMut};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFloat, PyInt, PyString, PyTuple, PyType};

use super::{misfit, type_name_of, Res};

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const POS: u16 = 0x0000;
const NEG: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const NINF: u16 = 0xF000;

pub fn put(v: &Bound<'_, PyAny>, out: &mut BytesMut) -> Res<()> {
    let py = v.py();
    let dec = DECIMAL.import(py, "decimal", "Decimal")?;
    let d = if v.is_instance(dec)? {
        v.clone()
    } else if v.is_instance_of::<PyInt>()
        || v.is_instance_of::<PyString>()
        || v.is_instance_of::<PyFloat>()
    {
        // A float exactly (0.1 is 0.1000000000000000055511...), as asyncpg.
        match dec.call1((v,)) {
            Ok(d) => d,
            Err(e) => return misfit(format!("not a number: {}", e.value(py))),
        }
    } else {
        return misfit(format!(
            "expected decimal.Decimal, int, float or str, got {}",
            type_name_of(v)
        ));
    };
    let t = d.call_method0(intern!(py, "as_tuple"))?;
    let t = t.cast::<PyTuple>().map_err(PyErr::from)?;
    let sign: u8 = t.get_item(0)?.extract()?;
    let exp = t.get_item(2)?;
    if let Ok(code) = exp.extract::<String>() {
        let w = match code.as_str() {
            "F" if sign == 0 => PINF,
            "F" => NINF,
            _ => NAN,
        };
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(w);
        out.put_u16(0);
        return Ok(());
    }
    let e: i64 = exp.extract()?;
    let digits: Vec<u8> = t.get_item(1)?.extract()?;
    encode(sign != 0, &digits, e, out)
}

/// `digits` × 10^`e`.
fn encode(neg: bool, digits: &[u8], e: i64, out: &mut BytesMut) -> Res<()> {
    let dscale = (-e).max(0);
    if dscale > 0x3FFF || e > 131_072 + 4 || digits.len() > 200_000 {
        return misfit("numeric out of PostgreSQL's range");
    }
    let n = digits.len() as i64;
    let p = n + e; // digits before the point
    let lp = (4 - p.rem_euclid(4)) % 4;
    let mut d: Vec<u8> = vec![0; lp as usize];
    d.extend_from_slice(digits);
    let p = p + lp;
    while (d.len() as i64) < p {
        d.push(0);
    }
    while (d.len() as i64 - p) % 4 != 0 {
        d.push(0);
    }
    let mut groups: Vec<u16> = d
        .chunks(4)
        .map(|c| c.iter().fold(0u16, |a, &x| a * 10 + u16::from(x)))
        .collect();
    let mut weight = p / 4 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.put_i16(groups.len() as i16);
    out.put_i16(weight as i16);
    out.put_u16(if neg && !groups.is_empty() { NEG } else { POS });
    out.put_u16(dscale as u16);
    for g in groups {
        out.put_u16(g);
    }
    Ok(())
}
