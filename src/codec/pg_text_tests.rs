//! Byte-vector tests for the TEXT-format decoder: every type, the forms a
//! PostgreSQL 15 server prints with the session settings we use (copied from
//! psql output), and the errors for what does not fit.

use super::oid::*;
use super::*;

pub(super) fn ok(type_oid: u32, text: &str) -> Value {
    decode(type_oid, text.as_bytes())
        .unwrap_or_else(|e| panic!("{} {text:?}: {e}", type_name(type_oid)))
}

/// Decoding fails and the message contains each of `parts`.
pub(super) fn err(type_oid: u32, text: &[u8], parts: &[&str]) {
    let e = match decode(type_oid, text) {
        Ok(v) => panic!("{} {text:?} decoded to {v:?}", type_name(type_oid)),
        Err(e) => e,
    };
    for p in parts {
        assert!(e.contains(p), "{e:?} lacks {p:?}");
    }
}

pub(super) fn text(s: &str) -> Value {
    Value::Text(s.into())
}

pub(super) fn date(year: i32, month: u8, day: u8) -> Value {
    Value::Date { year, month, day }
}

pub(super) fn ts(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> Value {
    Value::Timestamp {
        year: y,
        month: mo,
        day: d,
        hour: h,
        minute: mi,
        second: s,
        micro: us,
    }
}

pub(super) fn tstz(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> Value {
    Value::TimestampTz {
        year: y,
        month: mo,
        day: d,
        hour: h,
        minute: mi,
        second: s,
        micro: us,
    }
}

pub(super) fn iv(months: i32, days: i32, micros: i64) -> Value {
    Value::Interval {
        months,
        days,
        micros,
    }
}

pub(super) fn arr(v: Vec<Value>) -> Value {
    Value::Array(v)
}

#[test]
fn bool_values() {
    assert_eq!(ok(BOOL, "t"), Value::Bool(true));
    assert_eq!(ok(BOOL, "f"), Value::Bool(false));
    assert_eq!(ok(BOOL, "true"), Value::Bool(true));
    err(BOOL, b"", &["bool", "expected t or f"]);
    err(BOOL, b"T", &["invalid bool value \"T\""]);
    err(BOOL, b"yes", &["bool"]);
}

#[test]
fn integers() {
    for t in [INT2, INT4, INT8, OID] {
        assert_eq!(ok(t, "0"), Value::Int(0));
        assert_eq!(ok(t, "-32768"), Value::Int(-32768));
    }
    assert_eq!(ok(INT8, "9223372036854775807"), Value::Int(i64::MAX));
    assert_eq!(ok(INT8, "-9223372036854775808"), Value::Int(i64::MIN));
    assert_eq!(ok(OID, "4294967295"), Value::Int(4_294_967_295));
    err(INT8, b"9223372036854775808", &["int8", "not an integer"]);
    err(INT4, b"", &["int4"]);
    err(INT4, b"1.5", &["int4", "\"1.5\""]);
    err(INT2, b" 1", &["int2"]);
    err(INT4, b"\xff", &["int4"]);
}

#[test]
fn floats() {
    assert_eq!(ok(FLOAT8, "0.1"), Value::Float(0.1));
    assert_eq!(ok(FLOAT4, "0.1"), Value::Float(f64::from(0.1f32)));
    assert_eq!(
        ok(FLOAT4, "3.4028235e+38"),
        Value::Float(f64::from(f32::MAX))
    );
    assert_eq!(ok(FLOAT4, "1.5"), Value::Float(1.5));
    assert_eq!(ok(FLOAT8, "1e+300"), Value::Float(1e300));
    assert_eq!(ok(FLOAT8, "1e-300"), Value::Float(1e-300));
    assert_eq!(ok(FLOAT8, "123456789012"), Value::Float(123_456_789_012.0));
    assert_eq!(ok(FLOAT4, "1e+20"), Value::Float(f64::from(1e20f32)));
    assert_eq!(ok(FLOAT8, "Infinity"), Value::Float(f64::INFINITY));
    assert_eq!(ok(FLOAT4, "-Infinity"), Value::Float(f64::NEG_INFINITY));
    match ok(FLOAT8, "-0") {
        Value::Float(f) => assert!(f == 0.0 && f.is_sign_negative()),
        v => panic!("{v:?}"),
    }
    match ok(FLOAT8, "NaN") {
        Value::Float(f) => assert!(f.is_nan()),
        v => panic!("{v:?}"),
    }
    for bad in [
        "inf",
        "nan",
        "infinity",
        "",
        "-",
        "1e",
        "abc",
        "1,5",
        "+Infinity",
    ] {
        err(FLOAT8, bad.as_bytes(), &["float8", "not a number"]);
    }
}

#[test]
fn numerics() {
    for s in [
        "123.45",
        "-0.001",
        "0",
        "100",
        "NaN",
        "Infinity",
        "-Infinity",
        "1E+2",
        ".5",
    ] {
        assert_eq!(ok(NUMERIC, s), Value::Numeric(s.into()));
    }
    let long = format!("{}.{}", "9".repeat(1000), "1".repeat(1000));
    assert_eq!(ok(NUMERIC, &long), Value::Numeric(long.clone()));
    for bad in [
        "", "-", ".", "1.2.3", "nan", "1e", "12a", " 1", "inf", "+-1",
    ] {
        err(NUMERIC, bad.as_bytes(), &["numeric", "not a number"]);
    }
}

#[test]
fn text_types() {
    for t in [TEXT, VARCHAR, BPCHAR, NAME, XML] {
        assert_eq!(ok(t, ""), text(""));
        assert_eq!(ok(t, "héllo wörld ✓"), text("héllo wörld ✓"));
    }
    assert_eq!(ok(BPCHAR, "ab "), text("ab "));
    assert_eq!(ok(XML, "<a/>"), text("<a/>"));
    err(TEXT, b"a\xffb", &["text", "invalid UTF-8"]);
    err(VARCHAR, b"\xc3", &["varchar", "invalid UTF-8"]);
    // "char" and unknown types never fail: lossy UTF-8.
    assert_eq!(ok(CHAR, "a"), text("a"));
    assert_eq!(ok(CHAR, "\\303"), text("\\303"));
    assert_eq!(decode(CHAR, b"\xc3"), Ok(text("\u{fffd}")));
    assert_eq!(decode(600, b"(1,2)"), Ok(text("(1,2)")));
    assert_eq!(decode(1266, b"12:00:00+05:30"), Ok(text("12:00:00+05:30")));
    assert_eq!(decode(99999, b"x\xffy"), Ok(text("x\u{fffd}y")));
    // int2vector and oidvector are space-separated, not arrays: left as text
    assert_eq!(ok(22, "1 2"), text("1 2"));
}

#[test]
fn json_types() {
    assert_eq!(ok(JSON, "{\"a\":1}"), Value::Json("{\"a\":1}".into()));
    assert_eq!(
        ok(JSONB, "{\"a\": [1, 2]}"),
        Value::Json("{\"a\": [1, 2]}".into())
    );
    assert_eq!(ok(JSONB, "null"), Value::Json("null".into()));
    err(JSONB, b"\"\xff\"", &["jsonb", "invalid UTF-8"]);
}

#[test]
fn bytea() {
    assert_eq!(ok(BYTEA, "\\x"), Value::Bytes(vec![]));
    assert_eq!(ok(BYTEA, "\\x0a1b"), Value::Bytes(vec![0x0a, 0x1b]));
    assert_eq!(
        ok(BYTEA, "\\xDEADbeef"),
        Value::Bytes(vec![0xde, 0xad, 0xbe, 0xef])
    );
    let all: Vec<u8> = (0..=255).collect();
    let hex: String = all.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(ok(BYTEA, &format!("\\x{hex}")), Value::Bytes(all));
    err(BYTEA, b"\\x0", &["bytea", "odd number of hex digits"]);
    err(BYTEA, b"\\x0g", &["bytea", "invalid hex digit"]);
    // bytea_output = escape
    assert_eq!(
        ok(BYTEA, "ab\\\\c\\000\\377"),
        Value::Bytes(b"ab\\c\x00\xff".to_vec())
    );
    assert_eq!(ok(BYTEA, ""), Value::Bytes(vec![]));
    err(BYTEA, b"a\\0", &["bytea", "truncated escape"]);
    err(BYTEA, b"a\\400", &["bytea", "invalid escape"]);
    err(BYTEA, b"a\\09a", &["bytea", "invalid escape"]);
}

#[test]
fn uuids() {
    let want = [
        0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a,
        0x11,
    ];
    assert_eq!(
        ok(UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        Value::Uuid(want)
    );
    assert_eq!(
        ok(UUID, "A0EEBC999C0B4EF8BB6D6BB9BD380A11"),
        Value::Uuid(want)
    );
    for bad in [
        "",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
        "a0eebc999-c0b-4ef8-bb6d-6bb9bd380a11",
        "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1}",
    ] {
        err(UUID, bad.as_bytes(), &["uuid", "8-4-4-4-12"]);
    }
}

#[test]
fn dates() {
    assert_eq!(ok(DATE, "2024-02-29"), date(2024, 2, 29));
    assert_eq!(ok(DATE, "0001-01-01"), date(1, 1, 1));
    assert_eq!(ok(DATE, "9999-12-31"), date(9999, 12, 31));
    assert_eq!(ok(DATE, "294276-12-31"), date(294_276, 12, 31));
    assert_eq!(ok(DATE, "5874897-12-31"), date(5_874_897, 12, 31));
    assert_eq!(ok(DATE, "infinity"), Value::DateInfinity(true));
    assert_eq!(ok(DATE, "-infinity"), Value::DateInfinity(false));
    // BC: astronomical years, 1 BC is year 0 (and a leap year)
    assert_eq!(ok(DATE, "0044-03-15 BC"), date(-43, 3, 15));
    assert_eq!(ok(DATE, "0001-12-31 BC"), date(0, 12, 31));
    assert_eq!(ok(DATE, "0001-02-29 BC"), date(0, 2, 29));
    assert_eq!(ok(DATE, "0005-02-29 BC"), date(-4, 2, 29));
    assert_eq!(ok(DATE, "4714-11-24 BC"), date(-4713, 11, 24));
    err(DATE, b"0002-02-29 BC", &["date", "not a leap year"]);
    err(DATE, b"2023-02-29", &["date", "not a leap year"]);
    err(DATE, b"1900-02-29", &["not a leap year"]);
    assert_eq!(ok(DATE, "2000-02-29"), date(2000, 2, 29));
    for bad in [
        "",
        "2024-1-01",
        "24-01-01",
        "2024-13-01",
        "2024-00-10",
        "2024-04-31",
        "2024-01-32",
        "2024-01-00",
        "0000-01-01",
        "2024/01/01",
        "Infinity",
        "infinity ",
        "2024-01-01 AD",
    ] {
        err(DATE, bad.as_bytes(), &["invalid date value"]);
    }
    err(DATE, b"2024-01-01x", &["unexpected text after the date"]);
    err(DATE, b"2024-01-01 BC ", &["unexpected text"]);
    err(DATE, b"1234567890-01-01", &["expected YYYY-MM-DD"]);
}

#[test]
fn times() {
    let t = |h, m, s, us| Value::Time {
        hour: h,
        minute: m,
        second: s,
        micro: us,
    };
    assert_eq!(ok(TIME, "13:04:05"), t(13, 4, 5, 0));
    assert_eq!(ok(TIME, "13:04:05.123456"), t(13, 4, 5, 123_456));
    assert_eq!(ok(TIME, "12:34:56.789"), t(12, 34, 56, 789_000));
    assert_eq!(ok(TIME, "00:00:00.000001"), t(0, 0, 0, 1));
    assert_eq!(ok(TIME, "23:59:59.999999"), t(23, 59, 59, 999_999));
    assert_eq!(ok(TIME, "24:00:00"), t(24, 0, 0, 0));
    for bad in [
        "",
        "13:04",
        "1:04:05",
        "13:04:05.",
        "13:04:05.1234567",
        "24:00:00.000001",
        "24:00:01",
        "25:00:00",
        "12:60:00",
        "12:00:60",
        "13:04:05+00",
        "13-04-05",
    ] {
        err(TIME, bad.as_bytes(), &["invalid time value"]);
    }
}

#[test]
fn timestamps() {
    assert_eq!(
        ok(TIMESTAMP, "2024-01-02 03:04:05.5"),
        ts(2024, 1, 2, 3, 4, 5, 500_000)
    );
    assert_eq!(
        ok(TIMESTAMP, "2024-01-02 03:04:05"),
        ts(2024, 1, 2, 3, 4, 5, 0)
    );
    assert_eq!(
        ok(TIMESTAMP, "2024-01-02T03:04:05"),
        ts(2024, 1, 2, 3, 4, 5, 0)
    );
    assert_eq!(
        ok(TIMESTAMP, "0044-03-15 12:00:00 BC"),
        ts(-43, 3, 15, 12, 0, 0, 0)
    );
    assert_eq!(
        ok(TIMESTAMP, "10000-01-01 00:00:00"),
        ts(10000, 1, 1, 0, 0, 0, 0)
    );
    assert_eq!(
        ok(TIMESTAMP, "2024-01-01 24:00:00"),
        ts(2024, 1, 1, 24, 0, 0, 0)
    );
    assert_eq!(ok(TIMESTAMP, "infinity"), Value::TimestampInfinity(true));
    assert_eq!(ok(TIMESTAMP, "-infinity"), Value::TimestampInfinity(false));
    for bad in [
        "",
        "2024-01-02",
        "2024-01-02 03:04",
        "2024-01-02  03:04:05",
        "2024-01-02 03:04:05+00",
        "2024-01-02 03:04:05.1234567",
        "2024-02-30 00:00:00",
    ] {
        err(TIMESTAMP, bad.as_bytes(), &["invalid timestamp value"]);
    }
    err(TIMESTAMP, b"2023-02-29 00:00:00", &["not a leap year"]);
}

#[test]
fn timestamptz_to_utc() {
    assert_eq!(
        ok(TIMESTAMPTZ, "2024-01-02 03:04:05.5+00"),
        tstz(2024, 1, 2, 3, 4, 5, 500_000)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "2024-01-02 03:04:05+05:30"),
        tstz(2024, 1, 1, 21, 34, 5, 0)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "2024-01-01 12:00:00-08"),
        tstz(2024, 1, 1, 20, 0, 0, 0)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "2023-12-31 20:00:00-08"),
        tstz(2024, 1, 1, 4, 0, 0, 0)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "2024-02-28 23:30:00-01"),
        tstz(2024, 2, 29, 0, 30, 0, 0)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "2023-02-28 23:30:00-01"),
        tstz(2023, 3, 1, 0, 30, 0, 0)
    );
    // Amsterdam before 1937: +00:19:32
    assert_eq!(
        ok(TIMESTAMPTZ, "1900-01-01 00:19:32.25+00:19:32"),
        tstz(1900, 1, 1, 0, 0, 0, 250_000)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "2024-01-01 00:00:00.000001+14"),
        tstz(2023, 12, 31, 10, 0, 0, 1)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "0044-03-15 12:00:00+00 BC"),
        tstz(-43, 3, 15, 12, 0, 0, 0)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "0001-01-01 00:30:00+01"),
        tstz(0, 12, 31, 23, 30, 0, 0)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "0001-12-31 23:30:00-01 BC"),
        tstz(1, 1, 1, 0, 30, 0, 0)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "9999-12-31 23:59:59.999999-01"),
        tstz(10000, 1, 1, 0, 59, 59, 999_999)
    );
    assert_eq!(
        ok(TIMESTAMPTZ, "2024-01-01 24:00:00+00"),
        tstz(2024, 1, 2, 0, 0, 0, 0)
    );
    assert_eq!(ok(TIMESTAMPTZ, "infinity"), Value::TimestampInfinity(true));
    assert_eq!(
        ok(TIMESTAMPTZ, "-infinity"),
        Value::TimestampInfinity(false)
    );
    for bad in [
        "2024-01-02 03:04:05",
        "2024-01-02 03:04:05+",
        "2024-01-02 03:04:05+5",
        "2024-01-02 03:04:05+05:3",
        "2024-01-02 03:04:05+05:60",
        "2024-01-02 03:04:05 +00",
        "2024-01-02 03:04:05Z",
        "2024-01-02 03:04:05+00 AD",
    ] {
        err(TIMESTAMPTZ, bad.as_bytes(), &["invalid timestamptz value"]);
    }
}

