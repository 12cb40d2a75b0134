//! What the PostgreSQL binding checks in a statement's text before sending
//! it (no NUL, no COPY ... FROM STDIN through a plain query), and the
//! summary the metrics count it under (its first word, never values).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::errors;
use crate::kernel::Summary;
use crate::protocols::pg::ClientError;
use crate::protocols::pg_sql;

#[inline]
pub(super) fn check_sql(py: Python<'_>, sql: &str) -> PyResult<()> {
    if sql.contains('\0') {
        return Err(PyValueError::new_err(
            "SQL text must not contain NUL characters",
        ));
    }
    // Cheap first: only SQL that mentions STDIN is looked at closely.
    if has_stdin(sql) && pg_sql::copies_from_stdin(sql) {
        return Err(errors::client_error(
            py,
            &ClientError::Interface("COPY ... FROM STDIN needs its data from the client, which a plain query cannot send \
             (nothing was sent): use copy_to_table() or copy_records_to_table()".into()),
        ));
    }
    Ok(())
}

fn has_stdin(sql: &str) -> bool {
    sql.as_bytes()
        .windows(5)
        .any(|w| w.eq_ignore_ascii_case(b"stdin"))
}

#[inline]
pub(super) fn summary(sql: &str) -> Summary {
    // The first word only ("SELECT", "INSERT"): never values.
    let word: String = sql
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .take(20)
        .collect();
    Summary::new(word.as_bytes())
}
