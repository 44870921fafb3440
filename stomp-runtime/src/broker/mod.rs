//! Brokers: where messages for `/topic` and `/queue` destinations go.
//!
//! [`Broker`] is async and assumes nothing in-memory, so a relay to an external broker can
//! implement it. [`SimpleBroker`] is the in-memory one.

mod message;
pub mod pattern;
mod simple;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

pub use message::BrokerMessage;
pub use simple::SimpleBroker;

/// How a subscription acknowledges messages (the SUBSCRIBE `ack` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AckMode {
    /// Messages count as acknowledged once sent.
    #[default]
    Auto,
    /// ACK of one message acknowledges it and every earlier one of the subscription.
    Client,
    /// ACK and NACK concern exactly one message.
    ClientIndividual,
}

impl AckMode {
    /// Parses the SUBSCRIBE `ack` header value.
    pub fn parse(s: &str) -> Option<AckMode> {
        match s {
            "auto" => Some(AckMode::Auto),
            "client" => Some(AckMode::Client),
            "client-individual" => Some(AckMode::ClientIndividual),
            _ => None,
        }
    }

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }
}

/// What became of one delivery attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for the subscriber's socket.
    Delivered,
    /// The subscriber could not take it (slow consumer, closed session).
    Refused,
}

/// The receiving end of one subscription, as the broker sees it.
///
/// Implementations never block: they queue the message for the session's writer.
pub trait MessageSink: Send + Sync + 'static {
    /// Hands one message to the subscriber; a subscriber too far behind meets the
    /// slow-consumer policy.
    fn deliver(&self, message: &Arc<BrokerMessage>) -> Delivery;

    /// Hands one message to the subscriber only if it has room, refusing it otherwise
    /// (for messages that can wait, such as a queue's).
    fn offer(&self, message: &Arc<BrokerMessage>) -> Delivery {
        self.deliver(message)
    }

    /// Resolves when the subscriber has room again after refusing an offer.
    fn room(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(std::future::ready(()))
    }
}

/// A subscription handed to a broker.
pub struct Subscription {
    /// The subscribing session.
    pub session_id: Arc<str>,
    /// The subscription id, unique within the session.
    pub id: String,
    /// The destination or destination pattern.
    pub destination: String,
    /// How messages will be acknowledged.
    pub ack: AckMode,
    /// Where messages go.
    pub sink: Arc<dyn MessageSink>,
}

/// Why a broker refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// No broker prefix covers the destination.
    #[error("no broker serves destination `{0}`")]
    UnknownDestination(String),
    /// A queue's backlog is full.
    #[error("queue `{destination}` is full ({max} messages waiting)")]
    QueueFull {
        /// The queue.
        destination: String,
        /// Its backlog limit.
        max: usize,
    },
    /// An external broker failed.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
}

/// A message broker: subscriptions, publishing and acknowledgement.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Whether this broker serves `destination` (by prefix).
    fn handles(&self, destination: &str) -> bool;

    /// Adds a subscription.
    async fn subscribe(&self, subscription: Subscription) -> Result<(), BrokerError>;

    /// Removes a subscription; unknown ones are ignored.
    async fn unsubscribe(&self, session_id: &str, subscription_id: &str);

    /// Publishes a message to its destination.
    async fn publish(&self, message: Arc<BrokerMessage>) -> Result<(), BrokerError>;

    /// Settles messages a client acknowledged.
    async fn ack(&self, session_id: &str, messages: Vec<Arc<BrokerMessage>>);

    /// Returns messages a client rejected (NACK) or left unacknowledged when its session
    /// closed; queue messages go to another subscriber.
    async fn requeue(&self, session_id: &str, messages: Vec<Arc<BrokerMessage>>);

    /// Forgets every subscription of a closed session.
    async fn session_closed(&self, session_id: &str);

    /// Whether the broker can take work now (an external broker may be unreachable);
    /// readiness reports it.
    fn is_available(&self) -> bool {
        true
    }
}
