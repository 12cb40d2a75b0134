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
//! type's OID. Types not listed in `oid` decode to lossy `Value::Text`.

#[path = "pg_text_array.rs"]
mod array;

pub use array::element_oid;

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
        TIME => {
            let mut c = Cur::new(text);
            let (hour, minute, second, micro) = c.time().ok_or_else(|| fail(HMS))?;
            if !c.done() {
                return Err(fail("unexpected text after the time"));
            }
            Ok(Value::Time {
                hour,
                minute,
                second,
                micro,
            })
        }
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

const HMS: &str = "expected HH:MM:SS[.ffffff]";

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

/// A cursor over ASCII text, for the date/time grammars.
struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn new(s: &'a [u8]) -> Self {
        Cur { s, i: 0 }
    }
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }
    fn eat_str(&mut self, s: &[u8]) -> bool {
        let hit = self.s[self.i..].starts_with(s);
        if hit {
            self.i += s.len();
        }
        hit
    }
    /// Skip bytes matching `f`; how many.
    fn run(&mut self, f: impl Fn(u8) -> bool) -> usize {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        self.i - start
    }
    /// Between `min` and `max` (at most 18) decimal digits.
    fn num(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.i;
        let n = self.run(|b| b.is_ascii_digit());
        if n < min || n > max {
            return None;
        }
        Some(
            self.s[start..self.i]
                .iter()
                .fold(0, |a, &d| a * 10 + i64::from(d - b'0')),
        )
    }
    /// `.ffffff` (1 to 6 digits) as microseconds, 0 if absent.
    fn micros(&mut self) -> Option<u32> {
        if !self.eat(b'.') {
            return Some(0);
        }
        let start = self.i;
        let f = self.num(1, 6)?;
        Some((f * 10i64.pow((6 - (self.i - start)) as u32)) as u32)
    }
    /// `YYYY-MM-DD` (4 to 9 year digits), checked; the year is as printed.
    fn date(&mut self) -> Option<(i64, u8, u8)> {
        let y = self.num(4, 9)?;
        let m = self.eat(b'-').then(|| self.num(2, 2))??;
        let d = self.eat(b'-').then(|| self.num(2, 2))??;
        (y >= 1 && (1..=12).contains(&m) && d >= 1 && d <= max_day(m as u8))
            .then_some((y, m as u8, d as u8))
    }
    /// `HH:MM:SS[.ffffff]`, checked; `24:00:00` allowed.
    fn time(&mut self) -> Option<(u8, u8, u8, u32)> {
        let h = self.num(2, 2)?;
        let mi = self.eat(b':').then(|| self.num(2, 2))??;
        let s = self.eat(b':').then(|| self.num(2, 2))??;
        let us = self.micros()?;
        let ok = (h < 24 || (h == 24 && mi == 0 && s == 0 && us == 0)) && mi < 60 && s < 60;
        ok.then_some((h as u8, mi as u8, s as u8, us))
    }
}

fn is_leap(astro_year: i64) -> bool {
    astro_year.rem_euclid(4) == 0
        && (astro_year.rem_euclid(100) != 0 || astro_year.rem_euclid(400) == 0)
}

/// The most days the month can have; February 29th is checked later, once
/// the ` BC` suffix has told which (astronomical) year it is.
fn max_day(month: u8) -> i64 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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

