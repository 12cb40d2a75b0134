//! Byte-vector tests for arrays: the forms `array_out` prints (copied from a
//! PostgreSQL 15 server), the looser forms `array_in` accepts, every element
//! type, and the errors for what does not fit.

use super::super::oid::*;
use super::super::tests::{arr, date, err, iv, ok, text, ts, tstz};
use super::super::{type_name, Value};
use super::element_oid;

#[test]
fn element_oids() {
    let pairs = [
        (1000, BOOL),
        (1001, BYTEA),
        (1002, CHAR),
        (1003, NAME),
        (1005, INT2),
        (1007, INT4),
        (1016, INT8),
        (1009, TEXT),
        (1028, OID),
        (199, JSON),
        (143, XML),
        (1021, FLOAT4),
        (1022, FLOAT8),
        (1014, BPCHAR),
        (1015, VARCHAR),
        (1182, DATE),
        (1183, TIME),
        (1115, TIMESTAMP),
        (1185, TIMESTAMPTZ),
        (1187, INTERVAL),
        (1231, NUMERIC),
        (2951, UUID),
        (3807, JSONB),
    ];
    for (a, e) in pairs {
        assert_eq!(element_oid(a), Some(e));
        assert_eq!(type_name(a), format!("{}[]", type_name(e)));
    }
    for not_array in [0, 16, 23, 22, 30, 1017, 1266, 1270] {
        assert_eq!(element_oid(not_array), None);
    }
    assert_eq!(type_name(1), "unknown type");
}

#[test]
fn arrays_simple() {
    let i = Value::Int;
    assert_eq!(ok(1007, "{1,2,NULL}"), arr(vec![i(1), i(2), Value::Null]));
    assert_eq!(ok(1007, "{}"), arr(vec![]));
    assert_eq!(ok(1007, "{ }"), arr(vec![]));
    assert_eq!(ok(1007, "{-5}"), arr(vec![i(-5)]));
    assert_eq!(ok(1007, " { 1 , 2 } "), arr(vec![i(1), i(2)]));
    assert_eq!(ok(1007, "{\"1\",\"2\"}"), arr(vec![i(1), i(2)]));
    assert_eq!(ok(1007, "{null,Null}"), arr(vec![Value::Null, Value::Null]));
    assert_eq!(
        ok(1000, "{t,f}"),
        arr(vec![Value::Bool(true), Value::Bool(false)])
    );
    assert_eq!(
        ok(1231, "{1.5,NaN}"),
        arr(vec![
            Value::Numeric("1.5".into()),
            Value::Numeric("NaN".into())
        ])
    );
    assert_eq!(
        ok(1021, "{1e+20}"),
        arr(vec![Value::Float(f64::from(1e20f32))])
    );
    assert_eq!(ok(1028, "{26}"), arr(vec![i(26)]));
}

