//! The RESP decoder: bytes in, `Frame`s out (`decode`, `Decoder`). Part of
//! `resp`, which re-exports what is public here.
//!
//! Decoding takes two passes, as in mini-redis. `Scan` walks the buffer
//! without allocating to find where one complete frame ends (or learns that
//! more bytes are needed, or that the input is invalid or over a `Limits`
//! bound); only then are those bytes split off, frozen, and parsed into a
//! `Frame` whose string payloads are zero-copy slices of that chunk. Every
//! length read off the wire is checked against `Limits` in the first pass,
//! before anything is allocated for it, and nesting is tracked on an explicit
//! stack, so hostile input can cause neither large allocations nor deep
//! recursion. The second pass recurses, but only as deep as the first pass
//! allowed (`max_depth`).
//!
//! `decode` is stateless and rescans an incomplete frame from its start on
//! every call. `Decoder` keeps the scan position between calls, so a reply
//! with millions of elements arriving in many reads is scanned once.

use super::{DecodeError, Frame, Limits};
use bytes::{Buf, Bytes, BytesMut};

/// `Ok(None)`: the input ends before the item does.
type Step<T> = Result<Option<T>, DecodeError>;

fn syntax(offset: usize, detail: impl Into<String>) -> DecodeError {
    let detail = detail.into();
    DecodeError::Syntax { offset, detail }
}

fn too_large(what: &'static str, len: u64, limit: usize) -> DecodeError {
    DecodeError::TooLarge { what, len, limit }
}

fn line_too_long(limit: usize) -> DecodeError {
    too_large("line", limit as u64 + 1, limit)
}

/// Unwraps a complete `Step` or returns `Ok(None)` from the caller.
macro_rules! ready {
    ($e:expr) => {
        match $e? {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

/// Finds the CR of the CRLF ending the line that starts at `start`
/// (`start <= buf.len()`). Looks at most `max_line + 1` bytes ahead, so the
/// answer does not depend on how much follows, and endless garbage without a
/// newline fails as soon as `max_line` is exceeded.
#[inline]
fn find_crlf(buf: &[u8], start: usize, max_line: usize) -> Step<usize> {
    let avail = &buf[start..];
    let window = &avail[..avail.len().min(max_line.saturating_add(1))];
    match window.iter().position(|&b| b == b'\r') {
        Some(i) => match avail.get(i + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some(start + i)),
            Some(_) => Err(syntax(start + i + 1, "expected LF after CR")),
        },
        None if window.len() > max_line => Err(line_too_long(max_line)),
        None => Ok(None),
    }
}

/// Expects CRLF at `at`; returns the position after it.
#[inline]
fn crlf_at(buf: &[u8], at: usize) -> Step<usize> {
    match (buf.get(at), buf.get(at + 1)) {
        (None, _) | (Some(b'\r'), None) => Ok(None),
        (Some(b'\r'), Some(b'\n')) => Ok(Some(at + 2)),
        (Some(b'\r'), Some(_)) => Err(syntax(at + 1, "expected LF after CR")),
        (Some(_), _) => Err(syntax(at, "expected CRLF")),
    }
}

/// Parses `[+-]<digits>\r\n` at `start` into an i64, rejecting overflow and
/// empty numbers; returns the value and the position after the CRLF. Like
/// `find_crlf`, looks at no more than `max_line + 1` bytes of the line.
#[inline]
fn read_int(buf: &[u8], start: usize, max_line: usize) -> Step<(i64, usize)> {
    let line = &buf[start..];
    let window = &line[..line.len().min(max_line.saturating_add(1))];
    let (neg, first) = match window.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let overflow = || syntax(start + first, "integer does not fit in 64 bits");
    let mut mag: u64 = 0;
    let mut i = first;
    while let Some(d) = window
        .get(i)
        .map(|b| b.wrapping_sub(b'0'))
        .filter(|&d| d < 10)
    {
        mag = mag
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(d)))
            .ok_or_else(overflow)?;
        i += 1;
    }
    match window.get(i) {
        None if window.len() > max_line => return Err(line_too_long(max_line)),
        None => return Ok(None),
        Some(b'\r') if i > first => {}
        Some(_) => {
            return Err(syntax(
                start + i,
                "expected a decimal integer followed by CRLF",
            ))
        }
    }
    match line.get(i + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(syntax(start + i + 1, "expected LF after CR")),
    }
    let value = if neg {
        0i64.checked_sub_unsigned(mag).ok_or_else(overflow)?
    } else {
        i64::try_from(mag).map_err(|_| overflow())?
    };
    Ok(Some((value, start + i + 2)))
}

