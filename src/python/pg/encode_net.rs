//! inet/cidr (`inet_recv`: family, bits, is_cidr, length, address) from
//! `ipaddress` objects or str, and macaddr/macaddr8 from str.

use bytes::{BufMut, BytesMut};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyString};

use super::scalar::{ip_interface, ip_network};
use super::{expected, misfit, Res};

pub fn put_inet(v: &Bound<'_, PyAny>, cidr: bool, out: &mut BytesMut) -> Res<()> {
    let py = v.py();
    if v.is_instance_of::<PyBool>() {
        // ipaddress would take True as the address 1 (asyncpg stores
        // 0.0.0.1): a bool is never meant as an address.
        return expected("an ipaddress address, interface or network, or str", v);
    }
    let obj = if v.is_instance_of::<PyString>() {
        let f = if cidr {
            ip_network(py)?
        } else {
            ip_interface(py)?
        };
        match f.call1((v,)) {
            Ok(o) => o,
            Err(e) => return misfit(e.value(py).to_string()),
        }
    } else {
        v.clone()
    };
    let (addr, bits) = if obj.hasattr(intern!(py, "network_address"))? {
        (
            obj.getattr(intern!(py, "network_address"))?,
            obj.getattr(intern!(py, "prefixlen"))?,
        )
    } else if obj.hasattr(intern!(py, "network"))? && obj.hasattr(intern!(py, "ip"))? {
        let net = obj.getattr(intern!(py, "network"))?;
        (
            obj.getattr(intern!(py, "ip"))?,
            net.getattr(intern!(py, "prefixlen"))?,
        )
    } else if obj.hasattr(intern!(py, "packed"))? && obj.hasattr(intern!(py, "max_prefixlen"))? {
        (obj.clone(), obj.getattr(intern!(py, "max_prefixlen"))?)
    } else {
        // Anything ipaddress takes (an int, as asyncpg allows).
        let f = if cidr {
            ip_network(py)?
        } else {
            ip_interface(py)?
        };
        let Ok(o) = f.call1((&obj,)) else {
            return expected("an ipaddress address, interface or network, or str", v);
        };
        return put_inet(&o, cidr, out);
    };
    let packed = addr.getattr(intern!(py, "packed"))?;
    let packed = packed.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes();
    let bits: u8 = bits.extract()?;
    out.put_u8(if packed.len() == 4 { 2 } else { 3 });
    out.put_u8(bits);
    out.put_u8(u8::from(cidr));
    out.put_u8(packed.len() as u8);
    out.put_slice(packed);
    Ok(())
}

pub fn put_mac(v: &Bound<'_, PyAny>, n: usize, out: &mut BytesMut) -> Res<()> {
    let Ok(s) = v.cast::<PyString>() else {
        return expected("str", v);
    };
    let s = s.to_str()?;
    let hex: Vec<u8> = s
        .bytes()
        .filter(|c| !matches!(c, b':' | b'-' | b'.'))
        .collect();
    let bad = || misfit(format!("invalid MAC address {s:?}"));
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return bad();
    }
    let mut bytes: Vec<u8> = hex
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap_or("x"), 16).unwrap_or(0))
        .collect();
    if hex.len() % 2 != 0 {
        return bad();
    }
    if n == 8 && bytes.len() == 6 {
        bytes.splice(3..3, [0xff, 0xfe]);
    }
    if bytes.len() != n {
        return bad();
    }
    out.put_slice(&bytes);
    Ok(())
}
