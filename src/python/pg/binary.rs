//! Binary parameters for `executemany`, where the server's time per row is
//! what the batch costs: a binary int or float8 skips the server's text
//! parsing (strtod for floats), bytea skips hex, uuid skips its text form.
//!
//! Only for a parameter whose type the server reported (Describe) and a
//! Python value of exactly the matching kind; anything else is sent as text,
//! as every other query does. The caller declares the described types in
//! its Parse, so the server reads the bytes as the type they were encoded
//! for even if the schema changed in between (it then casts or refuses).

use bytes::{BufMut, BytesMut};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyFloat, PyInt};

use super::uuid_obj;
use super::values::{encode_param, uuid_type};

const BOOL: u32 = 16;
const BYTEA: u32 = 17;
const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;
const FLOAT8: u32 = 701;
const UUID: u32 = 2950;

/// A Bind parameter section for `row` (format codes per parameter, then the
/// values), binary where `types` allow it.
pub fn bind_params(row: &[Bound<'_, PyAny>], types: &[u32], out: &mut BytesMut) -> PyResult<()> {
    let n = row.len() as u16;
    out.put_u16(n);
    let formats = out.len();
    out.put_bytes(0, 2 * row.len());
    out.put_u16(n);
    for (i, v) in row.iter().enumerate() {
        let oid = types.get(i).copied().unwrap_or(0);
        if put_binary(v, oid, out)? {
            out[formats + 2 * i + 1] = 1;
        } else {
            encode_param(v, out)?;
        }
    }
    Ok(())
}

/// Append `v` as a length-prefixed binary value of type `oid`; false (and
/// nothing appended) when it is not one this module sends in binary.
pub(super) fn put_binary(v: &Bound<'_, PyAny>, oid: u32, out: &mut BytesMut) -> PyResult<bool> {
    match oid {
        INT2 | INT4 | INT8 => {
            // Exactly int: bool is an int subclass but means something else.
            let Ok(i) = v.cast_exact::<PyInt>() else {
                return Ok(false);
            };
            let Ok(x) = i.extract::<i64>() else {
                return Ok(false); // out of range: the server says so, from text
            };
            match oid {
                INT2 => match i16::try_from(x) {
                    Ok(x) => put(out, &x.to_be_bytes()),
                    Err(_) => return Ok(false),
                },
                INT4 => match i32::try_from(x) {
                    Ok(x) => put(out, &x.to_be_bytes()),
                    Err(_) => return Ok(false),
                },
                _ => put(out, &x.to_be_bytes()),
            }
        }
        FLOAT8 => match v.cast_exact::<PyFloat>() {
            Ok(f) => put(out, &f.value().to_be_bytes()),
            Err(_) => return Ok(false),
        },
        BOOL => match v.cast_exact::<PyBool>() {
            Ok(b) => put(out, &[u8::from(b.is_true())]),
            Err(_) => return Ok(false),
        },
        BYTEA => {
            // Over 2 GiB: the text path says it is too long.
            if let Ok(b) = v.cast_exact::<PyBytes>() {
                if i32::try_from(b.as_bytes().len()).is_err() {
                    return Ok(false);
                }
                put(out, b.as_bytes());
            } else if let Ok(b) = v.cast_exact::<PyByteArray>() {
                let bytes = b.to_vec();
                if i32::try_from(bytes.len()).is_err() {
                    return Ok(false);
                }
                put(out, &bytes);
            } else {
                return Ok(false);
            }
        }
        UUID => {
            if let Some(b) = uuid_obj::bytes_of(v) {
                put(out, &b);
                return Ok(true);
            }
            if !v.get_type().is(uuid_type(v.py())?) {
                return Ok(false);
            }
            let b = v.getattr(intern!(v.py(), "bytes"))?;
            let b = b.cast::<PyBytes>()?.as_bytes();
            if b.len() != 16 {
                return Ok(false);
            }
            put(out, b);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn put(out: &mut BytesMut, value: &[u8]) {
    out.put_i32(value.len() as i32);
    out.put_slice(value);
}
