//! Failure counts per handler, kept by the `#[after_error]` advice.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// How often each handler failed, by kind of failure; cheap to clone.
#[derive(Debug, Default, Clone)]
pub struct FailureTracker {
    counts: Arc<Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>>,
}

impl FailureTracker {
    /// Counts one failure.
    pub fn count(&self, handler: &str, kind: &'static str) {
        *self
            .counts
            .lock()
            .entry(handler.to_owned())
            .or_default()
            .entry(kind)
            .or_default() += 1;
    }

    /// handler → kind → count.
    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
        self.counts.lock().clone()
    }
}
