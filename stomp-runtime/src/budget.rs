//! A process-wide bound on the memory clients make the server hold.
//!
//! Per-session limits bound each session; nothing in them bounds their sum over many
//! sessions. Every piece of client-created state (bytes queued for a socket, unacknowledged
//! messages, frames held in open transactions, subscriptions, queue backlogs) takes a
//! [`Charge`] on one [`MemoryBudget`] while it lives; when the budget is spent, new work is
//! refused with an ERROR instead of growing the heap.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the default budget allows: 1 GiB of client-created state.
pub const DEFAULT_MEMORY_BUDGET: usize = 1024 * 1024 * 1024;

/// Bytes charged per entry on top of its content, for the bookkeeping around it (map
/// entries, `Arc`s, headers): a rough, deliberately high figure.
pub(crate) const ENTRY_OVERHEAD: usize = 128;

/// A shared, bounded account of bytes. Cloning is cheap; clones share the account.
///
/// ```
/// use stomp_runtime::budget::MemoryBudget;
///
/// let budget = MemoryBudget::new(100);
/// let a = budget.charge(60).unwrap();
/// assert!(budget.charge(60).is_err());
/// drop(a);
/// assert!(budget.charge(60).is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct MemoryBudget(Arc<Account>);

#[derive(Debug)]
struct Account {
    used: AtomicUsize,
    max: usize,
}

/// The budget had no room for a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server's memory budget for client state is spent ({used} of {max} bytes in use; \
     {requested} more requested)"
)]
pub struct BudgetExhausted {
    /// Bytes asked for.
    pub requested: usize,
    /// Bytes in use when asked.
    pub used: usize,
    /// The budget.
    pub max: usize,
}

impl MemoryBudget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Account {
            used: AtomicUsize::new(0),
            max,
        }))
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.0.used.load(Ordering::Acquire)
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.0.max
    }

    /// Takes `bytes` from the budget until the returned [`Charge`] is dropped.
    pub fn charge(&self, bytes: usize) -> Result<Charge, BudgetExhausted> {
        self.try_take(bytes)?;
        Ok(Charge {
            budget: self.clone(),
            bytes,
        })
    }

    /// Takes `bytes` without a guard; the caller gives them back with [`Self::release`].
    pub(crate) fn try_take(&self, bytes: usize) -> Result<(), BudgetExhausted> {
        let account = &*self.0;
        let mut used = account.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = used.checked_add(bytes).filter(|n| *n <= account.max) else {
                return Err(BudgetExhausted {
                    requested: bytes,
                    used,
                    max: account.max,
                });
            };
            match account.used.compare_exchange_weak(
                used,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// Takes `bytes` even past the bound, for state already accepted that must not be lost
    /// (a NACKed message going back to its queue). Give them back with [`Self::release`].
    pub(crate) fn force_take(&self, bytes: usize) {
        self.0.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Gives back bytes taken with [`Self::try_take`] or [`Self::force_take`].
    pub(crate) fn release(&self, bytes: usize) {
        self.0.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl Default for MemoryBudget {
    /// [`DEFAULT_MEMORY_BUDGET`].
    fn default() -> Self {
        Self::new(DEFAULT_MEMORY_BUDGET)
    }
}

/// Bytes held on a [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: MemoryBudget,
    bytes: usize,
}

impl Charge {
    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `more` bytes too, if the budget has them.
    pub fn grow(&mut self, more: usize) -> Result<(), BudgetExhausted> {
        self.budget.try_take(more)?;
        self.bytes += more;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_given_back_on_drop_and_the_bound_holds() {
        let b = MemoryBudget::new(10);
        let c = b.charge(10).unwrap();
        let err = b.charge(1).unwrap_err();
        assert_eq!((err.requested, err.used, err.max), (1, 10, 10));
        drop(c);
        assert_eq!(b.used(), 0);
        assert!(b.charge(usize::MAX).is_err(), "no overflow");
        b.force_take(20);
        assert_eq!(b.used(), 20);
        b.release(20);
        assert_eq!(b.used(), 0);
    }
}