fn parse_double(s: &[u8]) -> Option<f64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn is_big_number(s: &[u8]) -> bool {
    let digits = match s.first() {
        Some(b'-' | b'+') => &s[1..],
        _ => s,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

fn type_name(t: u8) -> &'static str {
    match t {
        b'$' => "bulk string",
        b'!' => "bulk error",
        b'=' => "verbatim string",
        b'*' => "array",
        b'~' => "set",
        b'>' => "push",
        b'%' => "map",
        _ => "attribute",
    }
}

/// An aggregate whose elements the scan is still inside.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// Elements still to come (for maps and attributes, keys + values).
    left: u64,
    /// An attribute: when it closes, the frame after it takes its place.
    attr: bool,
}

/// First pass: finds the end of one complete frame without allocating
/// (except the nesting stack, which is bounded by `max_depth` and reused by
/// `Decoder`). Resumable: on `Ok(None)` it remembers where the incomplete
/// element starts and which aggregates are open.
#[derive(Debug, Default)]
struct Scan {
    pos: usize,
    open: Vec<Open>,
}

impl Scan {
    fn reset(&mut self) {
        self.pos = 0;
        self.open.clear();
    }

    fn run(&mut self, buf: &[u8], lim: &Limits) -> Step<usize> {
        loop {
            let pos = self.pos;
            let Some(&t) = buf.get(pos) else {
                return Ok(None);
            };
            let p = pos + 1;
            let end = match t {
                b'$' | b'!' | b'=' => {
                    let (n, data) = ready!(read_int(buf, p, lim.max_line));
                    if n < 0 {
                        if n != -1 || t != b'$' {
                            return Err(syntax(p, format!("invalid length {n}")));
                        }
                        data
                    } else {
                        let n = n as u64;
                        if n > lim.max_bulk as u64 {
                            return Err(too_large(type_name(t), n, lim.max_bulk));
                        }
                        let n = n as usize;
                        if t == b'=' {
                            if n < 4 {
                                return Err(syntax(p, "verbatim string shorter than 4 bytes"));
                            }
                            if buf.get(data + 3).is_some_and(|&c| c != b':') {
                                return Err(syntax(
                                    data + 3,
                                    "verbatim format not followed by ':'",
                                ));
                            }
                        }
                        let stop = data + n;
                        match buf.get(stop) {
                            None | Some(b'\r') => {}
                            Some(_) => return Err(syntax(stop, "payload not followed by CRLF")),
                        }
                        ready!(crlf_at(buf, stop))
                    }
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let (n, after) = ready!(read_int(buf, p, lim.max_line));
                    if n < 0 {
                        if n != -1 || t != b'*' {
                            return Err(syntax(p, format!("invalid element count {n}")));
                        }
                        after
                    } else {
                        let n = n as u64;
                        if n > lim.max_elements as u64 {
                            return Err(too_large(type_name(t), n, lim.max_elements));
                        }
                        if self.open.len() >= lim.max_depth {
                            let limit = lim.max_depth;
                            return Err(DecodeError::TooDeep { limit });
                        }
                        let attr = t == b'|';
                        let left = if attr || t == b'%' { n * 2 } else { n };
                        if left > 0 || attr {
                            // Elements follow (or, for an empty attribute,
                            // the frame it annotates): nothing completes yet.
                            self.pos = after;
                            if left > 0 {
                                self.open.push(Open { left, attr });
                            }
                            continue;
                        }
                        after
                    }
                }
                b'+' | b'-' => ready!(find_crlf(buf, p, lim.max_line)) + 2,
                b':' => ready!(read_int(buf, p, lim.max_line)).1,
                b'_' => ready!(crlf_at(buf, p)),
                b'#' => match buf.get(p) {
                    None => return Ok(None),
                    Some(b't' | b'f') => ready!(crlf_at(buf, p + 1)),
                    Some(_) => return Err(syntax(p, "boolean must be 't' or 'f'")),
                },
                b',' | b'(' => {
                    let cr = ready!(find_crlf(buf, p, lim.max_line));
                    let ok = if t == b',' {
                        parse_double(&buf[p..cr]).is_some()
                    } else {
                        is_big_number(&buf[p..cr])
                    };
                    if !ok {
                        return Err(syntax(p, "invalid number"));
                    }
                    cr + 2
                }
                _ => return Err(syntax(pos, format!("unknown type byte 0x{t:02x}"))),
            };
            // One element is complete: close every aggregate it completes.
            self.pos = end;
            loop {
                let Some(top) = self.open.last_mut() else {
                    return Ok(Some(end));
                };
                top.left -= 1;
                if top.left > 0 {
                    break;
                }
                let attr = top.attr;
                self.open.pop();
                if attr {
                    break;
                }
            }
        }
    }
}

