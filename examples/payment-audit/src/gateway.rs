//! A mock card gateway that can be told to decline, to fail or to panic, so that every
//! interceptor path can be seen.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// How the gateway behaves, whatever the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Cards decide (see [`Gateway::charge`]).
    Normal,
    /// Every call fails as if the gateway were unreachable.
    Fail,
    /// Every call panics, as a buggy client library would.
    Panic,
}

/// A card was declined: an error the application answers itself.
#[derive(Debug, Clone, thiserror::Error)]
#[error("card ending {last4} declined: {reason}")]
pub struct Declined {
    /// The card's last four digits.
    pub last4: String,
    /// Why.
    pub reason: &'static str,
}

/// The gateway could not be reached: an internal error whose text never reaches clients.
#[derive(Debug, thiserror::Error)]
#[error("gateway connection to {endpoint} timed out after {millis} ms")]
pub struct Unreachable {
    endpoint: &'static str,
    millis: u64,
}

/// What the gateway says.
#[derive(Debug)]
pub enum GatewayError {
    /// See [`Declined`].
    Declined(Declined),
    /// See [`Unreachable`].
    Unreachable(Unreachable),
}

/// The mock gateway. Test cards, as card processors document them:
/// `4000 0000 0000 0002` is declined, `4000 0000 0000 0119` times out,
/// `4000 0000 0000 9999` panics; any other card is charged.
#[derive(Debug)]
pub struct Gateway {
    mode: AtomicU8,
    next: AtomicU64,
}

impl Gateway {
    /// A gateway in `mode`.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode: AtomicU8::new(mode as u8),
            next: AtomicU64::new(1),
        }
    }

    /// Changes the mode at run time.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// The mode in force.
    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            1 => Mode::Fail,
            2 => Mode::Panic,
            _ => Mode::Normal,
        }
    }

    /// Charges `amount_cents` to `card`; returns the gateway's transaction id.
    pub fn charge(&self, card: &str, amount_cents: u64) -> Result<String, GatewayError> {
        let digits: String = card.chars().filter(char::is_ascii_digit).collect();
        let last4 = digits[digits.len().saturating_sub(4)..].to_owned();
        match (self.mode(), digits.as_str()) {
            (Mode::Panic, _) | (_, "4000000000009999") => {
                panic!("gateway client bug: unexpected response for card ending {last4}")
            }
            (Mode::Fail, _) | (_, "4000000000000119") => {
                Err(GatewayError::Unreachable(Unreachable {
                    endpoint: "gateway.internal:443",
                    millis: 3000,
                }))
            }
            (_, "4000000000000002") => Err(GatewayError::Declined(Declined {
                last4,
                reason: "insufficient funds",
            })),
            _ if digits.len() < 12 => Err(GatewayError::Declined(Declined {
                last4,
                reason: "invalid card number",
            })),
            _ if amount_cents == 0 => Err(GatewayError::Declined(Declined {
                last4,
                reason: "zero amount",
            })),
            _ => Ok(format!("tx-{}", self.next.fetch_add(1, Ordering::Relaxed))),
        }
    }

    /// Refunds a charge.
    pub fn refund(&self, transaction: &str) -> Result<(), GatewayError> {
        match self.mode() {
            Mode::Panic => panic!("gateway client bug while refunding {transaction}"),
            Mode::Fail => Err(GatewayError::Unreachable(Unreachable {
                endpoint: "gateway.internal:443",
                millis: 3000,
            })),
            Mode::Normal => Ok(()),
        }
    }
}
