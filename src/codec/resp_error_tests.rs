//! RESP codec: syntax errors and their offsets, size, line and depth limits,
//! and the wording of decode errors.

use super::*;

fn err(input: &[u8]) -> DecodeError {
    err_with(input, &Limits::default())
}

fn err_with(input: &[u8], lim: &Limits) -> DecodeError {
    let mut buf = BytesMut::from(input);
    let e = decode(&mut buf, lim).expect_err("expected an error");
    let mut dec = Decoder::new(*lim);
    let mut buf = BytesMut::from(input);
    assert_eq!(dec.decode(&mut buf), Err(e.clone()), "Decoder disagrees");
    e
}

fn syntax_at(input: &[u8]) -> usize {
    match err(input) {
        DecodeError::Syntax { offset, .. } => offset,
        other => panic!("expected a syntax error for {input:?}, got {other:?}"),
    }
}

#[test]
fn unknown_type_byte() {
    assert_eq!(syntax_at(b"?\r\n"), 0);
    assert_eq!(syntax_at(b"*2\r\n:1\r\nx\r\n"), 8);
    // Streamed RESP3 strings/aggregates are not sent by Redis; refused.
    assert_eq!(syntax_at(b"$?\r\n;4\r\nHell\r\n;0\r\n"), 1);
    let msg = err(b"\x00").to_string();
    assert!(
        msg.contains("unknown type byte 0x00") && msg.contains("byte 0"),
        "{msg}"
    );
}

#[test]
fn bad_integers_and_lengths() {
    assert_eq!(syntax_at(b":\r\n"), 1);
    assert_eq!(syntax_at(b":-\r\n"), 2);
    assert_eq!(syntax_at(b":12a\r\n"), 3);
    assert_eq!(syntax_at(b": 1\r\n"), 1);
    assert_eq!(syntax_at(b":1 \r\n"), 2);
    assert_eq!(syntax_at(b":9223372036854775808\r\n"), 1);
    assert_eq!(syntax_at(b":-9223372036854775809\r\n"), 2);
    assert_eq!(syntax_at(b":99999999999999999999999\r\n"), 1);
    assert_eq!(syntax_at(b"$abc\r\n"), 1);
    assert_eq!(syntax_at(b"$\r\n"), 1);
    assert_eq!(syntax_at(b"$-2\r\n"), 1);
    assert_eq!(syntax_at(b"!-1\r\n"), 1);
    assert_eq!(syntax_at(b"*-2\r\n"), 1);
    assert_eq!(syntax_at(b"%-1\r\n"), 1);
    assert_eq!(syntax_at(b"~-1\r\n"), 1);
    assert_eq!(syntax_at(b"$3\nfoo\r\n"), 2);
    assert!(err(b":1x").to_string().contains("decimal integer"));
}

#[test]
fn missing_crlf() {
    assert_eq!(syntax_at(b"$3\r\nfooXY"), 7);
    assert_eq!(syntax_at(b"$3\r\nfooX"), 7);
    assert_eq!(syntax_at(b"$3\r\nfoo\rX"), 8);
    assert_eq!(syntax_at(b"+OK\rX"), 4);
    assert_eq!(syntax_at(b":1\r:"), 3);
    assert_eq!(syntax_at(b"_x\r\n"), 1);
    assert_eq!(syntax_at(b"#t\n"), 2);
    assert_eq!(syntax_at(b"#x\r\n"), 1);
    assert_eq!(syntax_at(b",abc\r\n"), 1);
    assert_eq!(syntax_at(b",\r\n"), 1);
    assert_eq!(syntax_at(b"(12a\r\n"), 1);
    assert_eq!(syntax_at(b"(-\r\n"), 1);
    assert_eq!(syntax_at(b"=3\r\ntxt\r\n"), 1);
    assert_eq!(syntax_at(b"=5\r\ntxtxy\r\n"), 7);
}