/// The printed year and the ` BC` suffix to an astronomical year, checking
/// the day of February 29th against the real (astronomical) leap years.
fn astro_year(c: &mut Cur<'_>, y: i64, m: u8, d: u8) -> Result<i32, &'static str> {
    let y = if c.eat_str(b" BC") { 1 - y } else { y };
    if m == 2 && d == 29 && !is_leap(y) {
        return Err("February 29th in a year that is not a leap year");
    }
    i32::try_from(y).map_err(|_| "year out of range")
}

fn parse_date(text: &[u8]) -> Result<Value, &'static str> {
    match text {
        b"infinity" => return Ok(Value::DateInfinity(true)),
        b"-infinity" => return Ok(Value::DateInfinity(false)),
        _ => {}
    }
    let mut c = Cur::new(text);
    let (y, month, day) = c.date().ok_or("expected YYYY-MM-DD")?;
    let year = astro_year(&mut c, y, month, day)?;
    if !c.done() {
        return Err("unexpected text after the date");
    }
    Ok(Value::Date { year, month, day })
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, then for timestamptz an offset
/// `+HH[:MM[:SS]]`, then ` BC`. Timestamptz values are moved to UTC.
fn parse_timestamp(text: &[u8], tz: bool) -> Result<Value, &'static str> {
    match text {
        b"infinity" => return Ok(Value::TimestampInfinity(true)),
        b"-infinity" => return Ok(Value::TimestampInfinity(false)),
        _ => {}
    }
    let mut c = Cur::new(text);
    let (y, month, day) = c.date().ok_or("expected YYYY-MM-DD HH:MM:SS")?;
    if !c.eat(b' ') && !c.eat(b'T') {
        return Err("expected YYYY-MM-DD HH:MM:SS");
    }
    let (hour, minute, second, micro) = c.time().ok_or(HMS)?;
    let offset = if tz {
        let sign = match c.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err("expected a UTC offset like +00 or -08:00"),
        };
        c.i += 1;
        let h = c.num(2, 2).ok_or("invalid UTC offset")?;
        let m = if c.eat(b':') {
            c.num(2, 2).ok_or("invalid UTC offset")?
        } else {
            0
        };
        let s = if c.eat(b':') {
            c.num(2, 2).ok_or("invalid UTC offset")?
        } else {
            0
        };
        if m >= 60 || s >= 60 {
            return Err("invalid UTC offset");
        }
        sign * (h * 3600 + m * 60 + s)
    } else {
        0
    };
    let year = astro_year(&mut c, y, month, day)?;
    if !c.done() {
        return Err("unexpected text after the timestamp");
    }
    if !tz {
        return Ok(Value::Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        });
    }
    let secs = days_from_civil(year.into(), month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - offset;
    let (y, month, day) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    Ok(Value::TimestampTz {
        year: i32::try_from(y).map_err(|_| "year out of range")?,
        month,
        day,
        hour: (tod / 3600) as u8,
        minute: (tod / 60 % 60) as u8,
        second: (tod % 60) as u8,
        micro,
    })
}

/// ISO 8601 `P[nY][nM][nW][nD][T[nH][nM][n[.f]S]]`, each number with its own
/// sign, only the seconds with a fraction; `PT0S` is zero.
fn parse_interval(text: &[u8]) -> Result<Value, String> {
    let mut c = Cur::new(text);
    if !c.eat(b'P') {
        return Err("expected ISO 8601 form P...".into());
    }
    let (mut months, mut days, mut micros) = (0i128, 0i128, 0i128);
    let mut in_time = false;
    let mut rank = 0; // the designators must come in order, each once
    let mut any = false;
    while !c.done() {
        if !in_time && c.eat(b'T') {
            in_time = true;
            continue;
        }
        let neg = c.eat(b'-');
        if !neg {
            c.eat(b'+');
        }
        let n = i128::from(c.num(1, 18).ok_or("expected a number")?);
        let frac = if in_time && c.peek() == Some(b'.') {
            Some(i128::from(c.micros().ok_or("at most 6 fraction digits")?))
        } else {
            None
        };
        let unit = c.peek().ok_or("number without a unit")?;
        c.i += 1;
        let (r, scale) = match (in_time, unit) {
            (false, b'Y') => (1, 12),
            (false, b'M') => (2, 1),
            (false, b'W') => (3, 7),
            (false, b'D') => (4, 1),
            (true, b'H') => (5, 3_600_000_000),
            (true, b'M') => (6, 60_000_000),
            (true, b'S') => (7, 1_000_000),
            _ => return Err(format!("unexpected unit {:?}", char::from(unit))),
        };
        if r <= rank {
            return Err(format!("unit {:?} out of order", char::from(unit)));
        }
        if frac.is_some() && r != 7 {
            return Err("only seconds may have a fraction".into());
        }
        rank = r;
        any = true;
        let v = n * scale + frac.unwrap_or(0);
        let v = if neg { -v } else { v };
        match r {
            1 | 2 => months += v,
            3 | 4 => days += v,
            _ => micros += v,
        }
    }
    if !any {
        return Err("no components".into());
    }
    if in_time && rank < 5 {
        return Err("nothing after T".into());
    }
    Ok(Value::Interval {
        months: i32::try_from(months).map_err(|_| "months out of range")?,
        days: i32::try_from(days).map_err(|_| "days out of range")?,
        micros: i64::try_from(micros).map_err(|_| "time out of range")?,
    })
}

#[cfg(test)]
#[path = "pg_text_tests.rs"]
mod tests;
