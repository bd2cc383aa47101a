//! The progress bar shown while a crowd runs (`indicatif`, on stderr).
//!
//! It exists so a person watching `cargo xtask demo` sees the sale happen: requests sent against
//! the run's bound, the share answered at the edge, units won, and the clock relative to the start.
//! It reads the recorder every 200 ms and never slows the crowd down.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::record::Recorder;

pub struct Progress {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Start the bar (when `enabled`; indicatif hides it anyway when stderr is not a terminal).
    pub fn start(enabled: bool, recorder: Recorder, max_requests: u64, sale_start: Instant) -> Progress {
        if !enabled {
            return Progress { bar: None, task: None };
        }
        let bar = ProgressBar::with_draw_target(Some(max_requests), ProgressDrawTarget::stderr_with_hz(5));
        let style = ProgressStyle::with_template("{spinner} {bar:20} {pos:>6}/{len} requests  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let b = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let (sent, edge, won) = recorder.progress();
                let now = Instant::now();
                let clock = if now < sale_start {
                    format!("start in {:.1}s", (sale_start - now).as_secs_f64())
                } else {
                    format!("start +{:.1}s", (now - sale_start).as_secs_f64())
                };
                let share = if sent > 0 { 100.0 * edge as f64 / sent as f64 } else { 0.0 };
                b.set_position(sent);
                b.set_message(format!("{clock}, edge {share:.1}%, won {won}"));
            }
        });
        Progress { bar: Some(bar), task: Some(task) }
    }

    pub fn finish(self) {
        if let Some(t) = &self.task {
            t.abort();
        }
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
