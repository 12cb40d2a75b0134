//! PostgreSQL codec: malformed and oversized backend messages, and the
//! wording of decode and authentication errors.

use super::test_util::frame;
use super::*;
use crate::codec::pg_auth::AuthError;

fn err_with(input: &[u8], lim: &Limits) -> DecodeError {
    // A test vector is one whole message (or just a bad header): its length
    // header must match, or the test checks something else than it says.
    if let Some(len) = input.get(1..5) {
        let len = i32::from_be_bytes(len.try_into().unwrap());
        if len >= 4 && len as usize <= lim.max_message {
            assert_eq!(input.len(), 1 + len as usize, "length of {input:?}");
        }
    }
    let mut buf = BytesMut::from(input);
    let e = decode(&mut buf, lim).expect_err("expected an error");
    fuzz_decode(input);
    e
}

/// Expects a syntax error whose detail mentions `needle`.
fn syntax_err(input: &[u8], needle: &str) {
    match err_with(input, &Limits::default()) {
        DecodeError::Syntax { detail } => {
            assert!(detail.contains(needle), "{detail:?} lacks {needle:?}")
        }
        e => panic!("expected a syntax error for {input:?}, got {e:?}"),
    }
}

#[test]
fn bad_length_headers() {
    syntax_err(b"Z\0\0\0\0", "less than 4");
    syntax_err(b"Z\0\0\0\x03I", "less than 4");
    syntax_err(b"D\xff\xff\xff\xff", "length -1");
    syntax_err(b"D\x80\0\0\0", "less than 4");
}

#[test]
fn too_large_before_the_body_arrives() {
    // Only the header is there: the error comes without waiting or
    // allocating for the 2 GiB the header announces.
    let e = err_with(b"D\x7f\xff\xff\xff", &Limits::default());
    assert_eq!(
        e,
        DecodeError::TooLarge {
            len: 0x7fff_ffff,
            limit: 64 << 20
        }
    );
    let lim = Limits { max_message: 10 };
    let e = err_with(b"C\0\0\0\x0bSELECT", &lim);
    assert_eq!(e, DecodeError::TooLarge { len: 11, limit: 10 });
    // At the limit exactly is fine.
    let mut buf = BytesMut::from(&b"C\0\0\0\x0aSELEC\0"[..]);
    assert_eq!(
        decode(&mut buf, &lim),
        Ok(Some(Backend::CommandComplete("SELEC".into())))
    );
}

#[test]
fn truncated_bodies() {
    syntax_err(b"R\0\0\0\x04", "Authentication");
    syntax_err(b"R\0\0\0\x06\0\0", "Authentication");
    syntax_err(b"R\0\0\0\x0a\0\0\0\x05\x01\x02", "needs 4 more bytes");
    syntax_err(b"R\0\0\0\x0b\0\0\0\x0aSCR", "no terminating NUL");
    syntax_err(b"R\0\0\0\x0c\0\0\0\x0aSCR\0", "no terminating NUL");
    syntax_err(b"S\0\0\0\x09name\0", "ParameterStatus");
    syntax_err(b"S\0\0\0\x0aname\0v", "no terminating NUL");
    syntax_err(b"K\0\0\0\x08\0\0\0\x01", "BackendKeyData");
    syntax_err(b"Z\0\0\0\x04", "ReadyForQuery");
    syntax_err(b"C\0\0\0\x07abc", "CommandComplete");
    syntax_err(b"A\0\0\0\x06\0\0", "NotificationResponse");
    syntax_err(b"A\0\0\0\x0d\0\0\0\x01chan\0", "no terminating NUL");
    syntax_err(b"E\0\0\0\x04", "ErrorResponse");
    syntax_err(b"E\0\0\0\x06Mx", "no terminating NUL");
    syntax_err(b"N\0\0\0\x07Mx\0", "NoticeResponse");
    syntax_err(b"T\0\0\0\x05\0", "RowDescription");
}

#[test]
fn trailing_bytes() {
    syntax_err(b"R\0\0\0\x09\0\0\0\0x", "trailing");
    syntax_err(b"R\0\0\0\x09\0\0\0\x03x", "trailing");
    syntax_err(b"R\0\0\0\x0d\0\0\0\x05abcdx", "trailing");
    syntax_err(b"R\0\0\0\x0c\0\0\0\x0aA\0\0x", "trailing");
    syntax_err(b"K\0\0\0\x0d\0\0\0\x01\0\0\0\x02x", "trailing");
    syntax_err(b"Z\0\0\0\x06II", "trailing");
    syntax_err(b"S\0\0\0\x09a\0b\0c", "trailing");
    syntax_err(b"C\0\0\0\x08ab\0c", "trailing");
    syntax_err(b"1\0\0\0\x05x", "ParseComplete: 1 unexpected trailing");
    syntax_err(b"I\0\0\0\x05x", "EmptyQueryResponse");
    syntax_err(b"s\0\0\0\x05x", "PortalSuspended");
    syntax_err(b"E\0\0\0\x06\0x", "trailing");
    syntax_err(b"A\0\0\0\x0d\0\0\0\x01a\0b\0c", "trailing");
}

#[test]
fn bad_ready_for_query_status() {
    syntax_err(b"Z\0\0\0\x05X", "transaction status 0x58");
}

