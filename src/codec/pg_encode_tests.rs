//! PostgreSQL codec: exact bytes of the frontend encoders (startup, auth,
//! simple and extended query) and of `encode_backend`.

use super::*;

fn bytes_of(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut out = BytesMut::new();
    f(&mut out);
    out.to_vec()
}

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
