//! COPY on the kernel (part of `pg`): the data of `COPY ... TO STDOUT`
//! handed on in chunks as it arrives (the server sends one CopyData per
//! row; a chunk gathers `CHUNK` bytes of them), and the binary COPY format's
//! framing for `COPY ... FROM STDIN (FORMAT binary)`.
//!
//! COPY runs on the simple query protocol (`Query::CopyIn`/`CopyOut`).
//! The data of a COPY FROM STDIN is the request's body (`kernel::body`),
//! written right after the query without waiting for CopyInResponse: if
//! the COPY statement fails, the server ignores CopyData and CopyDone that
//! arrive outside COPY mode, so nothing is misread.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::pg;
use crate::kernel::Feed;

/// Bytes of COPY TO STDOUT data per part handed on.
pub const CHUNK: usize = 64 * 1024;

/// The binary COPY format's header: signature, flags, extension length.
pub const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary COPY format's trailer: a tuple of -1 fields.
pub const BINARY_TRAILER: &[u8] = &[0xff, 0xff];

/// One CopyData of COPY TO STDOUT: gathered, handed on per `CHUNK`.
pub(super) fn data(buf: &mut BytesMut, body: &Bytes) -> Feed {
    buf.extend_from_slice(body);
    if buf.len() >= CHUNK {
        return Feed::Item(Box::new(buf.split().freeze()));
    }
    Feed::More
}

/// CopyDone: what is left goes on.
pub(super) fn done(buf: &mut BytesMut) -> Feed {
    if buf.is_empty() {
        return Feed::More;
    }
    Feed::Item(Box::new(buf.split().freeze()))
}

/// What ends a COPY FROM STDIN whose producer stopped (its caller's source
/// or encoding failed): CopyFail, so the server rolls it back.
pub fn abandon() -> Bytes {
    let mut out = BytesMut::new();
    pg::copy_fail(&mut out, "iokernel: the COPY data source failed");
    out.freeze()
}

/// `data` framed as one CopyData message (`data` may hold many rows).
pub fn frame(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 5);
    pg::copy_data(&mut out, data);
    out.freeze()
}

/// CopyData messages are built in place: reserve the header, write the
/// data, then `close_frame` patches the length in.
pub fn open_frame(out: &mut BytesMut) -> usize {
    out.put_u8(b'd');
    let at = out.len();
    out.put_i32(0);
    at
}

/// Patch the length of the CopyData opened at `at`.
pub fn close_frame(out: &mut BytesMut, at: usize) {
    let len = (out.len() - at) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// CopyDone, as the last chunk of a COPY FROM STDIN body.
pub fn done_message() -> Bytes {
    let mut out = BytesMut::new();
    pg::copy_done(&mut out);
    out.freeze()
}