#[test]
fn too_large() {
    let lim = Limits::default();
    assert_eq!(
        err(b"$600000000\r\n"),
        DecodeError::TooLarge {
            what: "bulk string",
            len: 600_000_000,
            limit: 512 << 20
        }
    );
    assert_eq!(
        err(b"$600000000\r\n").to_string(),
        "bulk string of 600000000 bytes exceeds the limit of 536870912 bytes"
    );
    // Refused from the header alone: nothing allocated, nothing awaited.
    assert_eq!(
        err(b"*999999999\r\n"),
        DecodeError::TooLarge {
            what: "array",
            len: 999_999_999,
            limit: lim.max_elements
        }
    );
    assert!(err(b"%999999999\r\n")
        .to_string()
        .starts_with("map of 999999999 elements"));
    assert!(matches!(
        err(b"!999999999\r\n"),
        DecodeError::TooLarge {
            what: "bulk error",
            ..
        }
    ));
    assert!(matches!(
        err(b"~999999999\r\n"),
        DecodeError::TooLarge { what: "set", .. }
    ));
    assert!(matches!(
        err(b">999999999\r\n"),
        DecodeError::TooLarge { what: "push", .. }
    ));
    assert!(matches!(
        err(b"|999999999\r\n"),
        DecodeError::TooLarge {
            what: "attribute",
            ..
        }
    ));
    assert!(matches!(
        err(b"=999999999\r\n"),
        DecodeError::TooLarge {
            what: "verbatim string",
            ..
        }
    ));

    let small = Limits {
        max_bulk: 3,
        max_elements: 2,
        max_depth: 2,
        max_line: 4,
    };
    let ok = |input: &[u8]| {
        let mut buf = BytesMut::from(input);
        let f = decode(&mut buf, &small).unwrap().unwrap();
        assert!(buf.is_empty());
        f
    };
    // Exactly at each limit is fine; one past it is not.
    ok(b"$3\r\nabc\r\n");
    assert!(matches!(
        err_with(b"$4\r\n", &small),
        DecodeError::TooLarge { len: 4, .. }
    ));
    ok(b"*2\r\n:1\r\n:2\r\n");
    assert!(matches!(
        err_with(b"*3\r\n", &small),
        DecodeError::TooLarge { len: 3, .. }
    ));
    ok(b"%2\r\n:1\r\n:2\r\n:3\r\n:4\r\n");
    ok(b"+abcd\r\n");
    ok(b":1234\r\n");
    let line = DecodeError::TooLarge {
        what: "line",
        len: 5,
        limit: 4,
    };
    assert_eq!(err_with(b"+abcde\r\n", &small), line);
    assert_eq!(err_with(b"+abcde", &small), line);
    assert_eq!(err_with(b":12345\r\n", &small), line);
    assert_eq!(err_with(b":00000000", &small), line);
    assert_eq!(err_with(b"$00001\r\n", &small), line);
    assert_eq!(
        line.to_string(),
        "line without CRLF exceeds the limit of 4 bytes"
    );
}

#[test]
fn endless_line_is_caught() {
    let lim = Limits::default();
    let mut buf = BytesMut::from(&b"+"[..]);
    buf.extend(std::iter::repeat_n(b'a', lim.max_line));
    assert_eq!(decode(&mut buf, &lim), Ok(None));
    buf.extend_from_slice(b"a");
    assert!(matches!(
        decode(&mut buf, &lim),
        Err(DecodeError::TooLarge { what: "line", .. })
    ));
}

#[test]
fn too_deep() {
    let lim = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    let mut buf = BytesMut::from(&b"*1\r\n*1\r\n*1\r\n:1\r\n"[..]);
    assert!(decode(&mut buf, &lim).unwrap().is_some());
    assert_eq!(
        err_with(b"*1\r\n*1\r\n*1\r\n*1\r\n", &lim),
        DecodeError::TooDeep { limit: 3 }
    );
    // Attribute contents count as one level down.
    assert_eq!(
        err_with(b"*1\r\n*1\r\n|1\r\n*1\r\n", &lim),
        DecodeError::TooDeep { limit: 3 }
    );
    // Default limit, endless nesting: refused after 64 levels, long before
    // the input ends.
    let deep: Vec<u8> = b"*1\r\n".repeat(100_000);
    assert_eq!(err(&deep), DecodeError::TooDeep { limit: 64 });
    assert_eq!(
        DecodeError::TooDeep { limit: 64 }.to_string(),
        "aggregates nested deeper than the limit of 64 levels"
    );
}
