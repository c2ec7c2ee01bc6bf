//! Progress reporting for hashing and loading: a bar on a terminal, log lines otherwise.

use std::io::IsTerminal;

/// Receives progress of long-running loading stages.
pub trait Progress: Send {
    /// A stage starts; `total` is its size in `unit`s (bytes, tensors).
    fn start(&mut self, stage: &str, total: u64, unit: ProgressUnit);
    /// `done` units of the current stage are complete (cumulative).
    fn update(&mut self, done: u64);
    /// The current stage is complete.
    fn finish(&mut self);
}

/// What a progress stage counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressUnit {
    /// Bytes read and hashed.
    Bytes,
    /// Tensors loaded.
    Tensors,
}

/// Reports nothing (library use, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _stage: &str, _total: u64, _unit: ProgressUnit) {}
    fn update(&mut self, _done: u64) {}
    fn finish(&mut self) {}
}

/// Draws a progress bar when stderr is a terminal, and otherwise logs a line at each
/// quarter of a stage through `tracing` (so enclave consoles get readable logs).
#[derive(Debug)]
pub struct ConsoleProgress {
    bar: Option<indicatif::ProgressBar>,
    interactive: bool,
    stage: String,
    total: u64,
    unit: ProgressUnit,
    next_log_quarter: u64,
}

impl ConsoleProgress {
    /// Chooses the bar or log lines from whether stderr is a terminal.
    pub fn new() -> Self {
        Self::with_mode(std::io::stderr().is_terminal())
    }

    /// Forces bar (`true`) or log-line (`false`) mode.
    pub fn with_mode(interactive: bool) -> Self {
        Self {
            bar: None,
            interactive,
            stage: String::new(),
            total: 0,
            unit: ProgressUnit::Bytes,
            next_log_quarter: 1,
        }
    }

    fn format_amount(&self, amount: u64) -> String {
        match self.unit {
            ProgressUnit::Bytes => format!("{:.1} MiB", amount as f64 / (1024.0 * 1024.0)),
            ProgressUnit::Tensors => format!("{amount} tensors"),
        }
    }
}

impl Default for ConsoleProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for ConsoleProgress {
    fn start(&mut self, stage: &str, total: u64, unit: ProgressUnit) {
        self.stage = stage.to_owned();
        self.total = total;
        self.unit = unit;
        self.next_log_quarter = 1;
        if self.interactive {
            let template = match unit {
                ProgressUnit::Bytes => {
                    "{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec})"
                }
                ProgressUnit::Tensors => "{msg:>10} [{bar:40}] {pos}/{len} tensors",
            };
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(stage.to_owned());
            self.bar = Some(bar);
        } else {
            tracing::info!(stage, total = %self.format_amount(total), "started");
        }
    }

    fn update(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        } else if self.total > 0 {
            while self.next_log_quarter < 4 && done * 4 >= self.total * self.next_log_quarter {
                tracing::info!(
                    stage = %self.stage,
                    done = %self.format_amount(done),
                    "{}%",
                    self.next_log_quarter * 25
                );
                self.next_log_quarter += 1;
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        } else {
            tracing::info!(stage = %self.stage, total = %self.format_amount(self.total), "done");
        }
    }
}
