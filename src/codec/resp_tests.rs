//! Byte-vector tests for the RESP codec: every type, every error, every
//! split of the input, and randomized round trips and garbage.

use super::*;
use crate::codec::test_rng::Rng;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Decodes `input` with default limits, expecting exactly one frame and no
/// leftover bytes; also checks that every proper prefix is `Ok(None)`.
fn one(input: &[u8]) -> Frame {
    for cut in 0..input.len() {
        let mut buf = BytesMut::from(&input[..cut]);
        assert_eq!(
            decode(&mut buf, &Limits::default()),
            Ok(None),
            "prefix {cut} of {input:?}"
        );
        assert_eq!(&buf[..], &input[..cut], "Ok(None) consumed bytes");
    }
    let mut buf = BytesMut::from(input);
    let frame = decode(&mut buf, &Limits::default())
        .expect("decode error")
        .expect("incomplete");
    assert!(buf.is_empty(), "left {buf:?} after {input:?}");
    frame
}

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

fn enc(frame: &Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(frame, &mut out);
    out.to_vec()
}

// ------------------------------------------------------------ byte vectors

#[test]
fn resp2_scalars() {
    assert_eq!(one(b"+OK\r\n"), Frame::Simple(b("OK")));
    assert_eq!(one(b"+\r\n"), Frame::Simple(b("")));
    assert_eq!(one(b"+hello world\r\n"), Frame::Simple(b("hello world")));
    assert_eq!(one(b"-ERR unknown\r\n"), Frame::Error(b("ERR unknown")));
    assert_eq!(one(b":0\r\n"), Frame::Integer(0));
    assert_eq!(one(b":-42\r\n"), Frame::Integer(-42));
    assert_eq!(one(b":+7\r\n"), Frame::Integer(7));
    assert_eq!(one(b":007\r\n"), Frame::Integer(7));
    assert_eq!(one(b":9223372036854775807\r\n"), Frame::Integer(i64::MAX));
    assert_eq!(one(b":-9223372036854775808\r\n"), Frame::Integer(i64::MIN));
    assert_eq!(one(b"$5\r\nhello\r\n"), Frame::Bulk(b("hello")));
    assert_eq!(one(b"$0\r\n\r\n"), Frame::Bulk(b("")));
    assert_eq!(one(b"$4\r\na\r\nb\r\n"), Frame::Bulk(b("a\r\nb")));
}

#[test]
fn null_forms() {
    assert_eq!(one(b"$-1\r\n"), Frame::Null);
    assert_eq!(one(b"*-1\r\n"), Frame::Null);
    assert_eq!(one(b"_\r\n"), Frame::Null);
    assert_eq!(
        one(b"*2\r\n$-1\r\n_\r\n"),
        Frame::Array(vec![Frame::Null, Frame::Null])
    );
}

#[test]
fn arrays() {
    assert_eq!(one(b"*0\r\n"), Frame::Array(vec![]));
    assert_eq!(
        one(b"*3\r\n:1\r\n$3\r\nfoo\r\n+bar\r\n"),
        Frame::Array(vec![
            Frame::Integer(1),
            Frame::Bulk(b("foo")),
            Frame::Simple(b("bar"))
        ])
    );
    assert_eq!(
        one(b"*2\r\n*2\r\n:1\r\n*0\r\n*1\r\n-E\r\n"),
        Frame::Array(vec![
            Frame::Array(vec![Frame::Integer(1), Frame::Array(vec![])]),
            Frame::Array(vec![Frame::Error(b("E"))]),
        ])
    );
}

