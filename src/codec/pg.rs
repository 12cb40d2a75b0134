//! PostgreSQL frontend/backend protocol v3 codec: backend messages from
//! bytes, frontend messages to bytes. No I/O happens here.
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
//! the connection for). Authentication exchanges are in `pg_auth`.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

#[path = "pg_encode.rs"]
mod encode;
pub use encode::*;
use encode::{put_count, put_value};

/// Bounds on what the decoder accepts, checked before allocating.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message, as its length header counts it (body + 4).
    pub max_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 << 20,
        }
    }
}

/// Why bytes could not be decoded. After any of these the stream is out of
/// step: the connection should be closed.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// Not a well-formed backend message: bad length, count or terminator.
    Syntax { detail: String },
    /// A length header over `Limits::max_message`.
    TooLarge { len: usize, limit: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Syntax { detail } => {
                write!(f, "invalid PostgreSQL message: {detail}")
            }
            DecodeError::TooLarge { len, limit } => write!(
                f,
                "PostgreSQL message of {len} bytes exceeds the limit of {limit} bytes"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

fn syntax(detail: impl Into<String>) -> DecodeError {
    DecodeError::Syntax {
        detail: detail.into(),
    }
}

/// One field of a `RowDescription`.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// OID of the table the column comes from, or 0.
    pub table_oid: u32,
    /// Attribute number in that table, or 0.
    pub column_id: i16,
    pub type_oid: u32,
    /// `pg_type.typlen`: negative for variable-width types.
    pub type_size: i16,
    /// `pg_attribute.atttypmod`, e.g. the length of a `varchar(n)` + 4.
    pub type_mod: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

/// The fields of an `ErrorResponse` or `NoticeResponse` that clients use.
/// `severity` is the non-localized `V` field when the server sends one
/// (9.6+), else the possibly localized `S`. Other fields are skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErrorFields {
    pub severity: String,
    /// SQLSTATE, e.g. `42P01`.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character offset into the query, as decimal text.
    pub position: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
}

/// One DataRow, zero-copy: the message body; values parsed on demand.
/// Its layout was validated when it was decoded (or built), so reading the
/// values cannot run past the end.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRow {
    body: Bytes,
}

impl DataRow {
    /// Builds a row, e.g. for a fake server; `None` is SQL NULL. Panics
    /// over 32767 values (the count is an Int16; PostgreSQL stops at 1664).
    pub fn from_values(values: &[Option<&[u8]>]) -> DataRow {
        assert!(
            values.len() <= i16::MAX as usize,
            "DataRow over 32767 values"
        );
        let mut body = BytesMut::new();
        put_count(&mut body, values.len());
        for v in values {
            put_value(&mut body, *v);
        }
        DataRow {
            body: body.freeze(),
        }
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        (&self.body[..]).get_u16() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values, `None` for NULL, each a slice of the received bytes.
    pub fn values(&self) -> Result<Vec<Option<Bytes>>, DecodeError> {
        let mut r = Reader::new(&self.body, "DataRow");
        let n = r.count()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(r.value()?);
        }
        r.finish()?;
        Ok(out)
    }

    /// The values without collecting them.
    pub fn iter(&self) -> impl Iterator<Item = Option<Bytes>> + '_ {
        let mut r = Reader::new(&self.body, "DataRow");
        r.pos = 2;
        (0..self.len()).map(move |_| r.value().unwrap_or(None))
    }

    /// The raw message body: Int16 count, then Int32 length + bytes each.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// One message from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    AuthenticationOk,
    AuthenticationCleartextPassword,
    AuthenticationMd5Password {
        salt: [u8; 4],
    },
    AuthenticationSasl {
        mechanisms: Vec<String>,
    },
    AuthenticationSaslContinue(Bytes),
    AuthenticationSaslFinal(Bytes),
    /// Kerberos, GSSAPI, SSPI: the request code; any data is dropped.
    AuthenticationOther(u32),
    ParameterStatus {
        name: String,
        value: String,
    },
    BackendKeyData {
        pid: i32,
        secret: i32,
    },
    /// Transaction status: `I` idle, `T` in a transaction, `E` failed one.
    ReadyForQuery(u8),
    RowDescription(Vec<Column>),
    DataRow(DataRow),
    CommandComplete(String),
    EmptyQueryResponse,
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    ParameterDescription(Vec<u32>),
    PortalSuspended,
    ErrorResponse(ErrorFields),
    NoticeResponse(ErrorFields),
    NotificationResponse {
        pid: i32,
        channel: String,
        payload: String,
    },
    CopyInResponse,
    CopyOutResponse,
    CopyBothResponse,
    /// Any other type byte (CopyData, NegotiateProtocolVersion, ...).
    Unknown {
        tag: u8,
        body: Bytes,
    },
}

