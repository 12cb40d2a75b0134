//! RESP codec: decoding every RESP2 and RESP3 type from byte vectors (every
//! prefix must be incomplete), attributes, back-to-back frames, zero copy.

use super::test_util::b;
use super::*;

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
