//! `executemany`: one Parse, a Bind+Execute per parameter set, one Sync, so
//! the whole batch is one implicit transaction (all rows or none).
//!
//! Streamed: the first rows go to the kernel as soon as `FIRST_CHUNK` bytes
//! of them are encoded, and the rest follow in `CHUNK`-sized pieces through
//! a request body (`kernel::body`) while the server already works on the
//! first ones. The server, not the encoder, is the bottleneck, so this hides
//! the encoding time instead of adding it in front.
//!
//! With the statement's parameter types (`describe`, one round trip, done by
//! the caller for big batches) the Parse declares them and values of the
//! matching kind go in binary (`binary`), which saves the server work on
//! every row.
//!
//! A row that cannot be encoded stops the stream: the kernel then ends the
//! request with an Execute of a portal that does not exist (`abandon`), the
//! server fails the batch and rolls back the rows it already has, and the
//! caller gets the encoding error naming the row.

use bytes::{Bytes, BytesMut};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::type_object::PyTypeInfo;
use pyo3::types::{PyIterator, PyTuple};

use std::sync::Arc;

use super::binary::bind_params;
use super::encode;
use super::types::Registry;
use super::values::encode_param;
use crate::codec::pg as wire;
use crate::kernel::body::{self, Body, BodyTx};

/// Bytes of rows encoded before the request is submitted.
const FIRST_CHUNK: usize = 8 * 1024;
/// Bytes of rows per later chunk.
const CHUNK: usize = 64 * 1024;

/// A batch as it is submitted: its first bytes and, if it did not fit in
/// them, the body the rest will follow through and what produces it.
pub struct Batch<'py> {
    pub head: Bytes,
    pub body: Option<Body>,
    pub rest: Option<(Rest<'py>, BodyTx)>,
}

/// The rows not encoded yet.
pub struct Rest<'py> {
    rows: Bound<'py, PyIterator>,
    index: usize,
    scratch: BytesMut,
    /// Parameter types from `describe` (empty: all text, types inferred).
    types: Vec<u32>,
    /// Encode for `types` (declared in the Parse) with this registry; else
    /// the older mix of binary and inferred text (`binary`).
    reg: Option<Arc<Registry>>,
}

/// Encode the Parse and the first rows of `sql` × `rows`.
pub fn start<'py>(
    sql: &str,
    rows: &Bound<'py, PyAny>,
    types: Option<Vec<u32>>,
    reg: Option<Arc<Registry>>,
) -> PyResult<Batch<'py>> {
    let types = types.unwrap_or_default();
    if types.len() > u16::MAX as usize {
        return Err(PyValueError::new_err(
            "PostgreSQL accepts at most 65535 parameters",
        ));
    }
    let mut rest = Rest {
        rows: rows.try_iter()?,
        index: 0,
        scratch: BytesMut::with_capacity(256),
        types,
        reg,
    };
    let mut head = BytesMut::with_capacity(FIRST_CHUNK + 1024);
    wire::parse(&mut head, "", sql, &rest.types);
    if rest.fill(&mut head, FIRST_CHUNK)? {
        wire::sync(&mut head);
        return Ok(Batch {
            head: head.freeze(),
            body: None,
            rest: None,
        });
    }
    let (tx, body) = body::channel(Some(abandon()));
    Ok(Batch {
        head: head.freeze(),
        body: Some(body),
        rest: Some((rest, tx)),
    })
}

/// What ends a request whose rows stopped coming: an error (the portal does
/// not exist), so the server rolls the batch back, then the Sync.
fn abandon() -> Bytes {
    let mut out = BytesMut::new();
    wire::execute(&mut out, "iokernel: executemany stopped, roll back", 0);
    wire::sync(&mut out);
    out.freeze()
}

impl Rest<'_> {
    /// Encode the remaining rows into `tx`, ending with the Sync. Stops
    /// early (without error) if the request is gone: its reply says why.
    pub fn produce(mut self, tx: BodyTx) -> PyResult<()> {
        loop {
            let mut chunk = BytesMut::with_capacity(CHUNK + 1024);
            if self.fill(&mut chunk, CHUNK)? {
                wire::sync(&mut chunk);
                tx.finish(chunk.freeze());
                return Ok(());
            }
            if !tx.send(chunk.freeze()) {
                return Ok(());
            }
        }
    }

    /// Append Bind+Execute per row until `out` holds `limit` bytes; true
    /// when the rows ran out.
    fn fill(&mut self, out: &mut BytesMut, limit: usize) -> PyResult<bool> {
        while out.len() < limit {
            let Some(row) = self.rows.next() else {
                return Ok(true);
            };
            let i = self.index;
            self.index += 1;
            self.encode(row, out)
                .map_err(|e| at_row(self.rows.py(), i, e))?;
        }
        Ok(false)
    }

    fn encode(&mut self, row: PyResult<Bound<'_, PyAny>>, out: &mut BytesMut) -> PyResult<()> {
        let row = row?;
        let t = match row.cast::<PyTuple>() {
            Ok(t) => t.clone(),
            Err(_) => PyTuple::new(row.py(), row.try_iter()?.collect::<PyResult<Vec<_>>>()?)?,
        };
        if t.len() > u16::MAX as usize {
            return Err(PyValueError::new_err(
                "PostgreSQL accepts at most 65535 parameters",
            ));
        }
        self.scratch.clear();
        if let Some(reg) = &self.reg {
            let b = encode::bind_section(&t, &self.types, reg)?;
            wire::bind(out, "", "", &b, &[]);
            wire::execute(out, "", 0);
            return Ok(());
        }
        if self.types.is_empty() {
            wire::bind_params_begin(&mut self.scratch, t.len() as u16);
            for a in t.iter() {
                encode_param(&a, &mut self.scratch)?;
            }
        } else {
            bind_params(t.as_slice(), &self.types, &mut self.scratch)?;
        }
        wire::bind(out, "", "", &self.scratch, &[]);
        wire::execute(out, "", 0);
        Ok(())
    }
}

/// Our own encoding errors (built-in TypeError/ValueError/OverflowError)
/// are re-raised saying which row and that nothing was kept; anything else
/// (raised by the caller's iterator) propagates as it is.
fn at_row(py: Python<'_>, i: usize, e: PyErr) -> PyErr {
    let t = e.get_type(py);
    let ours = [
        PyTypeError::type_object(py),
        PyValueError::type_object(py),
        PyOverflowError::type_object(py),
    ];
    let typed = encode::ours(py, &t);
    if !typed && !ours.iter().any(|o| t.is(o)) {
        return e;
    }
    let new = PyErr::from_type(
        t,
        format!(
            "executemany row {i} (counting from 0): {}; nothing from this executemany was kept",
            e.value(py)
        ),
    );
    new.set_cause(py, Some(e));
    new
}
