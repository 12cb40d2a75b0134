//! The metrics file format, shared by the writer (this process) and readers
//! (this process's admin endpoint, `python -m iokernel metrics PID` in
//! another process, even while this one is stopped).
//!
//! All integers little-endian. Header (4096 bytes):
//! ```text
//!  0  magic     b"IOKMET01"
//!  8  version   u32 = 1
//! 12  pid       u32
//! 16  used      u64  end of the last published record (atomic; starts at 4096)
//! 24  capacity  u64  file size
//! 32  started   u64  unix time in ms when the file was made
//! ```
//! Records follow back to back, each 8-byte aligned:
//! ```text
//!  0  len u32 (whole record)   4 kind u8 (1 counter, 2 gauge, 3 histogram)
//!  5  flags u8 (1 = kernel)    6 nbounds u16
//!  8  name_len u16  10 help_len u16  12 labels_len u16  14 reserved u16
//! 16  name, help, labels (labels pre-rendered: k="v",k2="v2"), padded to 8
//!     bounds: f64 × nbounds (histograms)
//!     values: u64 × n — counter/gauge: 1 (f64 bits); histogram: nbounds+1
//!             bucket counts (the last is +Inf, not cumulative), then the sum (f64 bits)
//! ```
//! A record is written whole, then published by storing the new `used`
//! with release ordering; a reader loads `used` with acquire and never looks
//! past it. Values are updated in place with atomic operations.

pub const MAGIC: &[u8; 8] = b"IOKMET01";
pub const VERSION: u32 = 1;
pub const HEADER: usize = 4096;
pub const OFF_PID: usize = 12;
pub const OFF_USED: usize = 16;
pub const OFF_CAP: usize = 24;
pub const OFF_STARTED: usize = 32;
pub const REC_HEAD: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
}

impl Kind {
    pub fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Counter),
            2 => Some(Kind::Gauge),
            3 => Some(Kind::Histogram),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

pub fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

pub fn nvalues(kind: Kind, nbounds: usize) -> usize {
    match kind {
        Kind::Counter | Kind::Gauge => 1,
        Kind::Histogram => nbounds + 2,
    }
}

/// Offsets inside one record.
pub struct RecLayout {
    pub strings: usize,
    pub bounds: usize,
    pub values: usize,
    pub len: usize,
}

pub fn rec_layout(
    name: usize,
    help: usize,
    labels: usize,
    kind: Kind,
    nbounds: usize,
) -> RecLayout {
    let strings = REC_HEAD;
    let bounds = pad8(strings + name + help + labels);
    let values = bounds + 8 * nbounds;
    RecLayout {
        strings,
        bounds,
        values,
        len: values + 8 * nvalues(kind, nbounds),
    }
}

/// Escape a label value for the exposition format.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// `k="v",...` from pairs, escaped.
pub fn render_labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A metric or label name as Prometheus accepts it.
pub fn valid_name(n: &str) -> bool {
    let mut cs = n.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}
