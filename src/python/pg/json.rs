//! json/jsonb text to Python objects in native code, giving exactly what
//! `json.loads` gives (dict, list, str, int, float, bool, None; the last of
//! duplicate keys wins), without a Python call per value.
//!
//! Anything this parser does not take on itself (a lone UTF-16 surrogate
//! escape, an integer over 18 digits, NaN/Infinity, malformed text) is
//! handed to `json.loads` whole, so results and errors stay `json.loads`'s.
//! Object keys of up to 32 bytes are interned: the rows of a result share
//! one string per key instead of one each.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};

static JSON_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Nesting deeper than this goes to `json.loads` (which raises
/// RecursionError only far deeper; PostgreSQL allows about 6,400 levels).
const MAX_DEPTH: usize = 200;
/// Keys up to this long are interned.
const INTERN_MAX: usize = 32;

/// The Python value of the JSON text `b`.
pub fn loads(py: Python<'_>, b: &[u8]) -> PyResult<Py<PyAny>> {
    if let Ok(s) = std::str::from_utf8(b) {
        let mut p = Parser { b, i: 0, py };
        if let Some(v) = p.value(0)? {
            p.ws();
            if p.i == b.len() {
                return Ok(v.unbind());
            }
        }
        return slow(py, PyString::new(py, s).into_any());
    }
    slow(
        py,
        PyString::new(py, &String::from_utf8_lossy(b)).into_any(),
    )
}

/// `json.loads` itself.
pub fn json_loads(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    JSON_LOADS.import(py, "json", "loads")
}

fn slow(py: Python<'_>, s: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    Ok(json_loads(py)?.call1((s,))?.unbind())
}

/// Test hook: `loads` from Python (what `decoder=json.loads` uses).
#[pyfunction]
pub fn _pg_json_loads(py: Python<'_>, text: &[u8]) -> PyResult<Py<PyAny>> {
    loads(py, text)
}

struct Parser<'a, 'py> {
    b: &'a [u8],
    i: usize,
    py: Python<'py>,
}

/// `Ok(None)`: not for this parser; the caller falls back to `json.loads`.
type Got<'py> = PyResult<Option<Bound<'py, PyAny>>>;

impl<'a, 'py> Parser<'a, 'py> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Got<'py> {
        self.ws();
        let py = self.py;
        let Some(&c) = self.b.get(self.i) else {
            return Ok(None);
        };
        Ok(Some(match c {
            b'{' => return self.object(depth + 1),
            b'[' => return self.array(depth + 1),
            b'"' => match self.string()? {
                Some(s) => PyString::new(py, &s).into_any(),
                None => return Ok(None),
            },
            b't' if self.eat(b"true") => true.into_pyobject(py)?.to_owned().into_any(),
            b'f' if self.eat(b"false") => false.into_pyobject(py)?.to_owned().into_any(),
            b'n' if self.eat(b"null") => py.None().into_bound(py),
            b'-' | b'0'..=b'9' => return self.number(),
            _ => return Ok(None),
        }))
    }

    fn object(&mut self, depth: usize) -> Got<'py> {
        if depth > MAX_DEPTH {
            return Ok(None);
        }
        self.i += 1;
        let d = PyDict::new(self.py);
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Some(d.into_any()));
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Ok(None);
            }
            let Some(k) = self.string()? else {
                return Ok(None);
            };
            let k = if k.len() <= INTERN_MAX {
                PyString::intern(self.py, &k)
            } else {
                PyString::new(self.py, &k)
            };
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return Ok(None);
            }
            self.i += 1;
            let Some(v) = self.value(depth)? else {
                return Ok(None);
            };
            d.set_item(k, v)?;
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Some(d.into_any()));
                }
                _ => return Ok(None),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Got<'py> {
        if depth > MAX_DEPTH {
            return Ok(None);
        }
        self.i += 1;
        let l = PyList::empty(self.py);
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Some(l.into_any()));
        }
        loop {
            let Some(v) = self.value(depth)? else {
                return Ok(None);
            };
            l.append(v)?;
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Some(l.into_any()));
                }
                _ => return Ok(None),
            }
        }
    }

    /// A string at `"`; None for what `json.loads` must judge (a control
    /// character, a bad or lone-surrogate escape, no closing quote).
    fn string(&mut self) -> PyResult<Option<Cow<'a, str>>> {
        let start = self.i + 1;
        let mut j = start;
        while let Some(&c) = self.b.get(j) {
            match c {
                b'"' => {
                    // The input is valid UTF-8 and `"` is ASCII, so this
                    // slice is too.
                    let s = std::str::from_utf8(&self.b[start..j]).unwrap_or_default();
                    self.i = j + 1;
                    return Ok(Some(Cow::Borrowed(s)));
                }
                b'\\' => return self.escaped(start),
                0..=0x1f => return Ok(None),
                _ => j += 1,
            }
        }
        Ok(None)
    }

    fn escaped(&mut self, start: usize) -> PyResult<Option<Cow<'a, str>>> {
        let mut out = String::new();
        let mut j = start;
        loop {
            let Some(&c) = self.b.get(j) else {
                return Ok(None);
            };
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.b.get(j + 1) else {
                        return Ok(None);
                    };
                    j += 2;
                    out.push(match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let Some(hi) = self.hex4(j) else {
                                return Ok(None);
                            };
                            j += 4;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                let lo = if self.b[j..].starts_with(b"\\u") {
                                    self.hex4(j + 2)
                                } else {
                                    None
                                };
                                match lo {
                                    Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                        j += 6;
                                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                    }
                                    _ => return Ok(None),
                                }
                            } else {
                                hi
                            };
                            match char::from_u32(cp) {
                                Some(ch) => ch,
                                None => return Ok(None), // lone low surrogate
                            }
                        }
                        _ => return Ok(None),
                    });
                }
                0..=0x1f => return Ok(None),
                _ => {
                    // Copy the run up to the next quote or backslash.
                    let run = self.b[j..]
                        .iter()
                        .position(|&x| x == b'"' || x == b'\\' || x < 0x20)
                        .map_or(self.b.len(), |n| j + n);
                    out.push_str(std::str::from_utf8(&self.b[j..run]).unwrap_or_default());
                    j = run;
                }
            }
        }
        self.i = j + 1;
        Ok(Some(Cow::Owned(out)))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.b.get(at..at + 4)?;
        let s = std::str::from_utf8(h).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?` as json.loads reads
    /// it: int without fraction and exponent, float with.
    fn number(&mut self) -> Got<'py> {
        let b = self.b;
        let start = self.i;
        let mut j = start;
        if b.get(j) == Some(&b'-') {
            j += 1;
        }
        let digits = |mut k: usize| {
            while b.get(k).is_some_and(u8::is_ascii_digit) {
                k += 1;
            }
            k
        };
        match b.get(j) {
            Some(b'0') => j += 1,
            Some(b'1'..=b'9') => j = digits(j),
            _ => return Ok(None),
        }
        let int_end = j;
        let mut float = false;
        if b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
            j = digits(j + 1);
            float = true;
        }
        if let Some(b'e' | b'E') = b.get(j) {
            let mut k = j + 1;
            if let Some(b'+' | b'-') = b.get(k) {
                k += 1;
            }
            if b.get(k).is_some_and(u8::is_ascii_digit) {
                j = digits(k);
                float = true;
            }
        }
        let text = std::str::from_utf8(&b[start..j]).unwrap_or_default();
        if float {
            let Ok(f) = text.parse::<f64>() else {
                return Ok(None);
            };
            self.i = j;
            return Ok(Some(PyFloat::new(self.py, f).into_any()));
        }
        if int_end - start > 18 {
            return Ok(None);
        }
        let Ok(n) = text.parse::<i64>() else {
            return Ok(None);
        };
        self.i = j;
        Ok(Some(n.into_pyobject(self.py)?.into_any()))
    }
}