#[test]
fn resp3_scalars() {
    assert_eq!(one(b"#t\r\n"), Frame::Boolean(true));
    assert_eq!(one(b"#f\r\n"), Frame::Boolean(false));
    assert_eq!(one(b",1.5\r\n"), Frame::Double(1.5));
    assert_eq!(one(b",-2\r\n"), Frame::Double(-2.0));
    assert_eq!(one(b",1e300\r\n"), Frame::Double(1e300));
    assert_eq!(one(b",3.0000000000000001e+20\r\n"), Frame::Double(3e20));
    assert_eq!(one(b",inf\r\n"), Frame::Double(f64::INFINITY));
    assert_eq!(one(b",-inf\r\n"), Frame::Double(f64::NEG_INFINITY));
    match one(b",nan\r\n") {
        Frame::Double(d) => assert!(d.is_nan()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        one(b"(3492890328409238509324850943850943825024385\r\n"),
        Frame::BigNumber(b("3492890328409238509324850943850943825024385"))
    );
    assert_eq!(one(b"(-1\r\n"), Frame::BigNumber(b("-1")));
    assert_eq!(
        one(b"!21\r\nSYNTAX invalid syntax\r\n"),
        Frame::BulkError(b("SYNTAX invalid syntax"))
    );
    assert_eq!(
        one(b"=15\r\ntxt:Some string\r\n"),
        Frame::Verbatim {
            format: *b"txt",
            data: b("Some string")
        }
    );
    assert_eq!(
        one(b"=4\r\nmkd:\r\n"),
        Frame::Verbatim {
            format: *b"mkd",
            data: b("")
        }
    );
}

#[test]
fn resp3_aggregates() {
    assert_eq!(
        one(b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n"),
        Frame::Map(vec![
            (Frame::Simple(b("first")), Frame::Integer(1)),
            (Frame::Simple(b("second")), Frame::Integer(2)),
        ])
    );
    assert_eq!(one(b"%0\r\n"), Frame::Map(vec![]));
    assert_eq!(
        one(b"~3\r\n+a\r\n#t\r\n_\r\n"),
        Frame::Set(vec![
            Frame::Simple(b("a")),
            Frame::Boolean(true),
            Frame::Null
        ])
    );
    assert_eq!(
        one(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
        Frame::Push(vec![
            Frame::Bulk(b("message")),
            Frame::Bulk(b("ch")),
            Frame::Bulk(b("hi"))
        ])
    );
    assert_eq!(
        one(b"%1\r\n*2\r\n:1\r\n:2\r\n%1\r\n~1\r\n,0.5\r\n#f\r\n"),
        Frame::Map(vec![(
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]),
            Frame::Map(vec![(
                Frame::Set(vec![Frame::Double(0.5)]),
                Frame::Boolean(false)
            )]),
        )])
    );
}

#[test]
fn attributes_are_skipped() {
    // The example from the RESP3 specification.
    let input = b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n\
                  *2\r\n:2039123\r\n:9543892\r\n";
    assert_eq!(
        one(input),
        Frame::Array(vec![Frame::Integer(2039123), Frame::Integer(9543892)])
    );
    // Inside an aggregate, empty, and several in a row.
    assert_eq!(
        one(b"*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n+x\r\n"),
        Frame::Array(vec![Frame::Integer(1), Frame::Simple(b("x"))])
    );
    assert_eq!(one(b"|0\r\n|1\r\n:1\r\n:2\r\n:3\r\n"), Frame::Integer(3));
    // An attribute annotating the last element closes the array only after
    // that element.
    assert_eq!(
        one(b"*1\r\n|1\r\n+a\r\n+b\r\n*1\r\n:5\r\n"),
        Frame::Array(vec![Frame::Array(vec![Frame::Integer(5)])])
    );
}

#[test]
fn frames_back_to_back() {
    let mut buf = BytesMut::from(&b"+OK\r\n:1\r\n$3\r\nfoo\r\n*1\r\n+x\r\n$2\r\nab"[..]);
    let lim = Limits::default();
    assert_eq!(decode(&mut buf, &lim), Ok(Some(Frame::Simple(b("OK")))));
    assert_eq!(decode(&mut buf, &lim), Ok(Some(Frame::Integer(1))));
    assert_eq!(decode(&mut buf, &lim), Ok(Some(Frame::Bulk(b("foo")))));
    assert_eq!(
        decode(&mut buf, &lim),
        Ok(Some(Frame::Array(vec![Frame::Simple(b("x"))])))
    );
    assert_eq!(decode(&mut buf, &lim), Ok(None));
    assert_eq!(&buf[..], b"$2\r\nab");
}

#[test]
fn bulk_payload_is_zero_copy() {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"*2\r\n$5\r\nhello\r\n+world\r\n");
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Some(Frame::Array(items)) = decode(&mut buf, &Limits::default()).unwrap() else {
        panic!("expected an array");
    };
    for item in items {
        let (Frame::Bulk(s) | Frame::Simple(s)) = item else {
            panic!("{item:?}");
        };
        assert!(range.contains(&(s.as_ptr() as usize)), "payload was copied");
    }
}

// ------------------------------------------------------------------ errors

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

// ---------------------------------------------------------------- encoding

#[test]
fn encode_command_bytes() {
    let mut out = BytesMut::new();
    encode_command(&["SET", "key", ""], &mut out);
    assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n");

    let big = vec![b'x'; 1234];
    let args: Vec<&[u8]> = vec![b"GET", &big];
    let mut one_shot = BytesMut::new();
    encode_command(&args, &mut one_shot);
    let mut incremental = BytesMut::new();
    encode_array_header(args.len(), &mut incremental);
    for a in &args {
        encode_bulk(a, &mut incremental);
    }
    assert_eq!(one_shot, incremental);
    assert!(one_shot.starts_with(b"*2\r\n$3\r\nGET\r\n$1234\r\nxxx"));

    let mut empty = BytesMut::new();
    encode_command::<&[u8]>(&[], &mut empty);
    assert_eq!(&empty[..], b"*0\r\n");
}

