//! Progress: a bar (count, rate, ETA) through indicatif on a terminal; otherwise a plain line
//! at most every few seconds, so logs stay readable.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Plain progress lines at most this often.
const LINE_EVERY: Duration = Duration::from_secs(2);

pub struct Progress {
    bar: Option<ProgressBar>,
    what: &'static str,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// Progress of `what` (`bytes` or `rows`) towards `total`, when known.
    pub fn new(what: &'static str, total: Option<u64>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let (bar, template) = match total {
                Some(total) => (
                    ProgressBar::new(total),
                    "{bar:40} {human_pos}/{human_len} {msg} ({per_sec}, ETA {eta})",
                ),
                None => (
                    ProgressBar::new_spinner(),
                    "{spinner} {human_pos} {msg} ({per_sec})",
                ),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_message(what);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            what,
            started: now,
            last_line: now,
        }
    }

    pub fn set(&mut self, position: u64, detail: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(position);
                bar.set_message(format!("{} {detail}", self.what));
            }
            None if self.last_line.elapsed() >= LINE_EVERY => {
                self.last_line = Instant::now();
                let rate = position as f64 / self.started.elapsed().as_secs_f64().max(0.001);
                eprintln!("{position} {} ({rate:.0}/s) {detail}", self.what);
            }
            None => {}
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
