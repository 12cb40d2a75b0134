//! Giving the memory of converted raw rows back to the system while a big
//! result is still arriving. The kernel thread reads rows into buffers from
//! its own malloc arena; once a batch is made into Records its buffers are
//! freed, but glibc keeps freed pages in the middle of an arena resident,
//! and Python's objects never reuse them (they come from pymalloc's own
//! mappings). Over a 1,000,000-row fetch that left ~90 MB of freed raw
//! rows in the peak RSS. Every `TRIM_EVERY` bytes of freed rows,
//! `malloc_trim(0)` returns the free pages of every arena (a few ms, the
//! GIL released). Other platforms: nothing (no such call).
//!
//! Only big results count: a batch of at least `BIG` rows (a full part of
//! a result delivered in parts, or a whole result that large). A service
//! running many small queries never trims (its freed buffers are reused by
//! the next reads); a trim walks the free lists and holds the arena locks.

use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::prelude::*;

/// Freed raw bytes between two trims: small next to a big result, large
/// enough that a trim (a walk over the free chunks) is rare.
const TRIM_EVERY: usize = 8 << 20;

/// Rows in a batch for it to count as part of a big result; a streamed
/// fetch is delivered in parts of this many rows (`FETCH_BATCH`).
pub const BIG: usize = 4096;

static FREED: AtomicUsize = AtomicUsize::new(0);
static TRIMS: AtomicUsize = AtomicUsize::new(0);

/// Whether a batch of `rows` rows is worth counting (`freed`).
pub fn counts(rows: usize) -> bool {
    rows >= BIG
}

/// `bytes` of raw rows of a big result were just freed (after converting
/// them).
pub fn freed(py: Python<'_>, bytes: usize) {
    let before = FREED.fetch_add(bytes, Ordering::Relaxed);
    if before + bytes < TRIM_EVERY {
        return;
    }
    FREED.store(0, Ordering::Relaxed);
    TRIMS.fetch_add(1, Ordering::Relaxed);
    py.detach(trim);
}

/// Test hook: how many trims this process has made.
#[pyfunction]
pub fn _pg_heap_trims() -> usize {
    TRIMS.load(Ordering::Relaxed)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks and releases glibc's free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
