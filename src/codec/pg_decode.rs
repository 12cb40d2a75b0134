//! The PostgreSQL backend-message decoder (`decode`): one message off the
//! front of the buffer, or `Ok(None)` until it is all there. Part of `pg`,
//! which re-exports `decode` and lends `Reader` to `DataRow`.
//!
//! Every message after startup is a type byte, an Int32 length that counts
//! itself, and a body. `decode` reads the 5-byte header, checks the length
//! against `Limits` before anything is allocated or waited for, and only once
//! the whole message is buffered splits it off and parses the body. Every
//! count and length inside the body is checked against the bytes that are
//! really there, so a malformed message is a `DecodeError`, never a panic or
//! an allocation sized by the peer. Payloads (`DataRow`, SASL data, unknown
//! messages) are zero-copy slices of the received chunk.
//!
//! Text fields are decoded as UTF-8 with invalid sequences replaced (the
//! connection asks for `client_encoding=UTF8`; a `SQL_ASCII` server may still
//! pass through arbitrary bytes, and an error message is not worth dropping
//! the connection for).

use super::{Backend, Column, DataRow, DecodeError, ErrorFields, Limits};
use bytes::{Bytes, BytesMut};

fn syntax(detail: impl Into<String>) -> DecodeError {
    DecodeError::Syntax {
        detail: detail.into(),
    }
}

/// Cursor over one message body; every read is bounds-checked and names
/// the message in its error. `DataRow` reads its values with it too.
pub(super) struct Reader<'a> {
    body: &'a Bytes,
    pub(super) pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(super) fn new(body: &'a Bytes, what: &'static str) -> Self {
        Reader { body, pos: 0, what }
    }

    fn left(&self) -> usize {
        self.body.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.left() {
            return Err(syntax(format!(
                "{}: needs {n} more bytes at offset {}, {} left",
                self.what,
                self.pos,
                self.left()
            )));
        }
        let s = &self.body[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    /// An Int16 count that must not be negative.
    pub(super) fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.i16()?;
        usize::try_from(n).map_err(|_| syntax(format!("{}: negative count {n}", self.what)))
    }

    /// A NUL-terminated string, without the NUL.
    fn cstr(&mut self) -> Result<&'a [u8], DecodeError> {
        let rest = &self.body[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            return Err(syntax(format!(
                "{}: string at offset {} has no terminating NUL",
                self.what, self.pos
            )));
        };
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        Ok(String::from_utf8_lossy(self.cstr()?).into_owned())
    }

    /// Int32 length (-1 for NULL) and that many bytes.
    pub(super) fn value(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let n = usize::try_from(len)
            .map_err(|_| syntax(format!("{}: negative value length {len}", self.what)))?;
        let start = self.pos;
        self.take(n)?;
        Ok(Some(self.body.slice(start..start + n)))
    }

    fn rest(&mut self) -> Bytes {
        let b = self.body.slice(self.pos..);
        self.pos = self.body.len();
        b
    }

    pub(super) fn finish(&self) -> Result<(), DecodeError> {
        match self.left() {
            0 => Ok(()),
            n => Err(syntax(format!(
                "{}: {n} unexpected trailing bytes",
                self.what
            ))),
        }
    }
}

/// One backend message off the front of buf; Ok(None) = need more bytes
/// (buf untouched). Validates every length inside the message (DataRow
/// value lengths, counts) so a malformed message is an error, never a panic
/// or huge allocation.
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Backend>, DecodeError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 {
        return Err(syntax(format!(
            "message type {:?} has length {len}, less than 4",
            tag as char
        )));
    }
    let len = len as usize;
    if len > limits.max_message {
        let limit = limits.max_message;
        return Err(DecodeError::TooLarge { len, limit });
    }
    if buf.len() < 1 + len {
        return Ok(None);
    }
    let body = buf.split_to(1 + len).freeze().slice(5..);
    parse_body(tag, &body).map(Some)
}

/// Message types a reply may carry in bulk, which `decode_skipping` drops
/// when they are too large instead of failing the stream: a row, COPY data,
/// an error or notice, a notification.
pub const SKIPPABLE: &[u8] = b"DdENA";

/// `decode`, except that a message over `limits.max_message` whose type is
/// in `SKIPPABLE` is not an error: its header is consumed and
/// `Backend::Oversized` returned, and its body is discarded as it arrives,
/// never buffered. `skip` carries the bytes still to discard from one call
/// to the next (start at 0, pass the same counter every time).
pub fn decode_skipping(
    buf: &mut BytesMut,
    limits: &Limits,
    skip: &mut usize,
) -> Result<Option<Backend>, DecodeError> {
    discard(buf, skip);
    if *skip > 0 {
        return Ok(None);
    }
    match decode(buf, limits) {
        Err(DecodeError::TooLarge { len, limit }) if SKIPPABLE.contains(&buf[0]) => {
            let tag = buf[0];
            let _ = buf.split_to(5);
            *skip = len - 4;
            discard(buf, skip);
            Ok(Some(Backend::Oversized { tag, len, limit }))
        }
        other => other,
    }
}

fn discard(buf: &mut BytesMut, skip: &mut usize) {
    let n = (*skip).min(buf.len());
    if n > 0 {
        let _ = buf.split_to(n);
        *skip -= n;
    }
}

