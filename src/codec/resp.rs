//! RESP2/RESP3 codec for Redis and Valkey: bytes in, `Frame`s out, and
//! commands to bytes. No I/O happens here.
//!
//! This file holds what the two directions share: the `Frame` type, the
//! decoder's `Limits` and its `DecodeError`, and the fuzz body that checks
//! them against each other. The decoder (two passes: a scan that checks
//! lengths against `Limits` before allocating, then a zero-copy parse) is in
//! `resp_decode.rs`, the encoder in `resp_encode.rs`; both are re-exported
//! here, so `resp::decode`, `resp::Decoder` and `resp::encode_*` are the
//! paths to use.

use bytes::{Bytes, BytesMut};
use std::fmt;

#[path = "resp_decode.rs"]
mod decode;
pub use decode::{decode, Decoder};

#[path = "resp_encode.rs"]
mod encode;
pub use encode::{encode_array_header, encode_bulk, encode_command, encode_frame};

/// One RESP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+OK`
    Simple(Bytes),
    /// `-ERR ...` (RESP2 error and RESP3 simple error)
    Error(Bytes),
    /// `!<len>` (RESP3)
    BulkError(Bytes),
    /// `:<n>`
    Integer(i64),
    /// `$<len>`
    Bulk(Bytes),
    /// `$-1`, `*-1` and `_`
    Null,
    /// `*<n>`
    Array(Vec<Frame>),
    /// `,<float>`; `inf`, `-inf` and `nan` are accepted.
    Double(f64),
    /// `#t` / `#f`
    Boolean(bool),
    /// `(<digits>`
    BigNumber(Bytes),
    /// `=<len>\r\ntxt:...`: a 3-byte format, then the text.
    Verbatim { format: [u8; 3], data: Bytes },
    /// `%<pairs>`
    Map(Vec<(Frame, Frame)>),
    /// `~<n>`
    Set(Vec<Frame>),
    /// `><n>`: out-of-band data (pub/sub messages, invalidations).
    Push(Vec<Frame>),
}

impl Frame {
    /// True for `Error` and `BulkError`.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_) | Frame::BulkError(_))
    }
}

/// Bounds on what the decoder accepts; all are checked before allocating.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk string, bulk error or verbatim string payload, in bytes.
    pub max_bulk: usize,
    /// Most elements in one aggregate (for maps and attributes: pairs).
    pub max_elements: usize,
    /// Deepest nesting of aggregates; the decoder's second pass recurses this
    /// deep, so keep it in the hundreds at most.
    pub max_depth: usize,
    /// Longest line (simple string, error, number, length header) in bytes,
    /// not counting the type byte and CRLF.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: 512 << 20,
            max_elements: 16 << 20,
            max_depth: 64,
            max_line: 64 << 10,
        }
    }
}

