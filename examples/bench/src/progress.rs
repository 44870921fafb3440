//! The progress line on stderr while a run goes on.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the line is printed.
const EVERY: Duration = Duration::from_secs(1);

/// A running progress printer; [`Progress::finish`] stops it.
pub struct Progress {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Progress {
    /// Prints `[tag] <elapsed> <line()>` every second until finished.
    pub fn start(tag: String, mut line: impl FnMut(Duration) -> String + Send + 'static) -> Self {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tick.tick() => {
                        let elapsed = start.elapsed();
                        eprintln!("[{tag}] {:5.1}s {}", elapsed.as_secs_f64(), line(elapsed));
                    }
                }
            }
        });
        Self { stop, task }
    }

    /// Stops printing.
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