fn parse_body(tag: u8, body: &Bytes) -> Result<Backend, DecodeError> {
    // Messages with structure return here; the rest yield their reader,
    // which must have consumed the whole body.
    let (msg, r) = match tag {
        b'R' => return parse_auth(body),
        b'D' => return parse_data_row(body),
        b'T' => return parse_row_description(body),
        b'E' => return parse_error_fields(body, "ErrorResponse").map(Backend::ErrorResponse),
        b'N' => return parse_error_fields(body, "NoticeResponse").map(Backend::NoticeResponse),
        b'G' => return Ok(Backend::CopyInResponse),
        b'H' => return Ok(Backend::CopyOutResponse),
        b'W' => return Ok(Backend::CopyBothResponse),
        b'S' => {
            let mut r = Reader::new(body, "ParameterStatus");
            let msg = Backend::ParameterStatus {
                name: r.string()?,
                value: r.string()?,
            };
            (msg, r)
        }
        b'K' => {
            let mut r = Reader::new(body, "BackendKeyData");
            let msg = Backend::BackendKeyData {
                pid: r.i32()?,
                secret: r.i32()?,
            };
            (msg, r)
        }
        b'Z' => {
            let mut r = Reader::new(body, "ReadyForQuery");
            let status = r.u8()?;
            if !matches!(status, b'I' | b'T' | b'E') {
                return Err(syntax(format!(
                    "ReadyForQuery: unknown transaction status {status:#04x}"
                )));
            }
            (Backend::ReadyForQuery(status), r)
        }
        b'C' => {
            let mut r = Reader::new(body, "CommandComplete");
            (Backend::CommandComplete(r.string()?), r)
        }
        b't' => {
            let mut r = Reader::new(body, "ParameterDescription");
            // Unsigned: a statement may have up to 65535 parameters.
            let n = r.i16()? as u16 as usize;
            if r.left() != 4 * n {
                return Err(syntax(format!(
                    "ParameterDescription: {n} parameters need {} bytes, have {}",
                    4 * n,
                    r.left()
                )));
            }
            let oids = (0..n).map(|_| r.i32().map(|o| o as u32));
            (
                Backend::ParameterDescription(oids.collect::<Result<_, _>>()?),
                r,
            )
        }
        b'A' => {
            let mut r = Reader::new(body, "NotificationResponse");
            let msg = Backend::NotificationResponse {
                pid: r.i32()?,
                channel: r.string()?,
                payload: r.string()?,
            };
            (msg, r)
        }
        b'I' => (
            Backend::EmptyQueryResponse,
            Reader::new(body, "EmptyQueryResponse"),
        ),
        b'1' => (Backend::ParseComplete, Reader::new(body, "ParseComplete")),
        b'2' => (Backend::BindComplete, Reader::new(body, "BindComplete")),
        b'3' => (Backend::CloseComplete, Reader::new(body, "CloseComplete")),
        b'n' => (Backend::NoData, Reader::new(body, "NoData")),
        b's' => (
            Backend::PortalSuspended,
            Reader::new(body, "PortalSuspended"),
        ),
        _ => {
            let body = body.clone();
            return Ok(Backend::Unknown { tag, body });
        }
    };
    r.finish()?;
    Ok(msg)
}

fn parse_auth(body: &Bytes) -> Result<Backend, DecodeError> {
    let mut r = Reader::new(body, "Authentication");
    let msg = match r.i32()? {
        0 => Backend::AuthenticationOk,
        3 => Backend::AuthenticationCleartextPassword,
        5 => {
            let salt = r.take(4)?.try_into().unwrap();
            Backend::AuthenticationMd5Password { salt }
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.cstr()?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(String::from_utf8_lossy(m).into_owned());
            }
            Backend::AuthenticationSasl { mechanisms }
        }
        11 => Backend::AuthenticationSaslContinue(r.rest()),
        12 => Backend::AuthenticationSaslFinal(r.rest()),
        code => {
            r.rest();
            Backend::AuthenticationOther(code as u32)
        }
    };
    r.finish()?;
    Ok(msg)
}

fn parse_data_row(body: &Bytes) -> Result<Backend, DecodeError> {
    let mut r = Reader::new(body, "DataRow");
    let n = r.count()?;
    for _ in 0..n {
        r.value()?;
    }
    r.finish()?;
    let body = body.clone();
    Ok(Backend::DataRow(DataRow { body }))
}

fn parse_row_description(body: &Bytes) -> Result<Backend, DecodeError> {
    /// The smallest field: an empty name's NUL and 18 bytes of numbers.
    const MIN_FIELD: usize = 19;
    let mut r = Reader::new(body, "RowDescription");
    let n = r.count()?;
    if n * MIN_FIELD > r.left() {
        return Err(syntax(format!(
            "RowDescription: {n} fields cannot fit in {} bytes",
            r.left()
        )));
    }
    let mut cols = Vec::with_capacity(n);
    for _ in 0..n {
        cols.push(Column {
            name: r.string()?,
            table_oid: r.i32()? as u32,
            column_id: r.i16()?,
            type_oid: r.i32()? as u32,
            type_size: r.i16()?,
            type_mod: r.i32()?,
            format: r.i16()?,
        });
    }
    r.finish()?;
    Ok(Backend::RowDescription(cols))
}

fn parse_error_fields(body: &Bytes, what: &'static str) -> Result<ErrorFields, DecodeError> {
    let mut r = Reader::new(body, what);
    let mut f = ErrorFields::default();
    let mut have_v = false;
    loop {
        let code = r.u8()?;
        if code == 0 {
            break;
        }
        let value = r.string()?;
        match code {
            b'V' => (f.severity, have_v) = (value, true),
            b'S' if !have_v => f.severity = value,
            b'C' => f.code = value,
            b'M' => f.message = value,
            b'D' => f.detail = Some(value),
            b'H' => f.hint = Some(value),
            b'P' => f.position = Some(value),
            b's' => f.schema = Some(value),
            b't' => f.table = Some(value),
            b'c' => f.column = Some(value),
            b'n' => f.constraint = Some(value),
            _ => {}
        }
    }
    r.finish()?;
    Ok(f)
}
