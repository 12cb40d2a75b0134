//! Giving the memory of converted raw rows back to the system while a big
//! result is still arriving. The kernel thread reads rows into buffers from
//! its own malloc arena; once a batch is made into Records its buffers are
//! freed, but glibc keeps freed pages in the middle of an arena resident,
//! and Python's objects never reuse them (they come from pymalloc's own
//! mappings). Over a 1,000,000-row fetch that left ~90 MB of freed raw
//! rows in the peak RSS. Every `TRIM_EVERY` bytes of freed rows,
//! `malloc_trim(0)` returns the free pages of every arena (a few ms, the
//! GIL released). Other platforms: nothing (no such call).

use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::Python;

/// Freed raw bytes between two trims: small next to a big result, large
/// enough that a trim (a walk over the free chunks) is rare.
const TRIM_EVERY: usize = 8 << 20;

static FREED: AtomicUsize = AtomicUsize::new(0);

/// `bytes` of raw rows were just freed (after converting them).
pub fn freed(py: Python<'_>, bytes: usize) {
    let before = FREED.fetch_add(bytes, Ordering::Relaxed);
    if before + bytes < TRIM_EVERY {
        return;
    }
    FREED.store(0, Ordering::Relaxed);
    py.detach(trim);
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