/// Decode one whole frame from the front of `buf`, removing its bytes.
/// `Ok(None)` = need more bytes (`buf` untouched). Attribute frames (`|`)
/// are parsed and discarded: the frame that follows them is returned.
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, DecodeError> {
    let step = Scan::default().run(buf, limits);
    step?.map(|end| take_frame(buf, end)).transpose()
}

/// `decode` that remembers how far it got, for callers that feed one
/// connection's bytes through it: an incomplete frame is not rescanned from
/// its start on the next call. Between calls the caller may only append to
/// `buf` (a shorter `buf` is detected and rescanned; changed bytes are not).
#[derive(Debug, Default)]
pub struct Decoder {
    limits: Limits,
    scan: Scan,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            scan: Scan::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Same contract as the free function `decode`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if buf.len() < self.scan.pos {
            self.scan.reset();
        }
        let step = self.scan.run(buf, &self.limits);
        if !matches!(step, Ok(None)) {
            self.scan.reset();
        }
        step?.map(|end| take_frame(buf, end)).transpose()
    }
}

/// Second pass: `buf[..end]` is one frame the scan accepted.
fn take_frame(buf: &mut BytesMut, end: usize) -> Result<Frame, DecodeError> {
    let t = buf[0];
    let frame = if matches!(t, b':' | b'_' | b'#' | b',') {
        // No payload to share: no split, no refcount.
        let frame = parse_scalar(&buf[..end], t, 1).map(|(f, _)| f);
        buf.advance(end);
        frame
    } else if t == b'+' && &buf[1..end - 2] == b"OK" {
        buf.advance(end);
        Some(Frame::Simple(Bytes::from_static(b"OK")))
    } else {
        parse(&buf.split_to(end).freeze(), &mut 0)
    };
    // The scan accepted these bytes, so this is a bug; report, don't panic.
    frame.ok_or_else(|| syntax(0, "frame rejected by the second pass (decoder bug)"))
}