/// Why bytes could not be decoded. After any of these the stream is
/// unusable: the connection should be closed.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// Not RESP: unknown type byte, bad integer, missing CRLF, ...
    /// `offset` counts from the start of the buffer passed to `decode`.
    Syntax { offset: usize, detail: String },
    /// A length, count or line over its limit in `Limits`.
    TooLarge {
        what: &'static str,
        len: u64,
        limit: usize,
    },
    /// Aggregates nested deeper than `Limits::max_depth`.
    TooDeep { limit: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Syntax { offset, ref detail } => {
                write!(f, "invalid RESP at byte {offset}: {detail}")
            }
            DecodeError::TooLarge {
                what: "line",
                limit,
                ..
            } => {
                write!(f, "line without CRLF exceeds the limit of {limit} bytes")
            }
            DecodeError::TooLarge { what, len, limit } => {
                let unit = match what {
                    "bulk string" | "bulk error" | "verbatim string" => "bytes",
                    _ => "elements",
                };
                write!(
                    f,
                    "{what} of {len} {unit} exceeds the limit of {limit} {unit}"
                )
            }
            DecodeError::TooDeep { limit } => {
                write!(
                    f,
                    "aggregates nested deeper than the limit of {limit} levels"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

// ---------------------------------------------------------------- fuzzing

/// Body of the `resp_decode` fuzz target, here so that `cargo test` runs it
/// on stable too. Panics on any inconsistency: `decode` and `Decoder` must
/// give the same frames and the same error whether the input arrives whole,
/// split at any point, or one byte at a time; `Ok(None)` must leave the
/// buffer alone; every frame must survive `encode_frame` and back.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    let tight = Limits {
        max_bulk: 64,
        max_elements: 8,
        max_depth: 4,
        max_line: 32,
    };
    let n = data.len();
    let splits = super::fuzz_split_points(data);
    for lim in [Limits::default(), tight] {
        let whole = fuzz::run(data, n, n, &lim, false, true);
        for stateful in [false, true] {
            assert_eq!(
                fuzz::run(data, 0, 1, &lim, stateful, false),
                whole,
                "bytewise"
            );
            for &s in &splits {
                let got = fuzz::run(data, s, n, &lim, stateful, false);
                assert_eq!(got, whole, "split at {s}, stateful {stateful}");
            }
        }
    }
}

#[doc(hidden)]
mod fuzz {
    use super::*;

    /// What decoding a byte stream produced: every frame (re-encoded, so
    /// NaN compares equal to itself), then the error or the leftover length.
    #[derive(Debug, PartialEq)]
    pub(super) struct Outcome(Vec<BytesMut>, Result<usize, DecodeError>);

    /// Feeds `data[..first]`, then `step` more bytes whenever the decoder
    /// asks for more, decoding until the input is used up or an error.
    pub(super) fn run(
        data: &[u8],
        first: usize,
        step: usize,
        lim: &Limits,
        stateful: bool,
        check_round_trip: bool,
    ) -> Outcome {
        let mut dec = Decoder::new(*lim);
        let mut buf = BytesMut::from(&data[..first]);
        let (mut fed, mut frames) = (first, Vec::new());
        loop {
            let before = buf.clone();
            let got = match stateful {
                true => dec.decode(&mut buf),
                false => decode(&mut buf, lim),
            };
            match got {
                Ok(Some(frame)) => {
                    assert!(buf.len() < before.len(), "a frame consumed no bytes");
                    frames.push(encoded(&frame, check_round_trip));
                }
                Ok(None) if fed < data.len() => {
                    assert_eq!(buf, before, "Ok(None) changed the buffer");
                    let more = step.min(data.len() - fed);
                    buf.extend_from_slice(&data[fed..fed + more]);
                    fed += more;
                }
                Ok(None) => return Outcome(frames, Ok(buf.len())),
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    return Outcome(frames, Err(e));
                }
            }
        }
    }

    /// Encodes `frame`; if asked, checks that decoding the encoding and
    /// encoding again gives the same bytes.
    fn encoded(frame: &Frame, check_round_trip: bool) -> BytesMut {
        let mut enc = BytesMut::new();
        encode_frame(frame, &mut enc);
        if check_round_trip {
            let mut buf = enc.clone();
            let back = decode(&mut buf, &Limits::default());
            let back = back
                .expect("re-encoded frame must decode")
                .expect("and be complete");
            assert!(buf.is_empty(), "re-encoded frame left bytes behind");
            let mut again = BytesMut::new();
            encode_frame(&back, &mut again);
            assert_eq!(again, enc, "round trip changed {frame:?}");
        }
        enc
    }
}

#[cfg(test)]
#[path = "resp_decode_tests.rs"]
mod decode_tests;
#[cfg(test)]
#[path = "resp_encode_tests.rs"]
mod encode_tests;
#[cfg(test)]
#[path = "resp_error_tests.rs"]
mod error_tests;
#[cfg(test)]
#[path = "resp_fuzz_tests.rs"]
mod fuzz_tests;
#[cfg(test)]
#[path = "resp_test_util.rs"]
mod test_util;
