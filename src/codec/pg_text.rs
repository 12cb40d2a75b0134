//! PostgreSQL TEXT-format values: the bytes of one result cell, parsed by the
//! column's type OID into a `Value`. Pure functions, no I/O, no Python.
//!
//! The session is assumed to run with `DateStyle=ISO`, `TimeZone=UTC`,
//! `IntervalStyle=iso_8601`, `extra_float_digits=3`, `client_encoding=UTF8`
//! and the default `bytea_output=hex`, so each type has one predictable text
//! form: `t`/`f`, `\x0a1b`, `2024-02-29`, `0044-03-15 BC`,
//! `2024-01-02 03:04:05.5+00`, `P1Y2M3DT4H5M6.5S`, ... Parsing is strict about
//! those forms (a value that does not fit is an error naming the type and the
//! problem) and exact: timestamps keep their microseconds, intervals their
//! months, days and microseconds separately, numerics their digits as text.
//! A few neighbouring forms are accepted too (offsets like `+05:30:15`, the
//! `escape` bytea output, ISO weeks), since they cost nothing.
//!
//! Arrays (`{1,2,NULL}`, `{{1,2},{3,4}}`, `[0:1]={1,2}`) are parsed in
//! `pg_text_array.rs`; their elements go through `decode` with the element
//! type's OID. Dates, times, timestamps and intervals are parsed in
//! `pg_text_datetime.rs`; this file keeps the other scalar types. Types not
//! listed in `oid` decode to lossy `Value::Text`.

#[path = "pg_text_array.rs"]
mod array;

pub use array::element_oid;

#[path = "pg_text_datetime.rs"]
mod datetime;

use datetime::{parse_date, parse_interval, parse_time, parse_timestamp, Cur};

/// Type OIDs this module knows (from `pg_type.dat`).
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const XML: u32 = 142;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// One decoded cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// int2, int4, int8, oid
    Int(i64),
    /// float4, float8 (NaN and the infinities included)
    Float(f64),
    /// numeric as PostgreSQL printed it: `123.45`, `NaN`, `Infinity`, `-Infinity`
    Numeric(String),
    /// text, varchar, bpchar, name, "char", xml and unknown types
    Text(String),
    Bytes(Vec<u8>),
    /// Proleptic Gregorian; BC years are astronomical (1 BC is year 0).
    Date {
        year: i32,
        month: u8,
        day: u8,
    },
    /// `infinity` (true) or `-infinity` (false)
    DateInfinity(bool),
    /// `hour` is 24 only for `24:00:00`, which PostgreSQL allows.
    Time {
        hour: u8,
        minute: u8,
        second: u8,
        micro: u32,
    },
    /// timestamp without time zone
    Timestamp {
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micro: u32,
    },
    /// timestamp with time zone, normalised to UTC
    TimestampTz {
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micro: u32,
    },
    /// `infinity` (true) or `-infinity` (false), with or without time zone
    TimestampInfinity(bool),
    Interval {
        months: i32,
        days: i32,
        micros: i64,
    },
    Uuid([u8; 16]),
    /// json and jsonb, as text
    Json(String),
    /// One dimension; a multi-dimensional array nests `Array`s.
    Array(Vec<Value>),
}

/// The name PostgreSQL gives the type, for error messages.
pub fn type_name(type_oid: u32) -> &'static str {
    use oid::*;
    match type_oid {
        BOOL => "bool",
        BYTEA => "bytea",
        CHAR => "\"char\"",
        NAME => "name",
        INT8 => "int8",
        INT2 => "int2",
        INT4 => "int4",
        TEXT => "text",
        OID => "oid",
        JSON => "json",
        XML => "xml",
        FLOAT4 => "float4",
        FLOAT8 => "float8",
        BPCHAR => "bpchar",
        VARCHAR => "varchar",
        DATE => "date",
        TIME => "time",
        TIMESTAMP => "timestamp",
        TIMESTAMPTZ => "timestamptz",
        INTERVAL => "interval",
        NUMERIC => "numeric",
        UUID => "uuid",
        JSONB => "jsonb",
        _ => match element_oid(type_oid) {
            Some(e) => array::array_type_name(e),
            None => "unknown type",
        },
    }
}

