//! `iokernel.pg.Record`: a row that behaves like a tuple (index, slice,
//! length, iteration, equality with tuples) and like a read-only mapping by
//! column name (`r["name"]`, `get`, `keys`, `values`, `items`, `"name" in r`),
//! as asyncpg's Record does. Rows of one result share one names tuple and one
//! name → index dict. A Record's values can hold mutable objects (a jsonb
//! dict) that may come to hold the Record, so the collector sees them.

use pyo3::exceptions::{PyIndexError, PyKeyError, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyDict, PySlice, PyString, PyTuple};
use pyo3::PyTraverseError;

#[pyclass(frozen, module = "iokernel.pg", name = "Record")]
pub struct Record {
    values: Py<PyTuple>,
    names: Py<PyTuple>,
    index: Py<PyDict>,
}

impl Record {
    pub fn new(values: Py<PyTuple>, names: Py<PyTuple>, index: Py<PyDict>) -> Self {
        Record {
            values,
            names,
            index,
        }
    }

    fn position(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        match self.index.bind(py).get_item(name)? {
            Some(i) => Ok(Some(i.extract()?)),
            None => Ok(None),
        }
    }
}

#[pymethods]
impl Record {
    /// Only visits: the fields never change, and every cycle through a
    /// Record passes a mutable object (a dict or list) that the collector
    /// clears instead.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.values)?;
        visit.call(&self.names)?;
        visit.call(&self.index)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.values.bind(py).len()
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let vals = self.values.bind(py);
        if key.is_instance_of::<PyString>() {
            return match self.position(py, key)? {
                Some(i) => Ok(vals.get_item(i)?.unbind()),
                None => Err(PyKeyError::new_err(key.clone().unbind())),
            };
        }
        if let Ok(s) = key.cast::<PySlice>() {
            return Ok(vals.as_any().get_item(s)?.unbind());
        }
        let i: isize = key.extract().map_err(|_| {
            PyTypeError::new_err("Record indices must be integers, slices or column names")
        })?;
        let n = vals.len() as isize;
        let j = if i < 0 { i + n } else { i };
        if j < 0 || j >= n {
            return Err(PyIndexError::new_err("Record index out of range"));
        }
        Ok(vals.get_item(j as usize)?.unbind())
    }

    /// True if the record has a column of that name (as asyncpg's Record).
    fn __contains__(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.position(py, name)?.is_some())
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self
            .values
            .bind(py)
            .as_any()
            .try_iter()?
            .into_any()
            .unbind())
    }

    /// Compares like the tuple of its values (with Records and tuples), so
    /// rows can be sorted and compared as asyncpg's can.
    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let mine = self.values.bind(py).as_any();
        let theirs = if let Ok(r) = other.cast::<Record>() {
            r.get().values.bind(py).clone().into_any()
        } else if other.is_instance_of::<PyTuple>() {
            other.clone()
        } else {
            return Ok(py.NotImplemented());
        };
        Ok(mine.rich_compare(theirs, op)?.unbind())
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.values.bind(py).hash()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut parts = Vec::new();
        for (n, v) in self.names.bind(py).iter().zip(self.values.bind(py).iter()) {
            parts.push(format!("{}={}", n.str()?, v.repr()?));
        }
        Ok(format!("<Record {}>", parts.join(" ")))
    }

    #[pyo3(signature = (key, default = None))]
    fn get(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match self.position(py, key)? {
            Some(i) => Ok(self.values.bind(py).get_item(i)?.unbind()),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    fn keys(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.names.bind(py).as_any().try_iter()?.into_any().unbind())
    }

    fn values(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.__iter__(py)
    }

    fn items(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let pairs: Vec<Bound<'_, PyTuple>> = self
            .names
            .bind(py)
            .iter()
            .zip(self.values.bind(py).iter())
            .map(|(n, v)| PyTuple::new(py, [n, v]))
            .collect::<PyResult<_>>()?;
        Ok(PyTuple::new(py, pairs)?
            .as_any()
            .try_iter()?
            .into_any()
            .unbind())
    }
}
