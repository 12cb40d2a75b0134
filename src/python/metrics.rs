//! Python handles for metrics series. `inc()`, `set()` and `observe()` run on
//! the caller's thread and touch only the shared mapping: one atomic update,
//! no call into the kernel thread, no lock, no syscall.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::metrics::{self, layout, read, Series};

#[pyclass(frozen, module = "iokernel._native")]
pub struct CounterSeries(Series);

#[pymethods]
impl CounterSeries {
    #[pyo3(signature = (amount = 1.0))]
    fn inc(&self, amount: f64) -> PyResult<()> {
        if amount < 0.0 || amount.is_nan() {
            return Err(PyValueError::new_err(
                "counters only go up: inc() needs an amount >= 0",
            ));
        }
        self.0.add(amount);
        Ok(())
    }
    fn get(&self) -> f64 {
        self.0.get()
    }
}

#[pyclass(frozen, module = "iokernel._native")]
pub struct GaugeSeries(Series);

#[pymethods]
impl GaugeSeries {
    #[pyo3(signature = (amount = 1.0))]
    fn inc(&self, amount: f64) {
        self.0.add(amount);
    }
    #[pyo3(signature = (amount = 1.0))]
    fn dec(&self, amount: f64) {
        self.0.add(-amount);
    }
    fn set(&self, value: f64) {
        self.0.set(value);
    }
    fn get(&self) -> f64 {
        self.0.get()
    }
}

#[pyclass(frozen, module = "iokernel._native")]
pub struct HistogramSeries(Series);

#[pymethods]
impl HistogramSeries {
    fn observe(&self, value: f64) {
        self.0.observe(value);
    }
    fn sum(&self) -> f64 {
        self.0.get()
    }
    fn count(&self) -> u64 {
        self.0.count()
    }
}

/// Register a series; `labels` are (name, value) pairs.
#[pyfunction]
#[pyo3(signature = (kind, name, help, labels, buckets = None))]
pub fn metric_series(
    py: Python<'_>,
    kind: &str,
    name: &str,
    help: &str,
    labels: Vec<(String, String)>,
    buckets: Option<Vec<f64>>,
) -> PyResult<Py<PyAny>> {
    for (k, _) in &labels {
        if !layout::valid_name(k) || k.starts_with("__") {
            return Err(PyValueError::new_err(format!("invalid label name {k:?}")));
        }
    }
    let pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let rendered = layout::render_labels(&pairs);
    let k = match kind {
        "counter" => layout::Kind::Counter,
        "gauge" => layout::Kind::Gauge,
        "histogram" => layout::Kind::Histogram,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown metric kind {kind:?}"
            )))
        }
    };
    let bounds = buckets.unwrap_or_else(|| metrics::LATENCY_BUCKETS.to_vec());
    let s = metrics::register(name, help, &rendered, k, &bounds, false)
        .map_err(PyValueError::new_err)?;
    Ok(match k {
        layout::Kind::Counter => Py::new(py, CounterSeries(s))?.into_any(),
        layout::Kind::Gauge => Py::new(py, GaugeSeries(s))?.into_any(),
        layout::Kind::Histogram => Py::new(py, HistogramSeries(s))?.into_any(),
    })
}

/// This process's metrics file (None if only in memory).
#[pyfunction]
pub fn metrics_path() -> Option<String> {
    metrics::path().map(|p| p.display().to_string())
}

/// Why there is no metrics file, if there is none.
#[pyfunction]
pub fn metrics_file_error() -> Option<String> {
    metrics::file_error()
}

/// Remove this process's metrics file (called at clean exit).
#[pyfunction]
pub fn metrics_cleanup() {
    metrics::remove_file();
}

fn load(py: Python<'_>, path: Option<&str>) -> PyResult<read::Snapshot> {
    let bytes = match path {
        None => metrics::snapshot_bytes(),
        Some(p) => py
            .detach(|| std::fs::read(p))
            .map_err(|e| PyOSError::new_err(format!("cannot read metrics file {p}: {e}")))?,
    };
    read::parse(&bytes)
        .map_err(|e| PyValueError::new_err(format!("{}: {e}", path.unwrap_or("own metrics"))))
}

/// Prometheus text of a metrics file (this process's if `path` is None).
#[pyfunction]
#[pyo3(signature = (path = None))]
pub fn render_metrics(py: Python<'_>, path: Option<&str>) -> PyResult<String> {
    Ok(read::render(&load(py, path)?))
}

/// A metrics file as data: (pid, started_ms, list of series dicts).
#[pyfunction]
#[pyo3(signature = (path = None))]
pub fn read_metrics<'py>(
    py: Python<'py>,
    path: Option<&str>,
) -> PyResult<(u32, u64, Bound<'py, PyList>)> {
    let snap = load(py, path)?;
    let out = PyList::empty(py);
    for s in snap.samples {
        let d = PyDict::new(py);
        d.set_item("name", &s.name)?;
        d.set_item("help", &s.help)?;
        d.set_item("kind", s.kind.name())?;
        d.set_item("kernel", s.kernel)?;
        d.set_item("labels", &s.labels)?;
        d.set_item("value", s.value)?;
        if s.kind == layout::Kind::Histogram {
            d.set_item("count", s.count())?;
            d.set_item("buckets", s.buckets.clone())?;
        }
        out.append(d)?;
    }
    Ok((snap.pid, snap.started_ms, out))
}
