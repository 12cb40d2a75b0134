//! PostgreSQL arrays in TEXT format, as `array_out` prints them:
//! `{1,2,NULL}`, `{"a b","c\"d",NULL,"NULL"}` (a quoted `"NULL"` is the
//! string), `{{1,2},{3,4}}`, `{}`, and with non-default lower bounds
//! `[0:1]={1,2}` (the bounds are dropped). Elements are parsed by `decode`
//! with the element type's OID; sub-arrays become nested `Value::Array`s.
//!
//! Whitespace around elements and unquoted backslash escapes are accepted as
//! `array_in` does. Only the `,` delimiter is supported (every type here uses
//! it; `box` uses `;`). Nesting is bounded by PostgreSQL's own limit of 6
//! dimensions, so hostile input cannot recurse deeply.

use super::{bad, decode, oid::*, Value};

/// PostgreSQL's MAXDIM.
const MAX_DIMS: usize = 6;

/// The element type of a supported array type, e.g. 1007 (int4[]) -> 23.
pub fn element_oid(array_oid: u32) -> Option<u32> {
    Some(match array_oid {
        1000 => BOOL,
        1001 => BYTEA,
        1002 => CHAR,
        1003 => NAME,
        1005 => INT2,
        1007 => INT4,
        1016 => INT8,
        1009 => TEXT,
        1028 => OID,
        199 => JSON,
        143 => XML,
        1021 => FLOAT4,
        1022 => FLOAT8,
        1014 => BPCHAR,
        1015 => VARCHAR,
        1182 => DATE,
        1183 => TIME,
        1115 => TIMESTAMP,
        1185 => TIMESTAMPTZ,
        1187 => INTERVAL,
        1231 => NUMERIC,
        2951 => UUID,
        3807 => JSONB,
        _ => return None,
    })
}

/// `int4[]` for 23, and so on.
pub(super) fn array_type_name(elem: u32) -> &'static str {
    match elem {
        BOOL => "bool[]",
        BYTEA => "bytea[]",
        CHAR => "\"char\"[]",
        NAME => "name[]",
        INT2 => "int2[]",
        INT4 => "int4[]",
        INT8 => "int8[]",
        TEXT => "text[]",
        OID => "oid[]",
        JSON => "json[]",
        XML => "xml[]",
        FLOAT4 => "float4[]",
        FLOAT8 => "float8[]",
        BPCHAR => "bpchar[]",
        VARCHAR => "varchar[]",
        DATE => "date[]",
        TIME => "time[]",
        TIMESTAMP => "timestamp[]",
        TIMESTAMPTZ => "timestamptz[]",
        INTERVAL => "interval[]",
        NUMERIC => "numeric[]",
        UUID => "uuid[]",
        JSONB => "jsonb[]",
        _ => "array",
    }
}

/// Parse the text of an array of type `array_oid` whose elements are `elem`.
pub(super) fn decode_array(array_oid: u32, elem: u32, text: &[u8]) -> Result<Value, String> {
    let mut p = Parser {
        s: text,
        i: 0,
        elem,
        buf: Vec::new(),
    };
    let fail = |what: &str| bad(array_oid, text, what);
    p.ws();
    if p.peek() == Some(b'[') {
        p.bounds().map_err(fail)?;
        p.ws();
    }
    if !p.eat(b'{') {
        return Err(fail("expected {"));
    }
    let v = p.level(1).map_err(|e| match e {
        Error::Syntax(what) => fail(what),
        Error::Element(msg) => format!("invalid {} value: {msg}", array_type_name(elem)),
    })?;
    p.ws();
    if !p.done() {
        return Err(fail("unexpected text after the closing }"));
    }
    Ok(v)
}

