//! Reading a metrics file (ours or another process's) and rendering it in
//! the Prometheus text exposition format. Works on a snapshot of bytes, so
//! it never races with the writer beyond reading a value mid-update (each
//! value is one aligned 8-byte word, read whole).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::layout::{self, Kind};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub kernel: bool,
    pub labels: String,
    /// Counter/gauge value, or histogram sum.
    pub value: f64,
    /// Histogram: (upper bound, non-cumulative count); the last bound is +Inf.
    pub buckets: Vec<(f64, u64)>,
}

impl Sample {
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.1).sum()
    }
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub pid: u32,
    pub started_ms: u64,
    pub samples: Vec<Sample>,
}

fn u16_at(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes([b[o], b[o + 1]]) as usize
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Parse a file's bytes. Errors name what is wrong (not our file, truncated).
pub fn parse(b: &[u8]) -> Result<Snapshot, String> {
    if b.len() < layout::HEADER || &b[..8] != layout::MAGIC {
        return Err("not an iokernel metrics file (bad magic or too short)".into());
    }
    if u32_at(b, 8) != layout::VERSION {
        return Err(format!(
            "metrics file version {} is not supported",
            u32_at(b, 8)
        ));
    }
    let used = (u64_at(b, layout::OFF_USED) as usize).min(b.len());
    let mut samples = Vec::new();
    let mut o = layout::HEADER;
    while o + layout::REC_HEAD <= used {
        let len = u32_at(b, o) as usize;
        let kind =
            Kind::from_u8(b[o + 4]).ok_or_else(|| format!("bad record kind at offset {o}"))?;
        let nb = u16_at(b, o + 6);
        let (nl, hl, ll) = (u16_at(b, o + 8), u16_at(b, o + 10), u16_at(b, o + 12));
        let l = layout::rec_layout(nl, hl, ll, kind, nb);
        if len != l.len || o + len > used {
            return Err(format!("corrupt record at offset {o}"));
        }
        let s = o + l.strings;
        let text = |a: usize, n: usize| String::from_utf8_lossy(&b[a..a + n]).into_owned();
        let vals = o + l.values;
        let mut sample = Sample {
            name: text(s, nl),
            help: text(s + nl, hl),
            labels: text(s + nl + hl, ll),
            kind,
            kernel: b[o + 5] & 1 != 0,
            value: 0.0,
            buckets: Vec::new(),
        };
        match kind {
            Kind::Counter | Kind::Gauge => sample.value = f64::from_bits(u64_at(b, vals)),
            Kind::Histogram => {
                for i in 0..=nb {
                    let bound = if i < nb {
                        f64::from_bits(u64_at(b, o + l.bounds + 8 * i))
                    } else {
                        f64::INFINITY
                    };
                    sample.buckets.push((bound, u64_at(b, vals + 8 * i)));
                }
                sample.value = f64::from_bits(u64_at(b, vals + 8 * (nb + 1)));
            }
        }
        samples.push(sample);
        o += len;
    }
    Ok(Snapshot {
        pid: u32_at(b, layout::OFF_PID),
        started_ms: u64_at(b, layout::OFF_STARTED),
        samples,
    })
}

fn num(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.is_nan() {
        "NaN".into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn braces(labels: &str, extra: Option<String>) -> String {
    match (labels.is_empty(), extra) {
        (true, None) => String::new(),
        (true, Some(e)) => format!("{{{e}}}"),
        (false, None) => format!("{{{labels}}}"),
        (false, Some(e)) => format!("{{{labels},{e}}}"),
    }
}

/// Prometheus text exposition (version 0.0.4) of a snapshot. Families are
/// sorted by name; HELP and TYPE come from a family's first series.
pub fn render(s: &Snapshot) -> String {
    let mut fams: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for x in &s.samples {
        fams.entry(x.name.as_str()).or_default().push(x);
    }
    let mut out = String::new();
    for (name, series) in fams {
        let first = series[0];
        let help = first.help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {}", first.kind.name());
        for x in series.iter().filter(|x| x.kind == first.kind) {
            match x.kind {
                Kind::Counter | Kind::Gauge => {
                    let _ = writeln!(out, "{name}{} {}", braces(&x.labels, None), num(x.value));
                }
                Kind::Histogram => {
                    let mut cum = 0u64;
                    for (bound, n) in &x.buckets {
                        cum += n;
                        let le = format!("le=\"{}\"", num(*bound));
                        let _ = writeln!(out, "{name}_bucket{} {cum}", braces(&x.labels, Some(le)));
                    }
                    let _ = writeln!(
                        out,
                        "{name}_sum{} {}",
                        braces(&x.labels, None),
                        num(x.value)
                    );
                    let _ = writeln!(out, "{name}_count{} {cum}", braces(&x.labels, None));
                }
            }
        }
    }
    out
}
