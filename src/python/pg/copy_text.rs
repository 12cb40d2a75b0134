//! The text COPY form of a value whose type has a binary encoder, for a
//! table that must go in the text COPY format (one of its columns has a
//! text-only type: money, macaddr, an extension's type; asyncpg refuses
//! such a table altogether). The value is first encoded as a parameter
//! would be (`encode::value`: same checks, same refusals), then that
//! binary form is written as the text PostgreSQL reads back to the same
//! value. Types without such a rewrite here (arrays, ranges, geometry,
//! network, bit strings, composites ...) are refused in such a table with
//! a message saying why, never written in some other form.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use crate::python::pg::encode::{self, misfit, Res};
use crate::python::pg::types::{oid, Kind, Registry};
use pyo3::prelude::*;

/// Microseconds per day.
const DAY_US: i64 = 86_400_000_000;

/// Append the text form of non-None `v` as type `t` (binary-capable).
pub(super) fn text_of(v: &Bound<'_, PyAny>, t: u32, reg: &Registry, out: &mut BytesMut) -> Res<()> {
    let base = base_type(t, reg);
    let mut bin = BytesMut::new();
    encode::value(v, t, reg, &mut bin)?;
    let b = &bin[..];
    let s: String = match base {
        Some(
            oid::TEXT
            | oid::VARCHAR
            | oid::BPCHAR
            | oid::NAME
            | oid::XML
            | oid::JSON
            | oid::UNKNOWN,
        )
        | None => {
            out.put_slice(b);
            return Ok(());
        }
        Some(oid::JSONB) => {
            out.put_slice(b.get(1..).unwrap_or_default());
            return Ok(());
        }
        Some(oid::CHAR) => match b.first() {
            Some(&c) if (1..0x80).contains(&c) => (c as char).to_string(),
            _ => return misfit("only an ASCII \"char\" can be copied in the text format"),
        },
        Some(oid::BOOL) => if b == [1] { "t" } else { "f" }.to_string(),
        Some(oid::INT2) => i16::from_be_bytes(arr(b)).to_string(),
        Some(oid::INT4) => i32::from_be_bytes(arr(b)).to_string(),
        Some(oid::INT8) => i64::from_be_bytes(arr(b)).to_string(),
        Some(oid::OID | oid::XID | oid::CID) => u32::from_be_bytes(arr(b)).to_string(),
        Some(oid::XID8) => u64::from_be_bytes(arr(b)).to_string(),
        Some(oid::PG_LSN) => {
            let x = u64::from_be_bytes(arr(b));
            format!("{:X}/{:X}", x >> 32, x & 0xffff_ffff)
        }
        Some(oid::FLOAT4) => float(f64::from(f32::from_be_bytes(arr(b))), true),
        Some(oid::FLOAT8) => float(f64::from_be_bytes(arr(b)), false),
        Some(oid::BYTEA) => {
            let mut s = String::with_capacity(2 + 2 * b.len());
            s.push_str("\\x");
            for x in b {
                let _ = write!(s, "{x:02x}");
            }
            s
        }
        Some(oid::UUID) => {
            let mut s = String::with_capacity(36);
            for (i, x) in b.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    s.push('-');
                }
                let _ = write!(s, "{x:02x}");
            }
            s
        }
        Some(oid::NUMERIC) => numeric(b),
        Some(oid::DATE) => match i32::from_be_bytes(arr(b)) {
            i32::MAX => "infinity".into(),
            i32::MIN => "-infinity".into(),
            d => date(i64::from(d)),
        },
        Some(oid::TIMESTAMP | oid::TIMESTAMPTZ) => match i64::from_be_bytes(arr(b)) {
            i64::MAX => "infinity".into(),
            i64::MIN => "-infinity".into(),
            us => {
                let (d, tod) = (us.div_euclid(DAY_US), us.rem_euclid(DAY_US));
                let tz = if base == Some(oid::TIMESTAMPTZ) {
                    "+00"
                } else {
                    ""
                };
                format!("{} {}{tz}", date(d), time(tod))
            }
        },
        Some(oid::TIME) => time(i64::from_be_bytes(arr(b))),
        Some(oid::TIMETZ) => {
            let us = i64::from_be_bytes(arr(b));
            // Seconds west of UTC, as the binary form keeps it.
            let west = i32::from_be_bytes(arr(b.get(8..).unwrap_or_default()));
            let east = -i64::from(west);
            let a = east.abs();
            let sign = if east < 0 { '-' } else { '+' };
            format!(
                "{}{sign}{:02}:{:02}:{:02}",
                time(us),
                a / 3600,
                a / 60 % 60,
                a % 60
            )
        }
        Some(oid::INTERVAL) => {
            let us = i64::from_be_bytes(arr(b));
            let days = i32::from_be_bytes(arr(b.get(8..).unwrap_or_default()));
            let months = i32::from_be_bytes(arr(b.get(12..).unwrap_or_default()));
            format!("{months} mons {days} days {us} microseconds")
        }
        Some(other) => {
            return misfit(format!(
                "a value of type {} cannot be copied in the text COPY format, which this table \
                 needs for its text-only column(s); copy those columns separately, or use \
                 executemany",
                reg.name(other)
            ))
        }
    };
    out.put_slice(s.as_bytes());
    Ok(())
}

