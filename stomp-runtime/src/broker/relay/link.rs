//! Reaching the broker: one STOMP connection with the project's client, failover through
//! the configured addresses, and the wait between attempts.

use std::hash::{BuildHasher, Hasher};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::config::RelayConfig;
use crate::client::{Client, ClientError, ConnectOptions};
use crate::frame::Version;

/// Hears why a connection attempt failed or a connection ended.
type Report = Box<dyn Fn(&str) + Send + Sync>;

/// Walks the addresses: each failure moves on to the next one.
pub(crate) struct Dialer {
    next: usize,
    attempt: u32,
    /// Told each failure, as it happens.
    report: Option<Report>,
}

impl Dialer {
    /// Starts at the address `start` (modulo their number).
    pub(crate) fn new(start: usize) -> Self {
        Self {
            next: start,
            attempt: 0,
            report: None,
        }
    }

    /// Tells `report` why each attempt fails or each connection ends.
    pub(crate) fn reporting(mut self, report: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.report = Some(Box::new(report));
        self
    }

    /// Connects to the next address, waiting out the backoff after failures; `None` once
    /// `stop` is cancelled. Returns the connection and its address.
    pub(crate) async fn connect(
        &mut self,
        config: &RelayConfig,
        what: &str,
        stop: &CancellationToken,
    ) -> Option<(Client, String)> {
        loop {
            if self.attempt > 0 {
                let wait = config.backoff(self.attempt - 1, random());
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            let address = config.addresses[self.next % config.addresses.len()].clone();
            let attempt = tokio::select! {
                _ = stop.cancelled() => return None,
                r = Client::connect_tcp(address.as_str(), options(config)) => r,
            };
            match attempt {
                Ok(client) => {
                    info!(%address, what, "connected to the broker");
                    self.attempt = 0;
                    return Some((client, address));
                }
                Err(e) => {
                    self.lost(&address, what, &e);
                }
            }
        }
    }

    /// Records a failed attempt or a lost connection: the next try goes to the next address,
    /// after a backoff.
    pub(crate) fn lost(&mut self, address: &str, what: &str, error: &ClientError) {
        warn!(%address, what, %error, "broker connection failed");
        if let Some(report) = &self.report {
            report(&format!("{address}: {error}"));
        }
        self.next = self.next.wrapping_add(1);
        self.attempt = self.attempt.saturating_add(1);
    }
}

/// The CONNECT the relay sends.
fn options(config: &RelayConfig) -> ConnectOptions {
    ConnectOptions::new()
        .login(config.login.as_str())
        .passcode(config.passcode.as_str())
        .host(config.virtual_host.as_deref().unwrap_or("/"))
        .accept_versions([Version::V1_2])
        .heartbeat(config.heartbeat.0, config.heartbeat.1)
        .connect_timeout(config.connect_timeout)
        .receipt_timeout(config.receipt_timeout)
}

/// 64 unpredictable bits for jitter (`RandomState` is keyed from the OS once per process
/// and per thread, then stepped per instance).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}
