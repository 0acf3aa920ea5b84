//! Progress bars on standard error for the library's long runs (hidden when stderr is not a
//! terminal, and with `--json`).

use indicatif::{ProgressBar, ProgressStyle};
use std::ops::ControlFlow;
use towers::progress::{Event, Observer};

/// Draws the library's progress events as a bar.
pub struct Bar {
    bar: Option<ProgressBar>,
    shown: bool,
}

impl Bar {
    /// A bar, drawn when `show` is true.
    pub fn new(show: bool) -> Self {
        Bar { bar: None, shown: show }
    }
}

impl Observer for Bar {
    fn observe(&mut self, event: Event) -> ControlFlow<()> {
        match event {
            Event::Started { what, total } => {
                let bar = if self.shown { ProgressBar::new(total) } else { ProgressBar::hidden() };
                let template = format!("{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {{msg}} ({{elapsed}})");
                if let Ok(style) = ProgressStyle::with_template(&template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                self.bar = Some(bar);
            }
            Event::Step => self.bar.iter().for_each(|b| b.inc(1)),
            Event::Message(m) => self.bar.iter().for_each(|b| b.set_message(m.to_string())),
            Event::Finished => self.bar.take().iter().for_each(ProgressBar::finish_and_clear),
        }
        ControlFlow::Continue(())
    }
}