/// The built-in type `t` is written as (domains as their base, enums as
/// text: None), or the type itself when it is not one of those.
fn base_type(t: u32, reg: &Registry) -> Option<u32> {
    if reg.custom.contains_key(&t) || reg.element(t).is_some() {
        return Some(t); // refused above (not a scalar written here)
    }
    match reg.user.get(&t).map(|u| &u.kind) {
        Some(Kind::Enum) => None,
        Some(Kind::Domain(b)) => base_type(*b, reg),
        _ => Some(t),
    }
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    b.get(..N).and_then(|s| s.try_into().ok()).unwrap_or([0; N])
}

/// Shortest text that reads back as the same float (`f32` for float4).
fn float(x: f64, single: bool) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if single {
        format!("{:e}", x as f32)
    } else {
        format!("{x:e}")
    }
}

/// `YYYY-MM-DD` of `d` days after 2000-01-01 (years before 1: "BC").
fn date(d: i64) -> String {
    // Days since 1970-01-01, then the civil date (Howard Hinnant's method).
    let z = d + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year <= 0 {
        format!("{:04}-{month:02}-{day:02} BC", 1 - year)
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    }
}

/// `HH:MM:SS.ffffff` of microseconds since midnight.
fn time(us: i64) -> String {
    let s = us / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        us % 1_000_000
    )
}

/// The text of a binary numeric: digits base 10000 from `weight` down,
/// `dscale` decimals.
fn numeric(b: &[u8]) -> String {
    let n = usize::from(u16::from_be_bytes(arr(b)));
    let weight = i64::from(i16::from_be_bytes(arr(b.get(2..).unwrap_or_default())));
    let sign = u16::from_be_bytes(arr(b.get(4..).unwrap_or_default()));
    let dscale = usize::from(u16::from_be_bytes(arr(b.get(6..).unwrap_or_default())));
    match sign {
        0xC000 => return "NaN".into(),
        0xD000 => return "Infinity".into(),
        0xF000 => return "-Infinity".into(),
        _ => {}
    }
    let digit = |i: i64| -> u16 {
        if i < 0 || i as usize >= n {
            return 0;
        }
        let at = 8 + 2 * i as usize;
        u16::from_be_bytes(arr(b.get(at..).unwrap_or_default()))
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                let _ = write!(s, "{}", digit(i));
            } else {
                let _ = write!(s, "{:04}", digit(i));
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i));
            i += 1;
        }
        frac.truncate(dscale);
        s.push_str(&frac);
    }
    s
}
