//! What a relay is configured with, and the checks made before it starts.

use std::time::Duration;

use super::destination::Prefix;

/// How a [`RelayBroker`](super::RelayBroker) reaches the broker, and its bounds.
///
/// Build it with struct-update syntax over the defaults:
///
/// ```
/// use stomp_runtime::broker::RelayConfig;
///
/// let config = RelayConfig {
///     addresses: vec!["rabbit-1:61613".into(), "rabbit-2:61613".into()],
///     login: "app".into(),
///     passcode: "secret".into(),
///     virtual_host: Some("/chat".into()),
///     ..RelayConfig::default()
/// };
/// assert_eq!(config.connections, 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// STOMP addresses of the broker, `host:port` or `stomp://host:port`, tried in turn: a
    /// lost or refused connection moves on to the next one (the nodes of a RabbitMQ
    /// cluster). Default `127.0.0.1:61613`.
    pub addresses: Vec<String>,
    /// The CONNECT `login` (default `guest`, RabbitMQ's default user).
    pub login: String,
    /// The CONNECT `passcode` (default `guest`).
    pub passcode: String,
    /// The virtual host, sent as the CONNECT `host` header (default: RabbitMQ's `/`).
    pub virtual_host: Option<String>,
    /// Heart-beats with the broker in milliseconds: how often the relay sends, how often
    /// it wants to hear from the broker (0 disables a direction). They are kept by the
    /// relay whatever its clients do, and a broker silent for twice the interval counts as
    /// lost. Default 10 s both ways.
    pub heartbeat: (u64, u64),
    /// Connections shared by every broadcast subscription, user destination and publish
    /// (default 2). Each queue destination with local subscribers holds one more of its
    /// own (see [`max_queue_connections`](Self::max_queue_connections)).
    pub connections: usize,
    /// Destination prefixes relayed to the broker; each is one of RabbitMQ's: `/topic`,
    /// `/queue`, `/exchange`, `/amq/queue` (default `/topic` and `/queue`).
    pub prefixes: Vec<String>,
    /// The exchange carrying user destinations (default `amq.direct`, which every RabbitMQ
    /// virtual host has). It matches routing keys exactly, so no pattern subscription ever
    /// receives a user's messages, and no client destination may name it.
    pub user_exchange: String,
    /// Messages the broker hands a queue subscription before it acknowledges any: RabbitMQ's
    /// `prefetch-count` (default 100). Bounds what a node holds of each queue.
    pub prefetch: u32,
    /// Shortest wait before reconnecting (default 100 ms); doubled after each failure up to
    /// [`reconnect_max`](Self::reconnect_max), with jitter.
    pub reconnect_min: Duration,
    /// Longest wait before reconnecting (default 5 s).
    pub reconnect_max: Duration,
    /// Longest wait for a connection and its CONNECTED (default 5 s).
    pub connect_timeout: Duration,
    /// Longest wait for the broker to confirm a publish or a subscription (default 5 s).
    pub receipt_timeout: Duration,
    /// Most broker subscriptions a node holds for broadcast and user destinations together
    /// (default 10,000): past it, a SUBSCRIBE that needs a new one is refused.
    pub max_broker_subscriptions: usize,
    /// Most queue destinations a node relays at once, each on a connection of its own
    /// (default 64): past it, a SUBSCRIBE to another queue is refused.
    pub max_queue_connections: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            addresses: vec!["127.0.0.1:61613".into()],
            login: "guest".into(),
            passcode: "guest".into(),
            virtual_host: None,
            heartbeat: (10_000, 10_000),
            connections: 2,
            prefixes: vec!["/topic".into(), "/queue".into()],
            user_exchange: "amq.direct".into(),
            prefetch: 100,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            receipt_timeout: Duration::from_secs(5),
            max_broker_subscriptions: 10_000,
            max_queue_connections: 64,
        }
    }
}

/// Why a relay cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A setting is out of range.
    #[error("invalid relay configuration: {0}")]
    Invalid(String),
    /// The relay's I/O thread could not start.
    #[error("relay thread did not start: {0}")]
    Thread(#[from] std::io::Error),
}

impl RelayConfig {
    /// Checks the settings and normalizes the addresses (`stomp://` removed).
    pub(crate) fn validated(mut self) -> Result<Self, RelayError> {
        let invalid = |m: String| Err(RelayError::Invalid(m));
        if self.addresses.is_empty() {
            return invalid("at least one broker address is needed".into());
        }
        for a in &mut self.addresses {
            let bare = a
                .strip_prefix("stomp://")
                .unwrap_or(a)
                .trim_end_matches('/');
            if bare
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return invalid(format!("address `{a}` is not host:port"));
            }
            *a = bare.to_owned();
        }
        if self.connections == 0 {
            return invalid("connections must be at least 1".into());
        }
        if self.prefixes.is_empty() {
            return invalid("at least one prefix is needed".into());
        }
        if let Some(p) = self.prefixes.iter().find(|p| Prefix::parse(p).is_none()) {
            return invalid(format!(
                "prefix `{p}` is not one of RabbitMQ's: /topic, /queue, /exchange, /amq/queue"
            ));
        }
        if self.user_exchange.is_empty() || self.user_exchange.contains('/') {
            return invalid("user_exchange must be an exchange name without `/`".into());
        }
        if self.prefetch == 0 {
            return invalid("prefetch must be at least 1".into());
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            return invalid("reconnect_min must be above zero and at most reconnect_max".into());
        }
        Ok(self)
    }

    /// The wait before reconnection attempt `attempt` (0 for the first): exponential, capped,
    /// and jittered over its upper half so that nodes do not reconnect in step.
    pub(crate) fn backoff(&self, attempt: u32, random: u64) -> Duration {
        let base = self
            .reconnect_min
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.reconnect_max);
        let half = base / 2;
        let jitter = half.as_nanos() as u64;
        half + Duration::from_nanos(if jitter == 0 { 0 } else { random % jitter })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_addresses_lose_their_scheme() {
        let c = RelayConfig {
            addresses: vec!["stomp://rabbit:61613".into(), "10.0.0.2:61613".into()],
            ..RelayConfig::default()
        }
        .validated()
        .unwrap();
        assert_eq!(c.addresses, ["rabbit:61613", "10.0.0.2:61613"]);
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let bad = |c: RelayConfig| c.validated().unwrap_err().to_string();
        assert!(
            bad(RelayConfig {
                addresses: vec![],
                ..Default::default()
            })
            .contains("address")
        );
        assert!(
            bad(RelayConfig {
                addresses: vec!["rabbit".into()],
                ..Default::default()
            })
            .contains("host:port")
        );
        assert!(
            bad(RelayConfig {
                prefixes: vec!["/temp-queue".into()],
                ..Default::default()
            })
            .contains("/temp-queue")
        );
        assert!(
            bad(RelayConfig {
                connections: 0,
                ..Default::default()
            })
            .contains("connections")
        );
        assert!(
            bad(RelayConfig {
                prefetch: 0,
                ..Default::default()
            })
            .contains("prefetch")
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let c = RelayConfig::default();
        for (attempt, base) in [(0, 100), (1, 200), (3, 800), (10, 5000), (40, 5000)] {
            let base = Duration::from_millis(base);
            for random in [0, 7, u64::MAX] {
                let d = c.backoff(attempt, random);
                assert!(d >= base / 2 && d <= base, "{attempt}: {d:?}");
            }
        }
    }
}
