//! Brokers: where messages for `/topic` and `/queue` destinations go.
//!
//! [`Broker`] is async and assumes nothing in-memory, so a relay to an external broker can
//! implement it. [`SimpleBroker`] is the in-memory one; [`relay::RelayBroker`] relays to
//! RabbitMQ's STOMP adapter so that several servers share one broker.

mod message;
pub mod pattern;
pub mod relay;
mod simple;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

pub use message::BrokerMessage;
pub use relay::{BrokerAvailability, RelayBroker, RelayConfig, RelayError, RelayHealth};
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
    /// Another queue with a backlog would pass the bound on their number.
    #[error("too many queues hold messages (at most {max})")]
    TooManyQueues {
        /// The bound.
        max: usize,
    },
    /// The backlogs of all queues together would pass their byte bound.
    #[error("queue backlogs are full (at most {max_bytes} bytes together)")]
    BacklogFull {
        /// The bound.
        max_bytes: usize,
    },
    /// The destination cannot be subscribed to (a malformed or oversized pattern).
    #[error("invalid destination `{destination}`: {reason}")]
    InvalidDestination {
        /// The destination as given.
        destination: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An external broker failed.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker cannot serve this destination the way it is written (a pattern the
    /// external broker has no equivalent for, a reserved name, a limit).
    #[error("destination `{destination}` refused: {reason}")]
    Refused {
        /// The destination as the client wrote it.
        destination: String,
        /// Why, and what to write instead.
        reason: String,
    },
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

    /// Publishes every message or none (a transaction's COMMIT): an error means none was
    /// published. Brokers that cannot promise that should say so; this default publishes in
    /// order and stops at the first failure, so an error there may follow some publishes.
    async fn publish_all(&self, messages: Vec<Arc<BrokerMessage>>) -> Result<(), BrokerError> {
        for message in messages {
            self.publish(message).await?;
        }
        Ok(())
    }

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

    /// The broker's own routing of user destinations, if it has one.
    ///
    /// `None` (the default) means the server resolves user destinations itself, to one
    /// destination per session in this broker's namespace, and finds a user's sessions in
    /// its own registry: right for one process. A broker shared by several servers returns
    /// `Some`, and then user subscriptions and messages reach it unresolved
    /// ([`UserDestinations`]).
    fn user_destinations(&self) -> Option<&dyn UserDestinations> {
        None
    }
}

/// User destinations routed by the broker itself, so that a message to a user reaches the
/// user's sessions on whichever server holds them.
///
/// Unsubscribing goes through [`Broker::unsubscribe`] and [`Broker::session_closed`] as for
/// any subscription.
#[async_trait]
pub trait UserDestinations: Send + Sync {
    /// Subscribes a session to one of its user destinations.
    ///
    /// `user` is the session's principal (`None` for an anonymous session, which receives
    /// only what is sent to the session itself); `destination` is the user destination
    /// without the user prefix (`/queue/whispers`); `subscription.destination` is the
    /// destination as the client subscribed to it (`/user/queue/whispers`), which is what
    /// MESSAGE frames show.
    async fn subscribe_user(
        &self,
        user: Option<&str>,
        destination: &str,
        subscription: Subscription,
    ) -> Result<(), BrokerError>;

    /// Publishes `message` to every session of `user`, on every server, subscribed to the
    /// user destination `message.destination` (`/queue/whispers`).
    async fn publish_to_user(&self, user: &str, message: &BrokerMessage)
    -> Result<(), BrokerError>;

    /// Publishes `message` to one session's user destination `message.destination`.
    async fn publish_to_session(
        &self,
        session_id: &str,
        message: &BrokerMessage,
    ) -> Result<(), BrokerError>;
}