#[test]
fn bad_data_rows() {
    // Negative column count.
    syntax_err(b"D\0\0\0\x06\xff\xff", "negative count -1");
    // Value length past the end of the message.
    syntax_err(b"D\0\0\0\x0c\0\x01\0\0\0\x05ab", "needs 5 more bytes");
    syntax_err(b"D\0\0\0\x0c\0\x01\x7f\xff\xff\xffab", "more bytes");
    // Negative length other than -1.
    syntax_err(
        b"D\0\0\0\x0a\0\x01\xff\xff\xff\xfe",
        "negative value length -2",
    );
    // More columns announced than present.
    syntax_err(b"D\0\0\0\x0b\0\x02\0\0\0\x01a", "DataRow");
    // Truncated length field.
    syntax_err(b"D\0\0\0\x08\0\x01\0\0", "DataRow");
    // Fewer columns announced than present.
    syntax_err(b"D\0\0\0\x0b\0\0\0\0\0\x01a", "trailing");
    syntax_err(b"D\0\0\0\x05\0", "DataRow");
}

#[test]
fn bad_row_descriptions() {
    syntax_err(b"T\0\0\0\x06\x80\0", "negative count -32768");
    // 1000 fields announced in 0 bytes: refused before allocating.
    syntax_err(b"T\0\0\0\x06\x03\xe8", "1000 fields cannot fit in 0 bytes");
    // One field whose name has no NUL.
    let mut body = vec![0, 1];
    body.extend_from_slice(&[b'x'; 20]);
    syntax_err(&frame(b'T', &body), "no terminating NUL");
    // A name, then too few bytes for the numbers.
    let mut body = vec![0, 1];
    body.extend_from_slice(b"abc\0");
    body.extend_from_slice(&[0; 15]);
    syntax_err(&frame(b'T', &body), "RowDescription");
    // A whole field and a stray byte.
    let mut body = vec![0, 1, 0];
    body.extend_from_slice(&[0; 19]);
    syntax_err(&frame(b'T', &body), "1 unexpected trailing");
}

#[test]
fn bad_parameter_descriptions() {
    syntax_err(
        b"t\0\0\0\x0a\0\x02\0\0\0\x17",
        "2 parameters need 8 bytes, have 4",
    );
    syntax_err(b"t\0\0\0\x0b\0\x01\0\0\0\x17x", "need 4 bytes, have 5");
    syntax_err(b"t\0\0\0\x05\0", "ParameterDescription");
}

#[test]
fn error_after_good_messages() {
    let mut buf = BytesMut::from(&b"1\0\0\0\x04Z\0\0\0\x05?2\0\0\0\x04"[..]);
    let lim = Limits::default();
    assert_eq!(decode(&mut buf, &lim), Ok(Some(Backend::ParseComplete)));
    assert!(decode(&mut buf, &lim).is_err());
}

#[test]
fn error_messages_are_clear() {
    assert_eq!(
        DecodeError::TooLarge {
            len: 100,
            limit: 10
        }
        .to_string(),
        "PostgreSQL message of 100 bytes exceeds the limit of 10 bytes"
    );
    let mut buf = BytesMut::from(&b"D\0\0\0\x0c\0\x01\0\0\0\x05ab"[..]);
    let e = decode(&mut buf, &Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid PostgreSQL message: DataRow: needs 5 more bytes at offset 6, 2 left"
    );
    let e: Box<dyn std::error::Error> = Box::new(e);
    assert!(e.to_string().starts_with("invalid PostgreSQL message"));
    assert_eq!(
        AuthError::ServerSignatureMismatch.to_string(),
        "the server's SCRAM signature does not match the password"
    );
    assert_eq!(
        AuthError::Server("invalid-proof".into()).to_string(),
        "the server rejected SCRAM authentication: invalid-proof"
    );
}

/// An oversized row is reported once and its body discarded as it arrives
/// (fed one byte at a time, never buffered); the messages after it decode
/// normally. An oversized message of another kind stays an error.
#[test]
fn oversized_rows_are_skipped_without_buffering() {
    let lim = Limits { max_message: 64 };
    let mut wire = BytesMut::new();
    let big = DataRow::from_values(&[Some(&[7u8; 200][..])]);
    encode_backend(&Backend::DataRow(big), &mut wire);
    encode_backend(&Backend::CommandComplete("SELECT 1".into()), &mut wire);
    encode_backend(&Backend::ReadyForQuery(b'I'), &mut wire);
    let mut buf = BytesMut::new();
    let mut skip = 0;
    let mut got = Vec::new();
    for b in wire.iter() {
        buf.extend_from_slice(&[*b]);
        while let Some(m) = decode_skipping(&mut buf, &lim, &mut skip).unwrap() {
            got.push(m);
        }
        assert!(buf.len() <= 64, "the oversized body was buffered");
    }
    assert_eq!(
        got,
        vec![
            Backend::Oversized { tag: b'D', len: 4 + 2 + 4 + 200, limit: 64 },
            Backend::CommandComplete("SELECT 1".into()),
            Backend::ReadyForQuery(b'I'),
        ]
    );
    assert_eq!(skip, 0);
    let mut t = BytesMut::new();
    encode_backend(&Backend::CommandComplete("x".repeat(100)), &mut t);
    let e = decode_skipping(&mut t, &lim, &mut skip).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e:?}");
}