/// Parse the TEXT-format bytes of one non-NULL cell of type `type_oid`.
/// Errors name the type, show (the start of) the text, and say what is wrong.
pub fn decode(type_oid: u32, text: &[u8]) -> Result<Value, String> {
    use oid::*;
    let fail = |what: &str| bad(type_oid, text, what);
    match type_oid {
        BOOL => match text {
            b"t" | b"true" => Ok(Value::Bool(true)),
            b"f" | b"false" => Ok(Value::Bool(false)),
            _ => Err(fail("expected t or f")),
        },
        INT2 | INT4 | INT8 | OID => utf8(text)
            .and_then(|s| s.parse::<i64>().ok())
            .map(Value::Int)
            .ok_or_else(|| fail("not an integer")),
        FLOAT4 | FLOAT8 => parse_float(text, type_oid == FLOAT4)
            .map(Value::Float)
            .ok_or_else(|| fail("not a number")),
        NUMERIC => match utf8(text) {
            Some(s) if is_numeric(s) => Ok(Value::Numeric(s.to_owned())),
            _ => Err(fail("not a number")),
        },
        TEXT | VARCHAR | BPCHAR | NAME | XML => utf8(text)
            .map(|s| Value::Text(s.to_owned()))
            .ok_or_else(|| fail("invalid UTF-8")),
        JSON | JSONB => utf8(text)
            .map(|s| Value::Json(s.to_owned()))
            .ok_or_else(|| fail("invalid UTF-8")),
        BYTEA => parse_bytea(text).map(Value::Bytes).map_err(&fail),
        DATE => parse_date(text).map_err(&fail),
        TIME => parse_time(text).map_err(&fail),
        TIMESTAMP => parse_timestamp(text, false).map_err(&fail),
        TIMESTAMPTZ => parse_timestamp(text, true).map_err(&fail),
        INTERVAL => parse_interval(text).map_err(|w| fail(&w)),
        UUID => parse_uuid(text)
            .map(Value::Uuid)
            .ok_or_else(|| fail("expected 32 hex digits as 8-4-4-4-12")),
        // "char" prints bytes >= 0x80 as \ooo, but older servers sent them raw.
        CHAR => Ok(Value::Text(String::from_utf8_lossy(text).into_owned())),
        _ => match element_oid(type_oid) {
            Some(elem) => array::decode_array(type_oid, elem, text),
            None => Ok(Value::Text(String::from_utf8_lossy(text).into_owned())),
        },
    }
}

/// `invalid <type> value "<text>": <what>`, with long text cut short.
pub(crate) fn bad(type_oid: u32, text: &[u8], what: &str) -> String {
    const SHOW: usize = 60;
    let shown = String::from_utf8_lossy(&text[..text.len().min(SHOW)]);
    let more = if text.len() > SHOW { "..." } else { "" };
    format!(
        "invalid {} value {shown:?}{more}: {what}",
        type_name(type_oid)
    )
}

fn utf8(text: &[u8]) -> Option<&str> {
    std::str::from_utf8(text).ok()
}

/// A float4 is parsed as f32 and widened, so `0.1` gives the value the
/// server stores (0.10000000149011612), as binary-format drivers return.
fn parse_float(text: &[u8], single: bool) -> Option<f64> {
    match text {
        b"NaN" => return Some(f64::NAN),
        b"Infinity" => return Some(f64::INFINITY),
        b"-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    // Rust also accepts "inf", "nan" and friends: insist on a digit first.
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let first = *digits.first()?;
    if !(first.is_ascii_digit() || first == b'.') {
        return None;
    }
    let s = utf8(text)?;
    if single {
        s.parse::<f32>().ok().map(f64::from)
    } else {
        s.parse().ok()
    }
}

/// `-?digits[.digits][e[+-]digits]` or one of the special values.
fn is_numeric(s: &str) -> bool {
    if matches!(s, "NaN" | "Infinity" | "-Infinity") {
        return true;
    }
    let b = s.as_bytes();
    let mut c = Cur::new(b);
    c.eat(b'-');
    let int = c.run(|x| x.is_ascii_digit());
    let frac = if c.eat(b'.') {
        c.run(|x| x.is_ascii_digit())
    } else {
        0
    };
    if int + frac == 0 {
        return false;
    }
    if c.eat(b'e') || c.eat(b'E') {
        let _ = c.eat(b'-') || c.eat(b'+');
        if c.run(|x| x.is_ascii_digit()) == 0 {
            return false;
        }
    }
    c.done()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `\x` + hex pairs (hex output), else the `escape` output (`\\`, `\ooo`).
fn parse_bytea(text: &[u8]) -> Result<Vec<u8>, &'static str> {
    if let Some(hex) = text.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err("odd number of hex digits");
        }
        return hex
            .chunks_exact(2)
            .map(|p| Some(hex_val(p[0])? << 4 | hex_val(p[1])?))
            .collect::<Option<Vec<u8>>>()
            .ok_or("invalid hex digit");
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'\\' {
            out.push(text[i]);
            i += 1;
        } else if text.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let o = text.get(i + 1..i + 4).ok_or("truncated escape")?;
            if !o.iter().all(|d| (b'0'..=b'7').contains(d)) || o[0] > b'3' {
                return Err("invalid escape");
            }
            out.push((o[0] - b'0') << 6 | (o[1] - b'0') << 3 | (o[2] - b'0'));
            i += 4;
        }
    }
    Ok(out)
}

fn parse_uuid(text: &[u8]) -> Option<[u8; 16]> {
    let hex: Vec<u8> = match text.len() {
        32 => text.to_vec(),
        36 if [8, 13, 18, 23].iter().all(|&i| text[i] == b'-') => text
            .iter()
            .enumerate()
            .filter(|(i, _)| ![8, 13, 18, 23].contains(i))
            .map(|(_, &b)| b)
            .collect(),
        _ => return None,
    };
    let mut out = [0u8; 16];
    for (o, p) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = hex_val(p[0])? << 4 | hex_val(p[1])?;
    }
    Some(out)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
pub(crate) fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of `days_from_civil`.
pub(crate) fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
#[path = "pg_text_tests.rs"]
mod tests;

/// A TEXT-format array whose elements are parsed as type `elem` (any
/// array type: e.g. an extension type's array, elements as `TEXT`).
pub fn decode_array_of(elem: u32, text: &[u8]) -> Result<Value, String> {
    array::decode_array(0, elem, text)
}
