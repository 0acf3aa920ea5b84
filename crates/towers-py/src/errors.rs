//! The library's errors as Python exceptions: one class per [`towers::ErrorKind`], defined in
//! `towers/_errors.py` (so that they can also derive from `ValueError`, `OSError`, …), with the
//! library's message (file:line:field) as it is.

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use towers::{Error, ErrorKind};

/// The exception class of a kind, imported from `towers._errors` once.
fn class(py: Python<'_>, kind: ErrorKind) -> PyResult<Bound<'_, PyType>> {
    static INPUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static CONFIG: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static MODEL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static FILE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static BUSY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static INTERNAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let (cell, name) = match kind {
        ErrorKind::Input => (&INPUT, "InputError"),
        ErrorKind::Usage => (&CONFIG, "ConfigError"),
        ErrorKind::Artifact => (&MODEL, "ModelError"),
        ErrorKind::Io => (&FILE, "FileError"),
        ErrorKind::Busy => (&BUSY, "BusyError"),
        ErrorKind::Internal | ErrorKind::Interrupted => (&INTERNAL, "InternalError"),
    };
    cell.import(py, "towers._errors", name).cloned()
}

/// The Python exception for a library error. `Interrupted` becomes `KeyboardInterrupt`.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    if e.kind() == ErrorKind::Interrupted {
        return PyKeyboardInterrupt::new_err("training interrupted");
    }
    let message = e.to_string();
    match class(py, e.kind()) {
        Ok(cls) => PyErr::from_type(cls, message),
        Err(_) => PyRuntimeError::new_err(message),
    }
}

/// Converts a library result, attaching to the interpreter for the error's class.
pub trait IntoPy<T> {
    /// The value, or the error as its Python exception.
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for towers::Result<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

/// An input error (bad data from Python: a wrong type, a missing value).
pub fn input(py: Python<'_>, message: impl Into<String>) -> PyErr {
    to_py(py, Error::Data(message.into()))
}

/// A usage error (a bad option or argument).
pub fn config(py: Python<'_>, message: impl Into<String>) -> PyErr {
    match class(py, ErrorKind::Usage) {
        Ok(cls) => PyErr::from_type(cls, message.into()),
        Err(_) => PyRuntimeError::new_err(message.into()),
    }
}
