//! RESP codec: exact bytes of the command and frame encoders, and
//! `Frame::is_error`.

use super::test_util::{b, enc};
use super::*;

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
