//! PostgreSQL codec: every well-formed backend message decoded from
//! hand-written bytes, whole, split anywhere and fed one byte at a time.

use super::test_util::frame;
use super::*;

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