/// Reads `[+-]<digits>\r\n` at `i`, already validated by the scan; returns
/// the value and the position after the CRLF.
#[inline]
fn int_at(buf: &[u8], mut i: usize) -> (i64, usize) {
    let neg = buf.get(i) == Some(&b'-');
    if neg || buf.get(i) == Some(&b'+') {
        i += 1;
    }
    let mut mag: u64 = 0;
    while let Some(d) = buf.get(i).map(|b| b.wrapping_sub(b'0')).filter(|&d| d < 10) {
        mag = mag.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    let v = mag as i64;
    (if neg { v.wrapping_neg() } else { v }, i + 2)
}

/// The CR ending the validated line that starts at `p`.
#[inline]
fn cr_at(buf: &[u8], p: usize) -> Option<usize> {
    Some(p + buf.get(p..)?.iter().position(|&b| b == b'\r')?)
}

/// Capacity reserved up front for an aggregate; larger ones grow as their
/// elements are actually parsed.
const PREALLOC: usize = 1024;

/// Builds the frame at `*pos` from bytes the scan validated, taking string
/// payloads as slices of `src`. Recurses at most `max_depth` deep.
fn parse(src: &Bytes, pos: &mut usize) -> Option<Frame> {
    let buf: &[u8] = src;
    loop {
        let t = *buf.get(*pos)?;
        let p = *pos + 1;
        let frame = match t {
            b'$' | b'!' | b'=' => {
                let (n, data) = int_at(buf, p);
                if n < 0 {
                    *pos = data;
                    return Some(Frame::Null);
                }
                let stop = data
                    .checked_add(n as usize)
                    .filter(|&e| e + 2 <= buf.len())?;
                *pos = stop + 2;
                match t {
                    b'$' => Frame::Bulk(src.slice(data..stop)),
                    b'!' => Frame::BulkError(src.slice(data..stop)),
                    _ => Frame::Verbatim {
                        format: buf.get(data..data + 3)?.try_into().ok()?,
                        data: src.slice((data + 4).min(stop)..stop),
                    },
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let (n, after) = int_at(buf, p);
                *pos = after;
                if n < 0 {
                    return Some(Frame::Null);
                }
                let n = n as usize;
                match t {
                    b'|' => {
                        for _ in 0..n {
                            parse(src, pos)?;
                            parse(src, pos)?;
                        }
                        continue;
                    }
                    b'%' => {
                        let mut pairs = Vec::with_capacity(n.min(PREALLOC));
                        for _ in 0..n {
                            let k = parse(src, pos)?;
                            pairs.push((k, parse(src, pos)?));
                        }
                        Frame::Map(pairs)
                    }
                    _ => {
                        let mut items = Vec::with_capacity(n.min(PREALLOC));
                        for _ in 0..n {
                            items.push(parse(src, pos)?);
                        }
                        match t {
                            b'*' => Frame::Array(items),
                            b'~' => Frame::Set(items),
                            _ => Frame::Push(items),
                        }
                    }
                }
            }
            b'+' | b'-' | b'(' => {
                let cr = cr_at(buf, p)?;
                *pos = cr + 2;
                let s = src.slice(p..cr);
                match t {
                    b'+' => Frame::Simple(s),
                    b'-' => Frame::Error(s),
                    _ => Frame::BigNumber(s),
                }
            }
            _ => {
                let (frame, end) = parse_scalar(buf, t, p)?;
                *pos = end;
                frame
            }
        };
        return Some(frame);
    }
}

/// Builds a validated frame without payload bytes (`:`, `_`, `#`, `,`)
/// whose type byte is at `p - 1`; returns it and the position after it.
fn parse_scalar(buf: &[u8], t: u8, p: usize) -> Option<(Frame, usize)> {
    Some(match t {
        b':' => {
            let (n, end) = int_at(buf, p);
            (Frame::Integer(n), end)
        }
        b'_' => (Frame::Null, p + 2),
        b'#' => (Frame::Boolean(buf.get(p) == Some(&b't')), p + 3),
        b',' => {
            let cr = cr_at(buf, p)?;
            (Frame::Double(parse_double(&buf[p..cr])?), cr + 2)
        }
        _ => return None,
    })
}