#[test]
fn arrays_of_text_quoting() {
    assert_eq!(
        ok(1009, r#"{"a b","c\"d",NULL,"NULL",""," x "}"#),
        arr(vec![
            text("a b"),
            text("c\"d"),
            Value::Null,
            text("NULL"),
            text(""),
            text(" x "),
        ])
    );
    assert_eq!(
        ok(1009, r#"{"a,b","{x}","back\\slash",ü}"#),
        arr(vec![
            text("a,b"),
            text("{x}"),
            text("back\\slash"),
            text("ü")
        ])
    );
    assert_eq!(
        ok(1015, r#"{"NULL",NULL}"#),
        arr(vec![text("NULL"), Value::Null])
    );
    assert_eq!(ok(1014, r#"{"ab "}"#), arr(vec![text("ab ")]));
    assert_eq!(
        ok(1003, "{pg_catalog,public}"),
        arr(vec![text("pg_catalog"), text("public")])
    );
    // array_in rules for unquoted elements: escapes, trimmed whitespace
    assert_eq!(ok(1009, r"{a\,b}"), arr(vec![text("a,b")]));
    assert_eq!(ok(1009, r"{ a b  }"), arr(vec![text("a b")]));
    assert_eq!(ok(1009, r"{a\ }"), arr(vec![text("a ")]));
    assert_eq!(ok(1009, r"{a\ \  }"), arr(vec![text("a  ")]));
    assert_eq!(ok(1009, r"{\NULL}"), arr(vec![text("NULL")]));
    assert_eq!(ok(1009, r#"{"a\b"}"#), arr(vec![text("ab")]));
    assert_eq!(ok(1009, r#"{"\\\""}"#), arr(vec![text("\\\"")]));
    assert_eq!(ok(1009, "{NULLx}"), arr(vec![text("NULLx")]));
}

#[test]
fn arrays_of_other_types() {
    assert_eq!(
        ok(1001, r#"{"\\x0aff",NULL}"#),
        arr(vec![Value::Bytes(vec![0x0a, 0xff]), Value::Null])
    );
    assert_eq!(
        ok(3807, r#"{"{\"a\": [1, 2]}",NULL}"#),
        arr(vec![Value::Json("{\"a\": [1, 2]}".into()), Value::Null])
    );
    assert_eq!(
        ok(199, r#"{"[1,2]"}"#),
        arr(vec![Value::Json("[1,2]".into())])
    );
    assert_eq!(
        ok(1182, "{2024-01-01,infinity}"),
        arr(vec![date(2024, 1, 1), Value::DateInfinity(true)])
    );
    assert_eq!(
        ok(1182, r#"{"0044-03-15 BC"}"#),
        arr(vec![date(-43, 3, 15)])
    );
    assert_eq!(
        ok(1185, r#"{"2024-01-01 00:00:00+00",-infinity}"#),
        arr(vec![
            tstz(2024, 1, 1, 0, 0, 0, 0),
            Value::TimestampInfinity(false)
        ])
    );
    assert_eq!(
        ok(1115, r#"{"2024-01-01 00:00:00.5"}"#),
        arr(vec![ts(2024, 1, 1, 0, 0, 0, 500_000)])
    );
    assert_eq!(
        ok(1187, "{P1Y,PT-1S}"),
        arr(vec![iv(12, 0, 0), iv(0, 0, -1_000_000)])
    );
    assert_eq!(
        ok(1183, "{13:04:05}"),
        arr(vec![Value::Time {
            hour: 13,
            minute: 4,
            second: 5,
            micro: 0
        }])
    );
    assert_eq!(
        ok(2951, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"),
        arr(vec![Value::Uuid([
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11
        ])])
    );
    assert_eq!(
        ok(1002, r#"{a,"\\303"}"#),
        arr(vec![text("a"), text("\\303")])
    );
}

#[test]
fn arrays_nested_and_bounds() {
    let i = Value::Int;
    assert_eq!(
        ok(1007, "{{1,2},{3,4}}"),
        arr(vec![arr(vec![i(1), i(2)]), arr(vec![i(3), i(4)])])
    );
    assert_eq!(ok(1007, "{{{1}}}"), arr(vec![arr(vec![arr(vec![i(1)])])]));
    assert_eq!(
        ok(1007, "{{NULL},{2}}"),
        arr(vec![arr(vec![Value::Null]), arr(vec![i(2)])])
    );
    assert_eq!(ok(1007, "[0:1]={1,2}"), arr(vec![i(1), i(2)]));
    assert_eq!(ok(1007, "[-3:-2]={1,2}"), arr(vec![i(1), i(2)]));
    assert_eq!(
        ok(1007, "[1:2][0:0]={{1},{2}}"),
        arr(vec![arr(vec![i(1)]), arr(vec![i(2)])])
    );
    assert_eq!(ok(1009, "[2]={x}"), arr(vec![text("x")]));
    let six = "{{{{{{1}}}}}}";
    assert!(ok(1007, six) != arr(vec![]));
}

#[test]
fn array_errors() {
    for (bad, why) in [
        ("", "expected {"),
        ("1,2", "expected {"),
        ("{", "unterminated array"),
        ("{1,2", "unterminated array"),
        ("{1,", "unterminated array"),
        ("{\"abc", "unterminated array"),
        ("{abc\\", "unterminated array"),
        ("{1,2}}", "unexpected text after the closing }"),
        ("{1,2} x", "unexpected text after the closing }"),
        ("{1,,2}", "empty unquoted element"),
        ("{,}", "empty unquoted element"),
        ("{1 2 x\"}", "unexpected \" or {"),
        ("{1{2}}", "unexpected \" or {"),
        ("{\"1\"2}", "expected , or }"),
        ("{{1},2}", "mixes sub-arrays and elements"),
        ("{1,{2}}", "mixes sub-arrays and elements"),
        ("{{1,2},{3}}", "sub-arrays of different lengths"),
        ("{{{{{{{1}}}}}}}", "more than 6 dimensions"),
        ("[0:1]{1}", "invalid dimension bounds"),
        ("[0:]={1}", "invalid dimension bounds"),
        ("[:1]={1}", "invalid dimension bounds"),
        ("[0:1={1}", "invalid dimension bounds"),
        ("[1][1][1][1][1][1][1]={1}", "invalid dimension bounds"),
        ("[a]={1}", "invalid dimension bounds"),
    ] {
        err(1007, bad.as_bytes(), &["invalid int4[] value", why]);
    }
    err(
        1007,
        b"{1,x}",
        &["invalid int4[] value: invalid int4 value \"x\": not an integer"],
    );
    err(
        1007,
        b"{1,\"\"}",
        &["invalid int4[] value: invalid int4 value \"\""],
    );
    err(
        1182,
        b"{2024-02-30}",
        &["invalid date[] value: invalid date value"],
    );
    err(
        1009,
        b"{\"\xff\"}",
        &["invalid text[] value: invalid text value", "invalid UTF-8"],
    );
    // a very deep or very long input is refused without recursing
    let deep = "{".repeat(100_000);
    err(1007, deep.as_bytes(), &["more than 6 dimensions"]);
    let long = format!("{{{}}}", vec!["7"; 100_000].join(","));
    match ok(1007, &long) {
        Value::Array(v) => assert_eq!(v.len(), 100_000),
        v => panic!("{v:?}"),
    }
}