#[test]
fn encode_frame_bytes() {
    assert_eq!(enc(&Frame::Integer(i64::MIN)), b":-9223372036854775808\r\n");
    assert_eq!(enc(&Frame::Integer(10)), b":10\r\n");
    assert_eq!(enc(&Frame::Null), b"_\r\n");
    assert_eq!(enc(&Frame::Double(1.0)), b",1.0\r\n");
    assert_eq!(enc(&Frame::Double(f64::NEG_INFINITY)), b",-inf\r\n");
    assert_eq!(enc(&Frame::Double(f64::NAN)), b",nan\r\n");
    assert_eq!(
        enc(&Frame::Verbatim {
            format: *b"txt",
            data: b("hi")
        }),
        b"=6\r\ntxt:hi\r\n"
    );
    assert_eq!(
        enc(&Frame::Map(vec![(
            Frame::Bulk(b("k")),
            Frame::Boolean(true)
        )])),
        b"%1\r\n$1\r\nk\r\n#t\r\n"
    );
    assert_eq!(
        enc(&Frame::Push(vec![Frame::BulkError(b("E"))])),
        b">1\r\n!1\r\nE\r\n"
    );
}

#[test]
fn is_error() {
    assert!(Frame::Error(b("E")).is_error());
    assert!(Frame::BulkError(b("E")).is_error());
    assert!(!Frame::Bulk(b("E")).is_error());
    assert!(!Frame::Null.is_error());
}

// ------------------------------------------------- splits, random, garbage

const LINE_CHARS: &[u8] = b"abcXYZ 019:-+_$*\t\x00\xff";
const ANY_CHARS: &[u8] = b"ab\r\n\x00\xff$*:+-";

