//! PostgreSQL frontend/backend protocol v3 codec: backend messages from
//! bytes, frontend messages to bytes. No I/O happens here.
//!
//! This file holds the message types both directions share (`Backend`,
//! `Column`, `ErrorFields`, the zero-copy `DataRow`), the decoder's `Limits`
//! and `DecodeError`, and the fuzz body. The decoder is in `pg_decode.rs`
//! (lengths checked against `Limits` before anything is allocated), the
//! frontend encoders in `pg_encode.rs`; both are re-exported here, so
//! `pg::decode`, `pg::query`, `pg::bind`, ... are the paths to use.
//! Authentication exchanges are in `pg_auth`.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

#[path = "pg_decode.rs"]
mod decode;
use decode::Reader;
pub use decode::{decode, decode_skipping, SKIPPABLE};

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

    /// Bytes of the message body (what the row holds of the read buffer).
    pub fn wire_len(&self) -> usize {
        self.body.len()
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

    /// The values as slices of the received bytes (`None` for NULL),
    /// without a reference count per value.
    pub fn slices(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        let b = &self.body[..];
        let mut pos = 2;
        (0..self.len()).map(move |_| {
            let n = b
                .get(pos..pos + 4)
                .map_or(-1, |h| i32::from_be_bytes([h[0], h[1], h[2], h[3]]));
            pos += 4;
            let v = usize::try_from(n).ok().and_then(|n| b.get(pos..pos + n));
            pos += v.map_or(0, <[u8]>::len);
            v
        })
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
    /// A message over `Limits::max_message` of a kind a reply carries in
    /// bulk (`SKIPPABLE`): `decode_skipping` consumed its header and
    /// discards its `len - 4` body bytes as they arrive, never buffering them.
    Oversized {
        tag: u8,
        len: usize,
        limit: usize,
    },
    /// Any other type byte (CopyData, NegotiateProtocolVersion, ...).
    Unknown {
        tag: u8,
        body: Bytes,
    },
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
#[path = "pg_auth_tests.rs"]
mod auth_tests;
#[cfg(test)]
#[path = "pg_backend_tests.rs"]
mod backend_tests;
#[cfg(test)]
#[path = "pg_encode_tests.rs"]
mod encode_tests;
#[cfg(test)]
#[path = "pg_fuzz_tests.rs"]
mod fuzz_tests;
#[cfg(test)]
#[path = "pg_malformed_tests.rs"]
mod malformed_tests;
#[cfg(test)]
#[path = "pg_test_util.rs"]
mod test_util;
