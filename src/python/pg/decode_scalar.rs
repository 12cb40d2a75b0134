//! Binary numeric and inet/cidr values to Python (see `decode.rs`).

use std::fmt::Write;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;

use super::Rd;
use crate::codec::pg_text::Value;
use crate::python::pg::types::oid::CIDR;
use crate::python::pg::values::to_python;

static IP_ADDRESS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static IP_INTERFACE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static IP_NETWORK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

pub(super) fn numeric(py: Python<'_>, r: &mut Rd<'_>) -> PyResult<Py<PyAny>> {
    let n = r.i16()?.max(0) as usize;
    let weight = i64::from(r.i16()?);
    let sign = r.u16()?;
    let dscale = usize::from(r.u16()?);
    let mut groups = Vec::with_capacity(n);
    for _ in 0..n {
        groups.push(r.u16()?);
    }
    let s = match sign {
        0xC000 => "NaN".to_string(),
        0xD000 => "Infinity".to_string(),
        0xF000 => "-Infinity".to_string(),
        _ => {
            // Digits straight into one buffer (no string per group).
            let mut s = String::with_capacity(4 * (n + 2) + dscale);
            if sign == 0x4000 {
                s.push('-');
            }
            let g = |i: i64| -> u16 {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| groups.get(i))
                    .copied()
                    .unwrap_or(0)
            };
            if weight < 0 {
                s.push('0');
            } else {
                for i in 0..=weight {
                    let _ = if i == 0 {
                        write!(s, "{}", g(0))
                    } else {
                        write!(s, "{:04}", g(i))
                    };
                }
            }
            if dscale > 0 {
                s.push('.');
                let end = s.len() + dscale;
                let mut i = weight + 1;
                while s.len() < end {
                    let _ = write!(s, "{:04}", g(i));
                    i += 1;
                }
                s.truncate(end);
            }
            s
        }
    };
    to_python(py, Value::Numeric(s))
}

pub(super) fn inet(py: Python<'_>, t: u32, r: &mut Rd<'_>) -> PyResult<Py<PyAny>> {
    let _family = r.u8()?;
    let bits = r.u8()?;
    let _is_cidr = r.u8()?;
    let nb = usize::from(r.u8()?);
    if nb != 4 && nb != 16 {
        return Err(PyValueError::new_err("malformed inet value"));
    }
    let addr = r.take(nb)?;
    let packed = PyBytes::new(py, addr);
    let max = (nb * 8) as u8;
    if t == CIDR {
        let a = IP_ADDRESS
            .import(py, "ipaddress", "ip_address")?
            .call1((packed,))?;
        return Ok(IP_NETWORK
            .import(py, "ipaddress", "ip_network")?
            .call1(((a, bits),))?
            .unbind());
    }
    let a = IP_ADDRESS
        .import(py, "ipaddress", "ip_address")?
        .call1((packed,))?;
    if bits == max {
        return Ok(a.unbind());
    }
    Ok(IP_INTERFACE
        .import(py, "ipaddress", "ip_interface")?
        .call1(((a, bits),))?
        .unbind())
}
