//! Progress of long runs (training, index builds), reported to an observer: the CLI draws it
//! with a progress bar, the Python package its own. The library draws nothing.

use std::ops::ControlFlow;

/// What a long run reports.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A run of `total` steps starts; `what` names it (`training`, `IVF index`).
    Started {
        /// What runs.
        what: &'a str,
        /// Steps it will take.
        total: u64,
    },
    /// One more step is done.
    Step,
    /// A stage is done, with a short message (e.g. `epoch 3 loss 1.234`).
    Message(&'a str),
    /// The run is over.
    Finished,
}

/// Receives [`Event`]s; returning [`ControlFlow::Break`] stops a training run (with
/// [`Error::Interrupted`](crate::Error::Interrupted)) at the end of the current batch.
pub trait Observer {
    /// One event.
    fn observe(&mut self, event: Event<'_>) -> ControlFlow<()>;
}

impl<F: FnMut(Event<'_>) -> ControlFlow<()>> Observer for F {
    fn observe(&mut self, event: Event<'_>) -> ControlFlow<()> {
        self(event)
    }
}

/// An observer that ignores everything.
pub fn quiet() -> impl Observer {
    |_: Event<'_>| ControlFlow::Continue(())
}
