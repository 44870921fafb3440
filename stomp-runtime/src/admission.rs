//! Who may open a connection: bounds on connections overall, per remote address, and on
//! how fast one address opens them. Every transport's connections pass here before a
//! session exists.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::Limits;

/// The window over which [`Limits::max_connects_per_second`] counts.
const WINDOW: Duration = Duration::from_secs(1);

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The server serves as many connections as it may.
    #[error("the server has {max} connections open, its limit")]
    Total {
        /// The bound.
        max: usize,
    },
    /// The address has as many connections open as it may.
    #[error("{max} connections are open from this address, the limit per address")]
    PerAddress {
        /// The bound.
        max: usize,
    },
    /// The address opened connections too fast.
    #[error("more than {max} connections per second from this address")]
    Rate {
        /// The bound.
        max: usize,
    },
}

struct PerAddress {
    open: usize,
    window_start: Instant,
    opened_in_window: usize,
}

#[derive(Default)]
struct State {
    total: usize,
    by_address: HashMap<IpAddr, PerAddress>,
    /// Entries after the last sweep of idle addresses; the next sweep waits for twice that.
    swept_at: usize,
}

/// Counts connections against the limits.
pub(crate) struct Admission {
    max_total: usize,
    max_per_address: usize,
    max_rate: usize,
    state: Mutex<State>,
}

/// One admitted connection; leaving gives its place back.
pub(crate) struct Admitted<'a> {
    admission: &'a Admission,
    address: Option<IpAddr>,
}

impl Admission {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            max_total: limits.max_connections,
            max_per_address: limits.max_connections_per_address,
            max_rate: limits.max_connects_per_second,
            state: Mutex::new(State::default()),
        }
    }

    /// Admits a connection from `address` (unknown for some transports: then only the
    /// total counts).
    pub(crate) fn admit(&self, address: Option<IpAddr>) -> Result<Admitted<'_>, Refusal> {
        let now = Instant::now();
        let mut state = self.state.lock();
        if state.total >= self.max_total {
            return Err(Refusal::Total {
                max: self.max_total,
            });
        }
        if let Some(ip) = address {
            if state.by_address.len() >= 2 * state.swept_at.max(64) {
                // Addresses with nothing open and a finished window need no entry.
                state
                    .by_address
                    .retain(|_, a| a.open > 0 || now - a.window_start < WINDOW);
                state.swept_at = state.by_address.len();
            }
            let entry = state.by_address.entry(ip).or_insert(PerAddress {
                open: 0,
                window_start: now,
                opened_in_window: 0,
            });
            if now - entry.window_start >= WINDOW {
                entry.window_start = now;
                entry.opened_in_window = 0;
            }
            if entry.opened_in_window >= self.max_rate {
                return Err(Refusal::Rate { max: self.max_rate });
            }
            // A refused attempt counts toward the rate too: hammering does not help.
            entry.opened_in_window += 1;
            if entry.open >= self.max_per_address {
                return Err(Refusal::PerAddress {
                    max: self.max_per_address,
                });
            }
            entry.open += 1;
        }
        state.total += 1;
        Ok(Admitted {
            admission: self,
            address,
        })
    }

    /// Connections admitted and not yet gone.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.state.lock().total
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut state = self.admission.state.lock();
        state.total -= 1;
        if let Some(ip) = self.address
            && let Some(entry) = state.by_address.get_mut(&ip)
        {
            entry.open -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(total: usize, per: usize, rate: usize) -> Admission {
        Admission::new(&Limits {
            max_connections: total,
            max_connections_per_address: per,
            max_connects_per_second: rate,
            ..Limits::default()
        })
    }

    #[test]
    fn bounds_total_per_address_and_rate() {
        let a = admission(3, 2, 100);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let x = a.admit(Some(one)).unwrap();
        let _y = a.admit(Some(one)).unwrap();
        assert_eq!(
            a.admit(Some(one)).err(),
            Some(Refusal::PerAddress { max: 2 })
        );
        let _z = a.admit(Some(two)).unwrap();
        assert_eq!(a.admit(None).err(), Some(Refusal::Total { max: 3 }));
        drop(x);
        assert_eq!(a.open(), 2);
        assert!(a.admit(Some(one)).is_ok());

        let a = admission(100, 100, 3);
        let held: Vec<_> = (0..3).map(|_| a.admit(Some(one)).unwrap()).collect();
        drop(held);
        assert_eq!(a.admit(Some(one)).err(), Some(Refusal::Rate { max: 3 }));
        assert!(a.admit(Some(two)).is_ok(), "other addresses are not slowed");
    }
}