enum Error {
    /// The array's own syntax is wrong.
    Syntax(&'static str),
    /// An element did not parse as the element type; the message says why.
    Element(String),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    elem: u32,
    /// Scratch space for elements with backslash escapes.
    buf: Vec<u8>,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }
    fn ws(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.i += 1;
        }
    }

    /// `[lo:hi]` (or `[hi]`) once per dimension, then `=`; values ignored.
    fn bounds(&mut self) -> Result<(), &'static str> {
        const WHAT: &str = "invalid dimension bounds, expected [lo:hi]={...}";
        let mut dims = 0;
        let int = |p: &mut Self| {
            let _ = p.eat(b'-') || p.eat(b'+');
            let start = p.i;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.i += 1;
            }
            p.i > start
        };
        while self.eat(b'[') {
            dims += 1;
            if !int(self) || (self.eat(b':') && !int(self)) || !self.eat(b']') {
                return Err(WHAT);
            }
        }
        if dims == 0 || dims > MAX_DIMS || !self.eat(b'=') {
            return Err(WHAT);
        }
        Ok(())
    }

    /// The inside of one `{...}`, the `{` already consumed.
    fn level(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DIMS {
            return Err(Error::Syntax("more than 6 dimensions"));
        }
        let mut items = Vec::new();
        self.ws();
        if self.eat(b'}') {
            return Ok(Value::Array(items));
        }
        let mut nested = None;
        loop {
            self.ws();
            let sub = self.eat(b'{');
            if *nested.get_or_insert(sub) != sub {
                return Err(Error::Syntax("mixes sub-arrays and elements"));
            }
            items.push(if sub {
                self.level(depth + 1)?
            } else {
                self.element()?
            });
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                None => return Err(Error::Syntax("unterminated array")),
                Some(_) => return Err(Error::Syntax("expected , or } after an element")),
            }
        }
        if nested == Some(true) {
            let len = |v: &Value| match v {
                Value::Array(a) => a.len(),
                _ => 0,
            };
            if items.iter().any(|v| len(v) != len(&items[0])) {
                return Err(Error::Syntax("sub-arrays of different lengths"));
            }
        }
        Ok(Value::Array(items))
    }

    /// One element, quoted or not; unquoted `NULL` (any case) is SQL NULL.
    fn element(&mut self) -> Result<Value, Error> {
        let quoted = self.eat(b'"');
        let start = self.i;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(Error::Syntax("unterminated array")),
                Some(b'\\') => {
                    escaped = true;
                    self.i += 2;
                    if self.i > self.s.len() {
                        return Err(Error::Syntax("unterminated array"));
                    }
                }
                Some(b'"') if quoted => break,
                Some(b'"' | b'{') if !quoted => {
                    return Err(Error::Syntax("unexpected \" or { in an unquoted element"))
                }
                Some(b',' | b'}') if !quoted => break,
                Some(_) => self.i += 1,
            }
        }
        let raw = &self.s[start..self.i];
        self.i += usize::from(quoted);
        let text: &[u8] = if escaped {
            self.buf.clear();
            let mut keep = 0; // unquoted: trailing unescaped whitespace is dropped
            let mut it = raw.iter();
            while let Some(&b) = it.next() {
                if b == b'\\' {
                    self.buf.extend(it.next());
                    keep = self.buf.len();
                } else {
                    self.buf.push(b);
                    if quoted || !is_space(b) {
                        keep = self.buf.len();
                    }
                }
            }
            self.buf.truncate(keep);
            &self.buf
        } else if quoted {
            raw
        } else {
            let end = raw.iter().rposition(|&b| !is_space(b)).map_or(0, |p| p + 1);
            &raw[..end]
        };
        if !quoted && !escaped {
            if text.is_empty() {
                return Err(Error::Syntax("empty unquoted element"));
            }
            if text.eq_ignore_ascii_case(b"NULL") {
                return Ok(Value::Null);
            }
        }
        decode(self.elem, text).map_err(Error::Element)
    }
}

#[cfg(test)]
#[path = "pg_text_array_tests.rs"]
mod tests;
