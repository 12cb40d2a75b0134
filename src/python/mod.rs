//! The `iokernel._native` extension module: what Python sees of the kernel.

mod admin;
mod core;
mod discovery;
mod metrics;
mod pg;
mod redis;

use std::time::Duration;

use pyo3::prelude::*;

/// Process-wide caps on requests in flight and queued (None: no cap).
#[pyfunction]
#[pyo3(signature = (max_in_flight, max_queued))]
fn configure_limits(max_in_flight: Option<usize>, max_queued: Option<usize>) {
    crate::kernel::limits::configure(max_in_flight, max_queued);
}

/// The process-wide caps now and what counts against them:
/// (max_in_flight, max_queued, in flight, queued), None for no cap.
#[pyfunction]
fn process_limits() -> (Option<usize>, Option<usize>, usize, usize) {
    use crate::kernel::limits::PROCESS;
    use std::sync::atomic::Ordering::Relaxed;
    let (a, b) = crate::kernel::limits::caps();
    (
        a,
        b,
        PROCESS.outstanding.load(Relaxed),
        PROCESS.queued.load(Relaxed),
    )
}

/// Whether asyncio requests of one loop turn are sent together at its end;
/// set first when `on` is given.
#[pyfunction]
#[pyo3(signature = (on = None))]
fn loop_batching(on: Option<bool>) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    let flag = &self::core::cork::LOOP_BATCHING;
    if let Some(on) = on {
        flag.store(on, Relaxed);
    }
    flag.load(Relaxed)
}

/// Stop the kernel thread, waiting up to `wait` seconds. Returns False if it
/// did not stop in time. Called at interpreter exit; a later use restarts it.
#[pyfunction]
#[pyo3(signature = (wait = 1.0))]
fn shutdown(py: Python<'_>, wait: f64) -> bool {
    let d = Duration::from_secs_f64(wait.clamp(0.0, 60.0));
    py.detach(move || crate::kernel::runtime::shutdown(d))
}

/// The process generation: changes in a child after `os.fork()`.
#[pyfunction]
fn generation() -> u64 {
    crate::kernel::runtime::generation()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<self::core::completer::Completer>()?;
    m.add_class::<self::core::call::Call>()?;
    m.add_class::<self::core::stream::ItemStream>()?;
    m.add_class::<redis::RedisService>()?;
    m.add_class::<redis::ClientCore>()?;
    m.add_class::<pg::PgService>()?;
    pg::record::add_type(m)?;
    pg::uuid_obj::add_type(m)?;
    m.add_class::<pg::CopyWriter>()?;
    m.add_function(wrap_pyfunction!(shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(configure_limits, m)?)?;
    m.add_function(wrap_pyfunction!(process_limits, m)?)?;
    m.add_function(wrap_pyfunction!(loop_batching, m)?)?;
    m.add_class::<metrics::CounterSeries>()?;
    m.add_class::<metrics::GaugeSeries>()?;
    m.add_class::<metrics::HistogramSeries>()?;
    for f in [
        wrap_pyfunction!(metrics::metric_series, m)?,
        wrap_pyfunction!(metrics::metrics_path, m)?,
        wrap_pyfunction!(metrics::metrics_file_error, m)?,
        wrap_pyfunction!(metrics::metrics_cleanup, m)?,
        wrap_pyfunction!(metrics::render_metrics, m)?,
        wrap_pyfunction!(metrics::read_metrics, m)?,
        wrap_pyfunction!(admin::admin_serve, m)?,
        wrap_pyfunction!(admin::admin_address, m)?,
        wrap_pyfunction!(admin::metrics_dir, m)?,
        wrap_pyfunction!(pg::values::_pg_decode_cell, m)?,
        wrap_pyfunction!(pg::values::_pg_encode_param, m)?,
        wrap_pyfunction!(pg::json::_pg_json_loads, m)?,
        wrap_pyfunction!(self::core::completer::running_call, m)?,
        wrap_pyfunction!(self::core::floor::_floor_call, m)?,
        wrap_pyfunction!(pg::heap_trim::_pg_heap_trims, m)?,
        wrap_pyfunction!(discovery::discovery_configure, m)?,
        wrap_pyfunction!(discovery::discovery_publish, m)?,
        wrap_pyfunction!(discovery::discovery_current, m)?,
    ] {
        m.add_function(f)?;
    }
    m.add_function(wrap_pyfunction!(generation, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "ENCODING_ERRORS",
        pyo3::types::PyTuple::new(m.py(), redis::ENCODING_ERRORS)?,
    )?;
    // What PgService.query/submit return for a statement not described yet.
    m.add(
        "UNKNOWN_STATEMENT",
        pyo3::types::PyString::new(m.py(), "<unknown statement>"),
    )?;
    Ok(())
}