/// Cursor over one message body; every read is bounds-checked and names
/// the message in its error.
struct Reader<'a> {
    body: &'a Bytes,
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(body: &'a Bytes, what: &'static str) -> Self {
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
    fn count(&mut self) -> Result<usize, DecodeError> {
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
    fn value(&mut self) -> Result<Option<Bytes>, DecodeError> {
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

    fn finish(&self) -> Result<(), DecodeError> {
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

// ---------------------------------------------------------------- fuzzing

/// The fuzz target's body (`fuzz/fuzz_targets/pg_decode.rs`), here so that
/// `cargo test` runs it on stable too: decoding loops until `None` or an
/// error, every split of the input gives the same messages and the same
/// error, `Ok(None)` never consumes bytes, and every decoded message
/// survives an encode/decode round trip.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    let tight = Limits { max_message: 64 };
    let n = data.len();
    let splits = super::fuzz_split_points(data);
    for lim in [Limits::default(), tight] {
        let whole = fuzz_run(data, n, n, &lim, true);
        assert_eq!(fuzz_run(data, 0, 1, &lim, false), whole, "bytewise");
        for &s in &splits {
            assert_eq!(fuzz_run(data, s, n, &lim, false), whole, "split at {s}");
        }
    }
}

/// Every message decoded from a stream, then the error or the leftover length.
type Outcome = (Vec<Backend>, Result<usize, DecodeError>);

/// Feeds `data[..first]`, then `step` more bytes whenever the decoder asks
/// for more, decoding until the input is used up or an error.
fn fuzz_run(data: &[u8], first: usize, step: usize, lim: &Limits, round_trip: bool) -> Outcome {
    let mut buf = BytesMut::from(&data[..first]);
    let (mut fed, mut msgs) = (first, Vec::new());
    loop {
        let before = buf.clone();
        match decode(&mut buf, lim) {
            Ok(Some(msg)) => {
                assert!(buf.len() < before.len(), "a message consumed no bytes");
                if round_trip {
                    fuzz_round_trip(&msg);
                }
                msgs.push(msg);
            }
            Ok(None) if fed < data.len() => {
                assert_eq!(buf, before, "Ok(None) changed the buffer");
                let more = step.min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + more]);
                fed += more;
            }
            Ok(None) => return (msgs, Ok(buf.len())),
            Err(e) => {
                assert!(!e.to_string().is_empty());
                return (msgs, Err(e));
            }
        }
    }
}

fn fuzz_round_trip(msg: &Backend) {
    if let Backend::DataRow(row) = msg {
        let values = row.values().expect("a decoded DataRow reads back");
        assert_eq!(values.len(), row.len());
        assert!(values.iter().cloned().eq(row.iter()));
    }
    let mut enc = BytesMut::new();
    encode_backend(msg, &mut enc);
    let mut buf = enc.clone();
    let back = decode(&mut buf, &Limits::default())
        .expect("re-encoded message must decode")
        .expect("and be complete");
    assert!(buf.is_empty(), "re-encoded message left bytes behind");
    assert_eq!(&back, msg, "round trip changed the message");
}

#[cfg(test)]
#[path = "pg_tests.rs"]
mod tests;
