//! Training progress for Python: the library's events handed to a reporter object
//! (`towers._progress.Reporter`: a tqdm bar in a terminal or a notebook, else a plain line on
//! stderr), and Ctrl-C: the observer checks Python's signals and stops training when a handler
//! raised (`KeyboardInterrupt`), keeping the exception to raise once training has returned.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};
use towers::progress::{Event, Observer};

/// How often steps are passed on (and signals checked) while training runs.
const EVERY: Duration = Duration::from_millis(100);

/// Passes progress to a Python reporter and watches for Ctrl-C. Training runs with the GIL
/// released; the observer attaches to the interpreter only when it has something to do.
pub struct Progress {
    reporter: Option<Py<PyAny>>,
    pending: u64,
    last: Instant,
    /// The exception that stopped training (KeyboardInterrupt, or one the reporter raised).
    pub error: Option<PyErr>,
}

impl Progress {
    /// Reports to `reporter` (none: only watches for Ctrl-C).
    pub fn new(reporter: Option<Py<PyAny>>) -> Self {
        Progress { reporter, pending: 0, last: Instant::now(), error: None }
    }

    /// Calls the reporter's method, after checking for signals.
    fn call<'py>(&self, py: Python<'py>, method: &str, args: Bound<'py, PyTuple>) -> PyResult<()> {
        py.check_signals()?;
        if let Some(r) = &self.reporter {
            r.bind(py).call_method1(method, args)?;
        }
        Ok(())
    }

    fn flush(&mut self, py: Python<'_>) -> PyResult<()> {
        let n = std::mem::take(&mut self.pending);
        self.last = Instant::now();
        self.call(py, "step", (n,).into_pyobject(py)?)
    }
}

impl Observer for Progress {
    fn observe(&mut self, event: Event<'_>) -> ControlFlow<()> {
        if let Event::Step = event {
            self.pending += 1;
            if self.last.elapsed() < EVERY {
                return ControlFlow::Continue(());
            }
        }
        let result = Python::attach(|py| match event {
            Event::Started { what, total } => {
                self.last = Instant::now();
                self.call(py, "started", (what, total).into_pyobject(py)?)
            }
            Event::Step => self.flush(py),
            Event::Message(m) => {
                self.flush(py)?;
                self.call(py, "message", (m,).into_pyobject(py)?)
            }
            Event::Finished => {
                self.flush(py)?;
                self.call(py, "finished", PyTuple::empty(py))
            }
        });
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}