fn random_frame(rng: &mut Rng, depth: usize) -> Frame {
    let kinds = if depth == 0 { 10 } else { 14 };
    let width = |rng: &mut Rng| rng.below(5);
    match rng.below(kinds) {
        0 => Frame::Simple(rng.pick(12, LINE_CHARS)),
        1 => Frame::Error(rng.pick(12, LINE_CHARS)),
        2 => Frame::BulkError(rng.pick(12, ANY_CHARS)),
        3 => Frame::Integer(match rng.below(4) {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => rng.next() as i64,
            _ => rng.below(100) as i64 - 50,
        }),
        4 => Frame::Bulk(rng.pick(40, ANY_CHARS)),
        5 => Frame::Null,
        6 => Frame::Double(loop {
            let d = match rng.below(4) {
                0 => f64::INFINITY,
                1 => f64::NEG_INFINITY,
                2 => rng.below(2000) as f64 / 8.0 - 100.0,
                _ => f64::from_bits(rng.next()),
            };
            if !d.is_nan() {
                break d;
            }
        }),
        7 => Frame::Boolean(rng.below(2) == 1),
        8 => {
            let sign: &[u8] = [&b""[..], b"-", b"+"][rng.below(3)];
            let mut digits = sign.to_vec();
            digits.push(b'1' + rng.below(9) as u8);
            digits.extend_from_slice(&rng.pick(30, b"0123456789"));
            Frame::BigNumber(digits.into())
        }
        9 => Frame::Verbatim {
            format: if rng.below(2) == 0 { *b"txt" } else { *b"mkd" },
            data: rng.pick(20, ANY_CHARS),
        },
        10 => Frame::Array(
            (0..width(rng))
                .map(|_| random_frame(rng, depth - 1))
                .collect(),
        ),
        11 => Frame::Set(
            (0..width(rng))
                .map(|_| random_frame(rng, depth - 1))
                .collect(),
        ),
        12 => Frame::Push(
            (0..width(rng))
                .map(|_| random_frame(rng, depth - 1))
                .collect(),
        ),
        _ => Frame::Map(
            (0..width(rng))
                .map(|_| (random_frame(rng, depth - 1), random_frame(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// A fixed corpus covering every type, plus attributes and RESP2 nulls.
fn corpus() -> Vec<u8> {
    let mut bytes: Vec<u8> = Vec::new();
    for v in [
        &b"+OK\r\n"[..],
        b"-ERR x\r\n",
        b":-12\r\n",
        b"$3\r\nfoo\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"_\r\n",
        b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
        b",1.25\r\n",
        b",-inf\r\n",
        b"#t\r\n",
        b"(123456789012345678901234567890\r\n",
        b"!3\r\nERR\r\n",
        b"=8\r\ntxt:abcd\r\n",
        b"%1\r\n+k\r\n~2\r\n:1\r\n:2\r\n",
        b"|1\r\n+a\r\n+b\r\n>2\r\n+p\r\n$0\r\n\r\n",
        b"$10\r\n0123\r\n6789\r\n",
    ] {
        bytes.extend_from_slice(v);
    }
    let mut rng = Rng(7);
    for _ in 0..50 {
        bytes.extend_from_slice(&enc(&random_frame(&mut rng, 3)));
    }
    bytes
}

/// Decodes a stream delivered in chunks whose sizes come from `sizes`,
/// checking that `Ok(None)` never consumes bytes.
fn decode_chunked(
    input: &[u8],
    mut sizes: impl FnMut() -> usize,
    stateful: bool,
) -> (Vec<Vec<u8>>, usize) {
    let lim = Limits::default();
    let mut dec = Decoder::new(lim);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    loop {
        let before = buf.clone();
        let got = if stateful {
            dec.decode(&mut buf)
        } else {
            decode(&mut buf, &lim)
        };
        match got.expect("valid input") {
            Some(f) => frames.push(enc(&f)),
            None => {
                assert_eq!(buf, before, "Ok(None) touched the buffer");
                if fed == input.len() {
                    return (frames, buf.len());
                }
                let n = sizes().clamp(1, input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
        }
    }
}

#[test]
fn any_chunking_gives_the_same_frames() {
    let input = corpus();
    let (whole, left) = decode_chunked(&input, || usize::MAX, false);
    assert_eq!(left, 0);
    assert!(whole.len() > 60);
    for stateful in [false, true] {
        assert_eq!(decode_chunked(&input, || 1, stateful), (whole.clone(), 0));
        let mut rng = Rng(99);
        for round in 0..20 {
            let max = [2, 7, 30, 200][round % 4];
            let got = decode_chunked(&input, || 1 + rng.below(max), stateful);
            assert_eq!(got, (whole.clone(), 0), "round {round}");
        }
    }
}

#[test]
fn random_round_trip() {
    let mut rng = Rng(0x5eed);
    for i in 0..3000 {
        let frame = random_frame(&mut rng, 4);
        let bytes = enc(&frame);
        let mut buf = BytesMut::from(&bytes[..]);
        buf.extend_from_slice(b"+next\r\n");
        let got = decode(&mut buf, &Limits::default());
        assert_eq!(
            got,
            Ok(Some(frame)),
            "case {i}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(&buf[..], b"+next\r\n");
    }
}

#[test]
fn decoder_survives_a_huge_array_in_small_reads() {
    let n = 200_000;
    let mut input = BytesMut::new();
    encode_array_header(n, &mut input);
    for i in 0..n {
        encode_bulk(i.to_string().as_bytes(), &mut input);
    }
    let mut dec = Decoder::default();
    let mut buf = BytesMut::new();
    let mut got = None;
    for chunk in input.chunks(4096) {
        buf.extend_from_slice(chunk);
        if let Some(f) = dec.decode(&mut buf).unwrap() {
            got = Some(f);
        }
    }
    let Some(Frame::Array(items)) = got else {
        panic!("no array");
    };
    assert_eq!(items.len(), n);
    assert_eq!(items[n - 1], Frame::Bulk(Bytes::from((n - 1).to_string())));
    assert!(buf.is_empty());
}

#[test]
fn decoder_rescans_when_the_buffer_shrinks() {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"*2\r\n:1\r\n"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    let mut other = BytesMut::from(&b":5\r\n"[..]);
    assert_eq!(dec.decode(&mut other), Ok(Some(Frame::Integer(5))));
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(1234);
    let valid = corpus();
    for i in 0..4000 {
        let data: Vec<u8> = if i % 2 == 0 {
            // Pure noise biased toward RESP-significant bytes.
            rng.pick(80, b"+-:$*_,#(!=%~>|\r\n0123456789-tf?x").to_vec()
        } else {
            // A slice of valid input with a few bytes flipped.
            rng.mutated(&valid, 120)
        };
        fuzz_decode(&data);
    }
}

#[test]
fn fuzz_body_on_corpus() {
    let input = corpus();
    fuzz_decode(&input);
    for chunk in input.chunks(50) {
        fuzz_decode(chunk);
    }
    fuzz_decode(b"");
    fuzz_decode(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n");
}
