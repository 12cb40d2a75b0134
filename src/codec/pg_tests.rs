//! Byte-vector tests for the PostgreSQL codec and its authentication: every
//! backend message from hand-written bytes (whole, and fed one byte at a
//! time), malformed and oversized messages, exact encoder output, SCRAM and
//! MD5 vectors, randomized round trips and garbage.

use super::*;
use crate::codec::pg_auth::*;
use crate::codec::test_rng::Rng;

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

/// Decodes `input` with default limits, expecting exactly one message and
/// no leftover bytes; every proper prefix must be `Ok(None)` and leave the
/// buffer as it was.
fn one(input: &[u8]) -> Backend {
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
    let msg = decode(&mut buf, &Limits::default())
        .expect("decode error")
        .expect("incomplete");
    assert!(buf.is_empty(), "left {buf:?} after {input:?}");
    // The fuzz body checks splits, byte-at-a-time feeding and round trips.
    fuzz_decode(input);
    msg
}

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

/// Frames a body: tag, Int32 length, body. Independent of the encoders.
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn bytes_of(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut out = BytesMut::new();
    f(&mut out);
    out.to_vec()
}

// ------------------------------------------------------------ backend messages

#[test]
fn authentication_requests() {
    use Backend::*;
    assert_eq!(one(b"R\0\0\0\x08\0\0\0\0"), AuthenticationOk);
    assert_eq!(
        one(b"R\0\0\0\x08\0\0\0\x03"),
        AuthenticationCleartextPassword
    );
    assert_eq!(
        one(b"R\0\0\0\x0c\0\0\0\x05\x01\x02\xfe\xff"),
        AuthenticationMd5Password {
            salt: [1, 2, 0xfe, 0xff]
        }
    );
    assert_eq!(
        one(b"R\0\0\0\x2a\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
        AuthenticationSasl {
            mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
        }
    );
    assert_eq!(
        one(b"R\0\0\0\x09\0\0\0\x0a\0"),
        AuthenticationSasl { mechanisms: vec![] }
    );
    assert_eq!(
        one(b"R\0\0\0\x0d\0\0\0\x0br=abc"),
        AuthenticationSaslContinue(b(b"r=abc"))
    );
    assert_eq!(
        one(b"R\0\0\0\x0e\0\0\0\x0cv=xyz="),
        AuthenticationSaslFinal(b(b"v=xyz="))
    );
    assert_eq!(
        one(b"R\0\0\0\x08\0\0\0\x0c"),
        AuthenticationSaslFinal(b(b""))
    );
    assert_eq!(one(b"R\0\0\0\x08\0\0\0\x07"), AuthenticationOther(7));
    // GSSContinue carries data, which is dropped.
    assert_eq!(one(b"R\0\0\0\x0b\0\0\0\x08tok"), AuthenticationOther(8));
    assert_eq!(
        one(b"R\0\0\0\x08\xff\xff\xff\xfe"),
        AuthenticationOther(0xffff_fffe)
    );
}

#[test]
fn session_messages() {
    use Backend::*;
    assert_eq!(
        one(b"S\0\0\0\x18server_version\x0015.8\0"),
        ParameterStatus {
            name: "server_version".into(),
            value: "15.8".into()
        }
    );
    assert_eq!(
        one(b"S\0\0\0\x06\0\0"),
        ParameterStatus {
            name: "".into(),
            value: "".into()
        }
    );
    assert_eq!(
        one(b"K\0\0\0\x0c\0\0\x30\x39\xde\xad\xbe\xef"),
        BackendKeyData {
            pid: 12345,
            secret: 0xdead_beef_u32 as i32
        }
    );
    assert_eq!(one(b"Z\0\0\0\x05I"), ReadyForQuery(b'I'));
    assert_eq!(one(b"Z\0\0\0\x05T"), ReadyForQuery(b'T'));
    assert_eq!(one(b"Z\0\0\0\x05E"), ReadyForQuery(b'E'));
    assert_eq!(
        one(b"A\0\0\0\x13\0\0\x01\x00jobs\0hello\0"),
        NotificationResponse {
            pid: 256,
            channel: "jobs".into(),
            payload: "hello".into()
        }
    );
}

#[test]
fn empty_messages() {
    use Backend::*;
    assert_eq!(one(b"I\0\0\0\x04"), EmptyQueryResponse);
    assert_eq!(one(b"1\0\0\0\x04"), ParseComplete);
    assert_eq!(one(b"2\0\0\0\x04"), BindComplete);
    assert_eq!(one(b"3\0\0\0\x04"), CloseComplete);
    assert_eq!(one(b"n\0\0\0\x04"), NoData);
    assert_eq!(one(b"s\0\0\0\x04"), PortalSuspended);
}

#[test]
fn row_description() {
    // What PostgreSQL 15 sends for `SELECT 1, 'x'::varchar(5) AS "名"`.
    let mut body = b"\0\x02?column?\0".to_vec();
    body.extend_from_slice(b"\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0");
    body.extend_from_slice("名\0".as_bytes());
    body.extend_from_slice(b"\0\0\x40\x00\0\x02\0\0\x04\x13\xff\xff\0\0\0\x09\0\x01");
    let cols = vec![
        Column {
            name: "?column?".into(),
            table_oid: 0,
            column_id: 0,
            type_oid: 23,
            type_size: 4,
            type_mod: -1,
            format: 0,
        },
        Column {
            name: "名".into(),
            table_oid: 0x4000,
            column_id: 2,
            type_oid: 1043,
            type_size: -1,
            type_mod: 9,
            format: 1,
        },
    ];
    assert_eq!(one(&frame(b'T', &body)), Backend::RowDescription(cols));
    assert_eq!(one(b"T\0\0\0\x06\0\0"), Backend::RowDescription(vec![]));
}

#[test]
fn data_row() {
    let input = b"D\0\0\0\x19\0\x04\0\0\0\x011\xff\xff\xff\xff\0\0\0\0\0\0\0\x02ab";
    let Backend::DataRow(row) = one(input) else {
        panic!("not a DataRow")
    };
    assert_eq!(row.len(), 4);
    assert!(!row.is_empty());
    let want = vec![Some(b(b"1")), None, Some(b(b"")), Some(b(b"ab"))];
    assert_eq!(row.values(), Ok(want.clone()));
    assert!(row.iter().eq(want));
    assert_eq!(&row.body()[..], &input[5..]);
    let built = DataRow::from_values(&[Some(b"1"), None, Some(b""), Some(b"ab")]);
    assert_eq!(built, row);

    let Backend::DataRow(empty) = one(b"D\0\0\0\x06\0\0") else {
        panic!("not a DataRow")
    };
    assert!(empty.is_empty());
    assert_eq!(empty.values(), Ok(vec![]));
}

#[test]
fn data_row_values_are_zero_copy() {
    let mut buf = BytesMut::from(&b"D\0\0\0\x0b\0\x01\0\0\0\x01x"[..]);
    let start = buf.as_ptr() as usize;
    let Some(Backend::DataRow(row)) = decode(&mut buf, &Limits::default()).unwrap() else {
        panic!("not a DataRow")
    };
    let v = row.values().unwrap()[0].clone().unwrap();
    assert_eq!(v.as_ptr() as usize, start + 11, "value was copied");
}

#[test]
fn simple_results() {
    use Backend::*;
    assert_eq!(
        one(b"C\0\0\0\x0dSELECT 1\0"),
        CommandComplete("SELECT 1".into())
    );
    assert_eq!(
        one(b"t\0\0\0\x0e\0\x02\0\0\0\x17\0\0\0\x19"),
        ParameterDescription(vec![23, 25])
    );
    assert_eq!(one(b"t\0\0\0\x06\0\0"), ParameterDescription(vec![]));
}

#[test]
fn parameter_description_count_is_unsigned() {
    // A statement may have up to 65535 parameters: 0x8000 is not negative.
    let mut body = vec![0x80, 0x00];
    body.extend(std::iter::repeat_n([0, 0, 0, 25], 0x8000).flatten());
    let mut buf = BytesMut::from(&frame(b't', &body)[..]);
    let Some(Backend::ParameterDescription(oids)) = decode(&mut buf, &Limits::default()).unwrap()
    else {
        panic!("not a ParameterDescription")
    };
    assert_eq!(oids.len(), 0x8000);
    assert!(oids.iter().all(|&o| o == 25));
}

#[test]
fn error_and_notice() {
    let body = b"SERREUR\0VERROR\0C23505\0Mduplicate key\0Dkey (id)=(1)\0Hretry\0\
        P7\0spublic\0titems\0cid\0nitems_pkey\0Fnbtinsert.c\0L664\0R_bt_check\0\0";
    let want = ErrorFields {
        severity: "ERROR".into(),
        code: "23505".into(),
        message: "duplicate key".into(),
        detail: Some("key (id)=(1)".into()),
        hint: Some("retry".into()),
        position: Some("7".into()),
        schema: Some("public".into()),
        table: Some("items".into()),
        column: Some("id".into()),
        constraint: Some("items_pkey".into()),
    };
    assert_eq!(
        one(&frame(b'E', body)),
        Backend::ErrorResponse(want.clone())
    );
    // `V` wins over `S` whichever comes first.
    let body = b"VWARNING\0SAVERTISSEMENT\0C01000\0Mcareful\0\0";
    let notice = ErrorFields {
        severity: "WARNING".into(),
        code: "01000".into(),
        message: "careful".into(),
        ..Default::default()
    };
    assert_eq!(one(&frame(b'N', body)), Backend::NoticeResponse(notice));
    // Pre-9.6 servers send only `S`; nothing at all is allowed too.
    let body = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0";
    let Backend::ErrorResponse(f) = one(&frame(b'E', body)) else {
        panic!()
    };
    assert_eq!((f.severity.as_str(), f.code.as_str()), ("FATAL", "28P01"));
    assert_eq!(
        one(b"E\0\0\0\x05\0"),
        Backend::ErrorResponse(ErrorFields::default())
    );
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    assert_eq!(
        one(b"C\0\0\0\x08a\xffb\0"),
        Backend::CommandComplete("a\u{fffd}b".into())
    );
}

#[test]
fn copy_and_unknown() {
    use Backend::*;
    // COPY ... FROM STDIN, text format, 2 columns.
    assert_eq!(one(b"G\0\0\0\x0b\0\0\x02\0\0\0\0"), CopyInResponse);
    assert_eq!(one(b"H\0\0\0\x07\0\0\0"), CopyOutResponse);
    assert_eq!(one(b"W\0\0\0\x07\x01\0\0"), CopyBothResponse);
    assert_eq!(
        one(b"d\0\0\0\x07abc"),
        Unknown {
            tag: b'd',
            body: b(b"abc")
        }
    );
    // NegotiateProtocolVersion: minor version 0, one unrecognized option.
    assert_eq!(
        one(b"v\0\0\0\x13\0\0\0\0\0\0\0\x01_pq_.x\0"),
        Unknown {
            tag: b'v',
            body: b(b"\0\0\0\0\0\0\0\x01_pq_.x\0")
        }
    );
    assert_eq!(
        one(b"c\0\0\0\x04"),
        Unknown {
            tag: b'c',
            body: b(b"")
        }
    );
}

#[test]
fn a_conversation_byte_by_byte() {
    // Startup to the first result of `SELECT 1` over the extended protocol.
    let mut input = Vec::new();
    input.extend_from_slice(b"R\0\0\0\x08\0\0\0\0");
    input.extend_from_slice(b"S\0\0\0\x19client_encoding\0UTF8\0");
    input.extend_from_slice(b"K\0\0\0\x0c\0\0\0\x01\0\0\0\x02");
    input.extend_from_slice(b"Z\0\0\0\x05I");
    input.extend_from_slice(b"1\0\0\0\x042\0\0\0\x04");
    input.extend_from_slice(b"D\0\0\0\x0b\0\x01\0\0\0\x011");
    input.extend_from_slice(b"C\0\0\0\x0dSELECT 1\0Z\0\0\0\x05I");
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &byte in &input {
        buf.extend_from_slice(&[byte]);
        loop {
            let before = buf.clone();
            match decode(&mut buf, &Limits::default()).unwrap() {
                Some(m) => got.push(m),
                None => {
                    assert_eq!(buf, before);
                    break;
                }
            }
        }
    }
    assert!(buf.is_empty());
    let tags: Vec<_> = got.iter().map(|m| format!("{m:?}")).collect();
    assert_eq!(got.len(), 9, "{tags:?}");
    assert_eq!(got[0], Backend::AuthenticationOk);
    assert_eq!(got[8], Backend::ReadyForQuery(b'I'));
    fuzz_decode(&input);
}

// ------------------------------------------------------------ malformed input

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

// ------------------------------------------------------------------ encoders

#[test]
fn startup_and_auth_messages() {
    assert_eq!(
        bytes_of(|o| startup(o, &[("user", "bob"), ("database", "db")])),
        b"\0\0\0\x1e\0\x03\0\0user\0bob\0database\0db\0\0"
    );
    assert_eq!(bytes_of(|o| startup(o, &[])), b"\0\0\0\x09\0\x03\0\0\0");
    assert_eq!(
        bytes_of(|o| cancel_request(o, 7, -1)),
        b"\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x07\xff\xff\xff\xff"
    );
    assert_eq!(bytes_of(|o| password(o, b"secret")), b"p\0\0\0\x0bsecret\0");
    assert_eq!(
        bytes_of(|o| sasl_initial(o, "SCRAM-SHA-256", b"n,,n=,r=abc")),
        b"p\0\0\0\x21SCRAM-SHA-256\0\0\0\0\x0bn,,n=,r=abc"
    );
    assert_eq!(
        bytes_of(|o| sasl_response(o, b"c=biws")),
        b"p\0\0\0\x0ac=biws"
    );
}

#[test]
fn query_messages() {
    assert_eq!(bytes_of(|o| query(o, "SELECT 1")), b"Q\0\0\0\x0dSELECT 1\0");
    assert_eq!(
        bytes_of(|o| parse(o, "s1", "SELECT $1", &[23, 0])),
        b"P\0\0\0\x1bs1\0SELECT $1\0\0\x02\0\0\0\x17\0\0\0\0"
    );
    assert_eq!(bytes_of(|o| parse(o, "", "", &[])), b"P\0\0\0\x08\0\0\0\0");

    let mut params = BytesMut::new();
    bind_params_begin(&mut params, 3);
    bind_param(&mut params, Some(b"42"));
    bind_param(&mut params, None);
    bind_param(&mut params, Some(b""));
    assert_eq!(
        &params[..],
        b"\0\0\0\x03\0\0\0\x0242\xff\xff\xff\xff\0\0\0\0"
    );
    assert_eq!(
        bytes_of(|o| bind(o, "p", "s1", &params, &[1])),
        b"B\0\0\0\x1fp\0s1\0\0\0\0\x03\0\0\0\x0242\xff\xff\xff\xff\0\0\0\0\0\x01\0\x01"
    );
    let mut none = BytesMut::new();
    bind_params_begin(&mut none, 0);
    assert_eq!(
        bytes_of(|o| bind(o, "", "", &none, &[])),
        b"B\0\0\0\x0c\0\0\0\0\0\0\0\0"
    );
    assert_eq!(bytes_of(|o| describe_portal(o, "p")), b"D\0\0\0\x07Pp\0");
    assert_eq!(bytes_of(|o| describe_statement(o, "")), b"D\0\0\0\x06S\0");
    assert_eq!(bytes_of(|o| execute(o, "", 0)), b"E\0\0\0\x09\0\0\0\0\0");
    assert_eq!(
        bytes_of(|o| execute(o, "p", 100)),
        b"E\0\0\0\x0ap\0\0\0\0\x64"
    );
    assert_eq!(bytes_of(sync), b"S\0\0\0\x04");
    assert_eq!(bytes_of(flush), b"H\0\0\0\x04");
    assert_eq!(bytes_of(|o| close_statement(o, "s1")), b"C\0\0\0\x08Ss1\0");
    assert_eq!(bytes_of(|o| close_portal(o, "p")), b"C\0\0\0\x07Pp\0");
    assert_eq!(bytes_of(terminate), b"X\0\0\0\x04");
}

#[test]
fn encoders_append() {
    let mut out = BytesMut::from(&b"xx"[..]);
    parse(&mut out, "", "SELECT 1", &[]);
    bind(&mut out, "", "", b"\0\0\0\0", &[]);
    execute(&mut out, "", 0);
    sync(&mut out);
    let mut want = b"xx".to_vec();
    want.extend_from_slice(b"P\0\0\0\x10\0SELECT 1\0\0\0");
    want.extend_from_slice(b"B\0\0\0\x0c\0\0\0\0\0\0\0\0");
    want.extend_from_slice(b"E\0\0\0\x09\0\0\0\0\0S\0\0\0\x04");
    assert_eq!(&out[..], &want[..]);
}

#[test]
fn encode_backend_bytes() {
    let enc = |m: &Backend| bytes_of(|o| encode_backend(m, o));
    assert_eq!(
        enc(&Backend::AuthenticationSasl {
            mechanisms: vec!["SCRAM-SHA-256".into()]
        }),
        b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0"
    );
    assert_eq!(
        enc(&Backend::ErrorResponse(ErrorFields {
            severity: "ERROR".into(),
            code: "42601".into(),
            message: "bad".into(),
            position: Some("3".into()),
            ..Default::default()
        })),
        b"E\0\0\0\x22SERROR\0VERROR\0C42601\0Mbad\0P3\0\0"
    );
    assert_eq!(enc(&Backend::CopyInResponse), b"G\0\0\0\x07\0\0\0");
    assert_eq!(
        enc(&Backend::DataRow(DataRow::from_values(&[None, Some(b"7")]))),
        b"D\0\0\0\x0f\0\x02\xff\xff\xff\xff\0\0\0\x017"
    );
}

// ---------------------------------------------------------------- SCRAM, MD5

#[test]
fn md5_vector() {
    // Computed with Python's hashlib:
    // "md5" + md5(md5(pw + user).hexdigest().encode() + salt).hexdigest()
    assert_eq!(
        md5_password("alice", "s3cret pw", [0x01, 0x02, 0xfe, 0xff]),
        "md5ae6284264671cbea7e0e3aab2ac2e037"
    );
    assert_eq!(
        md5_password("postgres", "", [0; 4]),
        "md5d8ff6a3a620cdeac77d64d380fea2e5d"
    );
}

const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

#[test]
fn scram_rfc7677_vector() {
    let mut c = ScramClient::with_nonce("pencil", RFC_NONCE).with_user("user");
    assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let client_final = c.handle_server_first(RFC_SERVER_FIRST).unwrap();
    assert_eq!(
        String::from_utf8(client_final).unwrap(),
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert!(!c.is_verified());
    assert_eq!(
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        Ok(())
    );
    assert_eq!(
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=ext"),
        Ok(())
    );
    assert!(c.is_verified());
}

#[test]
fn scram_postgres_style_vector() {
    // Empty user name, non-ASCII password as raw UTF-8; expected values
    // computed with Python's hashlib.pbkdf2_hmac and hmac.
    let mut c = ScramClient::with_nonce("päss wörd", "9IZ2O01zb9IgiIZ1WJ/zgpJB");
    assert_eq!(c.client_first(), b"n,,n=,r=9IZ2O01zb9IgiIZ1WJ/zgpJB");
    let server_first = b"r=9IZ2O01zb9IgiIZ1WJ/zgpJB4Tk0Y2Vra9e0oH6Cv0WAf2xh,\
        s=c2FsdHNhbHRzYWx0c2FsdA==,i=4096";
    let client_final = c.handle_server_first(server_first).unwrap();
    assert_eq!(
        String::from_utf8(client_final).unwrap(),
        "c=biws,r=9IZ2O01zb9IgiIZ1WJ/zgpJB4Tk0Y2Vra9e0oH6Cv0WAf2xh,\
         p=Qn0zeeavQg6kHiLjuwrZy63ikqxFB7OBGM3HhIGLcRk="
    );
    assert_eq!(
        c.verify_server_final(b"v=M/asgjGY17GBa/gEzEN1jVMMgUM4zZCRuCivrp3o3zo="),
        Ok(())
    );
}

#[test]
fn scram_server_final_failures() {
    let mut c = ScramClient::with_nonce("pencil", RFC_NONCE).with_user("user");
    assert!(matches!(
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        Err(AuthError::Protocol(_))
    ));
    c.handle_server_first(RFC_SERVER_FIRST).unwrap();
    // One bit off, truncated, empty.
    for bad in [
        &b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5="[..],
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9",
        b"v=",
    ] {
        let got = c.verify_server_final(bad);
        assert!(
            matches!(
                got,
                Err(AuthError::ServerSignatureMismatch | AuthError::Protocol(_))
            ),
            "{got:?}"
        );
    }
    assert_eq!(
        c.verify_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        Err(AuthError::ServerSignatureMismatch)
    );
    assert_eq!(
        c.verify_server_final(b"e=invalid-proof"),
        Err(AuthError::Server("invalid-proof".into()))
    );
    assert!(!c.is_verified(), "failed checks must not count as verified");
    assert!(matches!(
        c.verify_server_final(b"x=1"),
        Err(AuthError::Protocol(_))
    ));
    assert!(matches!(
        c.verify_server_final(b"v=!!!"),
        Err(AuthError::Protocol(_))
    ));
    assert!(matches!(
        c.verify_server_final(b"\xff"),
        Err(AuthError::Protocol(_))
    ));
}

#[test]
fn scram_server_first_failures() {
    let cases: &[(&[u8], &str)] = &[
        (b"r=someoneelse,s=AAAA,i=4096", "nonce"),
        (b"r=rOprNGfw,s=AAAA,i=4096", "nonce"),
        (b"r=rOprNGfwEbeRWgbNEkqO\x01x,s=AAAA,i=4096", "characters"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=***,i=4096", "base64"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=0", "iteration"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=10000001", "iteration"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=-1", "iteration"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=", "iteration"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA", "i="),
        (b"r=rOprNGfwEbeRWgbNEkqOx,i=4096", "s="),
        (b"s=AAAA,r=rOprNGfwEbeRWgbNEkqOx,i=4096", "r="),
        (b"m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=1", "extension"),
        (b"", "r="),
        (b"\xff", "UTF-8"),
    ];
    for &(input, needle) in cases {
        let mut c = ScramClient::with_nonce("pencil", RFC_NONCE);
        match c.handle_server_first(input) {
            Err(AuthError::Protocol(d)) => assert!(d.contains(needle), "{d:?} lacks {needle:?}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    // Extensions after the iteration count are ignored.
    let mut c = ScramClient::with_nonce("pencil", RFC_NONCE);
    assert!(c
        .handle_server_first(b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=1,x=y")
        .is_ok());
}

#[test]
fn scram_random_nonce_and_user_escaping() {
    let a = ScramClient::new("pw");
    let b = ScramClient::new("pw");
    let (fa, fb) = (a.client_first(), b.client_first());
    assert_ne!(fa, fb);
    assert!(fa.starts_with(b"n,,n=,r="));
    assert_eq!(fa.len(), 8 + 32, "24 bytes of nonce in base64");
    assert!(
        !format!("{a:?}").contains("pw\""),
        "Debug shows the password"
    );
    let c = ScramClient::with_nonce("pw", "N").with_user("a=b,c");
    assert_eq!(c.client_first(), b"n,,n=a=3Db=2Cc,r=N");
}

#[test]
fn saslprep_subset() {
    let prep = |s: &str| String::from_utf8(saslprep(s)).unwrap();
    assert_eq!(prep("pencil"), "pencil");
    // ASCII is never touched, not even control characters (as in PostgreSQL).
    assert_eq!(prep("a\tb\x07"), "a\tb\x07");
    assert_eq!(prep("päss wörd"), "päss wörd");
    // Non-ASCII spaces become spaces; U+200B is a space first, as in PostgreSQL.
    assert_eq!(prep("a\u{a0}b\u{3000}c\u{200b}d"), "a b c d");
    // Commonly mapped to nothing.
    assert_eq!(prep("soft\u{ad}hy\u{200d}phen\u{feff}"), "softhyphen");
    assert_eq!(prep("ä\u{2002}ö"), "ä ö");
    // SASLprep fails (empty, control character): the raw bytes, as the server.
    assert_eq!(prep("\u{ad}\u{fe0f}"), "\u{ad}\u{fe0f}");
    assert_eq!(prep("a\u{a0}\u{85}"), "a\u{a0}\u{85}");
    assert_eq!(prep("a\u{a0}\x01"), "a\u{a0}\x01");
}

// ------------------------------------------------------- random and garbage

impl Rng {
    /// A string without NUL, sometimes non-ASCII.
    fn text(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| match self.below(8) {
                0 => 'é',
                1 => '名',
                2 => ' ',
                _ => (b'a' + self.below(26) as u8) as char,
            })
            .collect()
    }

    fn opt(&mut self) -> Option<String> {
        (self.below(2) == 0).then(|| self.text(6))
    }
}

fn random_backend(rng: &mut Rng) -> Backend {
    use Backend::*;
    match rng.below(28) {
        0 => AuthenticationOk,
        1 => AuthenticationCleartextPassword,
        2 => AuthenticationMd5Password {
            salt: (rng.next() as u32).to_be_bytes(),
        },
        3 => AuthenticationSasl {
            mechanisms: (0..rng.below(3))
                .map(|_| {
                    let t = rng.text(10);
                    if t.is_empty() {
                        "x".into()
                    } else {
                        t
                    }
                })
                .collect(),
        },
        4 => AuthenticationSaslContinue(rng.bytes(40).into()),
        5 => AuthenticationSaslFinal(rng.bytes(40).into()),
        6 => AuthenticationOther([2, 7, 8, 9, 99][rng.below(5)]),
        7 => ParameterStatus {
            name: rng.text(10),
            value: rng.text(10),
        },
        8 => BackendKeyData {
            pid: rng.next() as i32,
            secret: rng.next() as i32,
        },
        9 => ReadyForQuery(b"ITE"[rng.below(3)]),
        10 => RowDescription(
            (0..rng.below(4))
                .map(|_| Column {
                    name: rng.text(8),
                    table_oid: rng.next() as u32,
                    column_id: rng.next() as i16,
                    type_oid: rng.next() as u32,
                    type_size: rng.next() as i16,
                    type_mod: rng.next() as i32,
                    format: rng.below(2) as i16,
                })
                .collect(),
        ),
        11 | 12 => {
            let vals: Vec<Option<Vec<u8>>> = (0..rng.below(6))
                .map(|_| (rng.below(4) != 0).then(|| rng.bytes(20)))
                .collect();
            let refs: Vec<Option<&[u8]>> = vals.iter().map(|v| v.as_deref()).collect();
            DataRow(super::DataRow::from_values(&refs))
        }
        13 => CommandComplete(rng.text(12)),
        14 => EmptyQueryResponse,
        15 => ParseComplete,
        16 => BindComplete,
        17 => CloseComplete,
        18 => NoData,
        19 => ParameterDescription((0..rng.below(5)).map(|_| rng.next() as u32).collect()),
        20 => PortalSuspended,
        21 | 22 => {
            let f = ErrorFields {
                severity: rng.text(6),
                code: rng.text(5),
                message: rng.text(20),
                detail: rng.opt(),
                hint: rng.opt(),
                position: rng.opt(),
                schema: rng.opt(),
                table: rng.opt(),
                column: rng.opt(),
                constraint: rng.opt(),
            };
            if rng.below(2) == 0 {
                ErrorResponse(f)
            } else {
                NoticeResponse(f)
            }
        }
        23 => NotificationResponse {
            pid: rng.next() as i32,
            channel: rng.text(8),
            payload: rng.text(30),
        },
        24 => CopyInResponse,
        25 => CopyOutResponse,
        26 => CopyBothResponse,
        _ => Unknown {
            tag: b"dcvVfxq"[rng.below(7)],
            body: rng.bytes(20).into(),
        },
    }
}

#[test]
fn random_round_trip() {
    let mut rng = Rng(0x5eed);
    let mut stream = BytesMut::new();
    let mut sent = Vec::new();
    for i in 0..3000 {
        let msg = random_backend(&mut rng);
        let mut buf = BytesMut::new();
        encode_backend(&msg, &mut buf);
        stream.extend_from_slice(&buf);
        buf.extend_from_slice(b"Z\0\0\0\x05I");
        let got = decode(&mut buf, &Limits::default());
        assert_eq!(got, Ok(Some(msg.clone())), "case {i}");
        assert_eq!(&buf[..], b"Z\0\0\0\x05I", "case {i} left the wrong bytes");
        sent.push(msg);
    }
    // The whole stream, delivered in random chunk sizes.
    let mut got = Vec::new();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    while fed < stream.len() || !buf.is_empty() {
        match decode(&mut buf, &Limits::default()).unwrap() {
            Some(m) => got.push(m),
            None => {
                let n = (1 + rng.below(300)).min(stream.len() - fed);
                assert!(n > 0, "stuck with {} bytes", buf.len());
                buf.extend_from_slice(&stream[fed..fed + n]);
                fed += n;
            }
        }
    }
    assert_eq!(got, sent);
}

fn corpus() -> Vec<u8> {
    let mut rng = Rng(7);
    let mut out = BytesMut::new();
    for _ in 0..60 {
        encode_backend(&random_backend(&mut rng), &mut out);
    }
    out.to_vec()
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(1234);
    let valid = corpus();
    for i in 0..3000 {
        let data: Vec<u8> = if i % 2 == 0 {
            // Noise made of type bytes, small lengths and NULs.
            rng.pick(80, b"RSKZTDCI123ntsENAGHWd\0\0\0\x04\x05\x08\x0a\xff\x80I")
                .to_vec()
        } else {
            // A slice of valid input with a few bytes flipped.
            rng.mutated(&valid, 150)
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
    fuzz_decode(b"D\x7f\xff\xff\xff");
}