#[test]
fn civil_days_round_trip() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(days_from_civil(0, 3, 1), -719_468);
    for z in (-3_000_000..3_000_000).step_by(997) {
        let (y, m, d) = civil_from_days(z);
        assert_eq!(days_from_civil(y, m, d), z, "{y}-{m}-{d}");
    }
}

#[test]
fn intervals() {
    const S: i64 = 1_000_000;
    const H: i64 = 3600 * S;
    assert_eq!(ok(INTERVAL, "PT0S"), iv(0, 0, 0));
    assert_eq!(
        ok(INTERVAL, "P1Y2M3DT4H5M6.5S"),
        iv(14, 3, 4 * H + 5 * 60 * S + 6 * S + S / 2)
    );
    assert_eq!(
        ok(INTERVAL, "P-1Y-2M3DT-4H-5M-6.5S"),
        iv(-14, 3, -(4 * H + 5 * 60 * S + 6 * S + S / 2))
    );
    assert_eq!(ok(INTERVAL, "P7D"), iv(0, 7, 0));
    assert_eq!(ok(INTERVAL, "P1W"), iv(0, 7, 0));
    assert_eq!(ok(INTERVAL, "P1M15D"), iv(1, 15, 0));
    assert_eq!(ok(INTERVAL, "PT-0.000001S"), iv(0, 0, -1));
    assert_eq!(ok(INTERVAL, "PT0.000001S"), iv(0, 0, 1));
    assert_eq!(ok(INTERVAL, "PT-1.5S"), iv(0, 0, -S - S / 2));
    assert_eq!(ok(INTERVAL, "PT12H"), iv(0, 0, 12 * H));
    assert_eq!(ok(INTERVAL, "PT1H0.000001S"), iv(0, 0, H + 1));
    assert_eq!(
        ok(INTERVAL, "P-1DT23H59M59.5S"),
        iv(0, -1, 86_399 * S + S / 2)
    );
    assert_eq!(ok(INTERVAL, "P178000000Y"), iv(2_136_000_000, 0, 0));
    assert_eq!(ok(INTERVAL, "P-178000000Y-1M"), iv(-2_136_000_001, 0, 0));
    assert_eq!(ok(INTERVAL, "P-2147483648D"), iv(0, i32::MIN, 0));
    assert_eq!(
        ok(INTERVAL, "PT-2562047788H-54.775808S"),
        iv(0, 0, i64::MIN)
    );
    assert_eq!(ok(INTERVAL, "PT2562047788H54.775807S"), iv(0, 0, i64::MAX));
    assert_eq!(ok(INTERVAL, "P+1D"), iv(0, 1, 0));
    for (bad, why) in [
        ("", "expected ISO 8601"),
        ("1 day", "expected ISO 8601"),
        ("P", "no components"),
        ("PT", "no components"),
        ("P1", "number without a unit"),
        ("P1X", "unexpected unit 'X'"),
        ("P1H", "unexpected unit 'H'"),
        ("PT1D", "unexpected unit 'D'"),
        ("P1D1Y", "out of order"),
        ("P1D1D", "out of order"),
        ("PT1S1M", "out of order"),
        ("P1.5D", "unexpected unit '.'"),
        ("PT1.5M", "only seconds may have a fraction"),
        ("PT1.1234567S", "at most 6 fraction digits"),
        ("PT.5S", "expected a number"),
        ("P--1D", "expected a number"),
        ("P179000000Y", "months out of range"),
        ("P2147483648D", "days out of range"),
        ("PT2562047789H", "time out of range"),
        ("P1DT", "nothing after T"),
        ("P1DTT1H", "expected a number"),
        ("P9999999999999999999D", "expected a number"),
    ] {
        err(INTERVAL, bad.as_bytes(), &["invalid interval value", why]);
    }
}

#[test]
fn error_text_is_bounded() {
    let long = "x".repeat(10_000);
    let e = decode(INT4, long.as_bytes()).unwrap_err();
    assert!(e.len() < 200, "{e}");
    assert!(e.contains("...: not an integer"), "{e}");
}

#[test]
fn garbage_never_panics() {
    // Deterministic xorshift over short inputs drawn from the interesting
    // bytes: any result is fine, a panic is not.
    let alphabet = b"{}[]:=,\"\\ -+.0159xPYMWDTHSeNaIinfty BC\xff";
    let oids = [
        BOOL,
        BYTEA,
        INT4,
        FLOAT8,
        NUMERIC,
        TEXT,
        DATE,
        TIME,
        TIMESTAMP,
        TIMESTAMPTZ,
        INTERVAL,
        UUID,
        1007,
        1009,
        1001,
        1185,
        1187,
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 24) as usize;
        let mut s = Vec::with_capacity(len);
        let mut y = x;
        for _ in 0..len {
            y = y.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            s.push(alphabet[(y >> 33) as usize % alphabet.len()]);
        }
        let _ = decode(oids[(x >> 40) as usize % oids.len()], &s);
    }
}
