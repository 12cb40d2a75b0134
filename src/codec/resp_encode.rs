//! The RESP encoder: commands (`encode_command`, or `encode_array_header`
//! followed by `encode_bulk` per argument) and any `Frame` (`encode_frame`,
//! for tests and fake servers) appended to a `BytesMut`. Part of `resp`,
//! which re-exports what is public here. Nothing here can fail.

use super::Frame;
use bytes::{BufMut, BytesMut};

/// Appends the decimal digits of `n`.
#[inline]
fn put_uint(out: &mut BytesMut, mut n: u64) {
    if n < 10 {
        out.put_u8(b'0' + n as u8);
        return;
    }
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    while n > 0 {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.put_slice(&tmp[i..]);
}

#[inline]
fn put_header(out: &mut BytesMut, t: u8, n: usize) {
    out.put_u8(t);
    put_uint(out, n as u64);
    out.put_slice(b"\r\n");
}

#[inline]
fn put_bulk(out: &mut BytesMut, t: u8, arg: &[u8]) {
    put_header(out, t, arg.len());
    out.put_slice(arg);
    out.put_slice(b"\r\n");
}

/// Append a command as a RESP array of bulk strings: `*N\r\n$len\r\narg\r\n...`
pub fn encode_command<A: AsRef<[u8]>>(args: &[A], out: &mut BytesMut) {
    // 16 covers `$` + 13 length digits + 2 CRLFs per argument.
    let total: usize = args.iter().map(|a| a.as_ref().len() + 16).sum();
    out.reserve(total + 16);
    put_header(out, b'*', args.len());
    for a in args {
        put_bulk(out, b'$', a.as_ref());
    }
}

/// `*N\r\n`: the start of a command whose `N` arguments follow as `encode_bulk`.
pub fn encode_array_header(n: usize, out: &mut BytesMut) {
    out.reserve(24);
    put_header(out, b'*', n);
}

/// `$len\r\narg\r\n`
pub fn encode_bulk(arg: &[u8], out: &mut BytesMut) {
    out.reserve(arg.len() + 26);
    put_bulk(out, b'$', arg);
}

/// Serialize any frame, RESP3 syntax for RESP3 types (`Null` is `_`).
/// `Simple`, `Error` and `BigNumber` payloads must not contain CR or LF.
pub fn encode_frame(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::Simple(s) => put_line(out, b'+', s),
        Frame::Error(s) => put_line(out, b'-', s),
        Frame::BigNumber(s) => put_line(out, b'(', s),
        Frame::BulkError(s) => put_bulk(out, b'!', s),
        Frame::Bulk(s) => put_bulk(out, b'$', s),
        Frame::Integer(n) => put_integer(out, *n),
        Frame::Null => out.put_slice(b"_\r\n"),
        Frame::Double(d) => {
            out.put_u8(b',');
            put_double(out, *d);
            out.put_slice(b"\r\n");
        }
        Frame::Boolean(b) => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Frame::Verbatim { format, data } => {
            put_header(out, b'=', data.len() + 4);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(data);
            out.put_slice(b"\r\n");
        }
        Frame::Map(pairs) => {
            put_header(out, b'%', pairs.len());
            for (k, v) in pairs {
                encode_frame(k, out);
                encode_frame(v, out);
            }
        }
        Frame::Array(items) => put_seq(out, b'*', items),
        Frame::Set(items) => put_seq(out, b'~', items),
        Frame::Push(items) => put_seq(out, b'>', items),
    }
}

fn put_line(out: &mut BytesMut, t: u8, s: &[u8]) {
    out.put_u8(t);
    out.put_slice(s);
    out.put_slice(b"\r\n");
}

fn put_integer(out: &mut BytesMut, n: i64) {
    out.put_u8(b':');
    if n < 0 {
        out.put_u8(b'-');
    }
    put_uint(out, n.unsigned_abs());
    out.put_slice(b"\r\n");
}

fn put_double(out: &mut BytesMut, d: f64) {
    use std::fmt::Write;
    if d.is_nan() {
        out.put_slice(b"nan");
    } else if d.is_infinite() {
        out.put_slice(if d > 0.0 { b"inf" } else { b"-inf" });
    } else {
        // `{:?}` is the shortest text that parses back to the same f64.
        let _ = write!(out, "{d:?}");
    }
}

fn put_seq(out: &mut BytesMut, t: u8, items: &[Frame]) {
    put_header(out, t, items.len());
    for item in items {
        encode_frame(item, out);
    }
}
