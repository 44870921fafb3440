//! The relay to RabbitMQ's STOMP adapter: several servers share one broker (or a cluster),
//! so that a message published on any of them reaches the subscribers on all of them.
//!
//! Multiplexed: a node holds a few broker connections, not one per client. Each destination
//! with local subscribers has one broker subscription per node, and its messages are
//! fanned out to the local subscribers here, encoded once per protocol version as with the
//! in-memory broker. The last local unsubscribe removes the broker subscription.
//!
//! - **Broadcast destinations** (`/topic/...`, `/exchange/...`) share a small pool of
//!   connections ([`RelayConfig::connections`]), hashed by destination. Every publish goes
//!   through the broker, so each node's subscribers get each message exactly once.
//! - **Queue destinations** (`/queue/...`, `/amq/queue/...`) keep broker semantics: each
//!   message reaches one subscriber across all nodes. Each has a connection of its own,
//!   acknowledged message by message: an `auto` subscriber's message is acknowledged once
//!   queued for its socket, a `client`/`client-individual` subscriber's ACK and NACK go to
//!   the broker, and whatever a dead client or node leaves unacknowledged goes back to the
//!   queue for another consumer.
//! - **User destinations** ride the user exchange (`amq.direct`), keyed by user name and
//!   destination: a node subscribes once per (user, destination) its sessions subscribe to,
//!   and a message to a user is one publish that reaches that user's sessions on every
//!   node, with no registry of who is where. No client destination may name that exchange,
//!   and it matches routing keys exactly, so no pattern reaches a user's messages.
//!   Messages addressed to one session (a handler's reply to its caller, the error queue)
//!   stay on the node, where session ids mean something.
//!
//! The relay keeps heart-beats with the broker itself, reconnects with backoff and jitter to
//! the next address when a connection is lost, and restores its subscriptions. While it is
//! not connected, publishes fail at once with [`BrokerError::Unavailable`], so a client's
//! SEND with a receipt gets an ERROR, never a RECEIPT for a message the broker did not
//! take; client sessions stay connected and receive again once the relay is back.
//! [`RelayBroker::availability`] reports the changes and [`RelayBroker::health`] the
//! figures.
//!
//! # Destination mapping
//!
//! `/topic/{name}` and `/queue/{name}` go to RabbitMQ as they are; `/exchange/...` and
//! `/amq/queue/...` pass through when listed in [`RelayConfig::prefixes`]. Patterns become
//! routing-key bindings: `/topic/rooms.*` binds `rooms.*`, `/topic/rooms.**` binds
//! `rooms.#`. What RabbitMQ cannot express is refused with an ERROR that says why: a
//! pattern with `/` after the prefix (routing-key words are separated by `.` only), a
//! pattern on a queue, `#` in a subscription, a name longer than 255 bytes.
//!
//! ```no_run
//! use stomp_runtime::StompServer;
//! use stomp_runtime::broker::RelayConfig;
//!
//! let server = StompServer::builder()
//!     .relay(RelayConfig {
//!         addresses: vec!["rabbit-1:61613".into(), "rabbit-2:61613".into()],
//!         login: "app".into(),
//!         passcode: "secret".into(),
//!         ..RelayConfig::default()
//!     })
//!     .build()
//!     .unwrap();
//! let mut availability = server.relay().unwrap().availability();
//! ```

mod config;
mod destination;
mod link;
mod local;
mod pool;
mod queue;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::{RelayConfig, RelayError};

use super::{Broker, BrokerError, BrokerMessage, Subscription, UserDestinations};
use crate::client::Client;
use crate::frame::{Command, Frame};
use destination::{Kind, Use};
use local::{Channel, ChannelKey, Local, Removed, State};

/// Whether the relay can reach the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerAvailability {
    /// Every shared connection is up and has restored its subscriptions: publishes go
    /// through.
    Available {
        /// The broker address of the first shared connection.
        address: String,
    },
    /// Some shared connection is down (or not up yet): publishes fail at once.
    Unavailable {
        /// The last failure.
        reason: String,
    },
}

impl BrokerAvailability {
    /// Whether publishes go through.
    pub fn is_available(&self) -> bool {
        matches!(self, BrokerAvailability::Available { .. })
    }
}

/// Figures about a relay, for health checks and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayHealth {
    /// Whether publishes go through.
    pub available: bool,
    /// Shared connections up (out of [`RelayConfig::connections`]).
    pub shared_connections: usize,
    /// Queue connections up, one per relayed queue destination.
    pub queue_connections: usize,
    /// Broker subscriptions for broadcast and user destinations.
    pub broker_subscriptions: usize,
    /// Queue destinations relayed.
    pub queues: usize,
    /// Local subscriptions fed by the broker subscriptions.
    pub local_subscriptions: usize,
    /// Broker connections lost or refused since the start.
    pub connection_failures: u64,
    /// Messages published to the broker.
    pub published: u64,
    /// Publishes refused because the broker was unavailable or did not confirm.
    pub publish_failures: u64,
    /// Messages received from the broker.
    pub received: u64,
}

/// Running counts.
#[derive(Default)]
pub(crate) struct Counters {
    lost: AtomicU64,
    published: AtomicU64,
    publish_failures: AtomicU64,
    received: AtomicU64,
    queue_up: AtomicI64,
}

impl Counters {
    pub(crate) fn lost(&self) {
        self.lost.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn queue_up(&self, delta: i64) {
        self.queue_up.fetch_add(delta, Ordering::Relaxed);
    }
}

/// Where a client's ACK or NACK of a queue message goes at the broker.
pub(crate) struct AckHandle {
    /// The queue connection that delivered it; gone with that connection (whose closing
    /// gave the message back to the broker).
    pub(crate) client: Weak<Client>,
    /// The broker's `ack` id.
    pub(crate) id: String,
}

/// What the relay's tasks share.
pub(crate) struct Shared {
    pub(crate) config: RelayConfig,
    pub(crate) state: RwLock<State>,
    pub(crate) slots: Vec<pool::Slot>,
    /// Local message id → how to settle it at the broker.
    pub(crate) acks: Mutex<HashMap<String, AckHandle>>,
    availability: watch::Sender<BrokerAvailability>,
    pub(crate) counters: Counters,
    pub(crate) stop: CancellationToken,
    runtime: tokio::runtime::Handle,
}

impl Shared {
    /// Recomputes availability from the shared connections; listeners hear only changes
    /// between available and unavailable.
    pub(crate) fn update_availability(&self) {
        let next = match self.slots.iter().position(|s| s.ready.read().is_none()) {
            Some(down) => BrokerAvailability::Unavailable {
                reason: self.slots[down].last_error.lock().clone(),
            },
            None => BrokerAvailability::Available {
                address: self.slots[0]
                    .ready
                    .read()
                    .as_ref()
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default(),
            },
        };
        self.availability.send_if_modified(|current| {
            let flipped = current.is_available() != next.is_available();
            if flipped {
                match &next {
                    BrokerAvailability::Available { address } => {
                        info!(%address, "broker available")
                    }
                    BrokerAvailability::Unavailable { reason } => {
                        warn!(%reason, "broker unavailable")
                    }
                }
            }
            *current = next;
            flipped
        });
    }

    fn unavailable(&self) -> Option<String> {
        match &*self.availability.borrow() {
            BrokerAvailability::Available { .. } => None,
            BrokerAvailability::Unavailable { reason } => Some(reason.clone()),
        }
    }

    /// The shared connection of a broker destination.
    fn slot_of(&self, broker: &str) -> usize {
        let mut h = DefaultHasher::new();
        broker.hash(&mut h);
        (h.finish() % self.slots.len() as u64) as usize
    }

    /// Fans a message of a broadcast or user channel out to its local subscribers.
    pub(crate) fn broadcast(&self, key: &ChannelKey, frame: &Frame) {
        self.counters.received();
        let state = self.state.read();
        let Some(channel) = state.channels.get(key) else {
            return;
        };
        let Some(first) = channel.locals.first() else {
            return;
        };
        let message = if channel.pattern {
            let dest = destination::from_broker(frame.get("destination").unwrap_or_default());
            local::inbound(&dest, frame)
        } else {
            local::inbound(&first.destination, frame)
        };
        for l in &channel.locals {
            l.sink.deliver(&message);
        }
    }

    /// Publishes `frame` on the shared connection of `broker` and waits for the broker to
    /// confirm it.
    async fn publish(&self, broker: &str, frame: Frame) -> Result<(), BrokerError> {
        let refuse = |reason: String| {
            self.counters
                .publish_failures
                .fetch_add(1, Ordering::Relaxed);
            Err(BrokerError::Unavailable(reason))
        };
        if let Some(reason) = self.unavailable() {
            return refuse(reason);
        }
        tracing::debug!(destination = %broker, "publish");
        let Some(client) = self.slots[self.slot_of(broker)].client() else {
            return refuse("the broker connection was just lost".into());
        };
        match client.request(frame).await {
            Ok(()) => {
                self.counters.published.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => refuse(format!("the broker did not confirm the message: {e}")),
        }
    }
}

/// Stops the relay's thread when the last [`RelayBroker`] handle goes.
struct Running {
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A [`Broker`] that relays to RabbitMQ's STOMP adapter (see the [module](self)).
///
/// Cloning is cheap; clones share the connections. The relay's connections run on a thread
/// of their own, so it serves sessions on any runtime (actix-web workers, tokio) alike; the
/// thread stops with the last clone.
#[derive(Clone)]
pub struct RelayBroker {
    shared: Arc<Shared>,
    _running: Arc<Running>,
}

impl std::fmt::Debug for RelayBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayBroker")
            .field("addresses", &self.shared.config.addresses)
            .field("availability", &*self.shared.availability.borrow())
            .finish_non_exhaustive()
    }
}

impl RelayBroker {
    /// Checks `config` and starts connecting, on a thread of the relay's own.
    pub fn new(config: RelayConfig) -> Result<Self, RelayError> {
        let config = config.validated()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stop = CancellationToken::new();
        let (slots, requests): (Vec<_>, Vec<_>) =
            (0..config.connections).map(|_| pool::Slot::new()).unzip();
        let shared = Arc::new(Shared {
            config,
            state: RwLock::new(State::default()),
            slots,
            acks: Mutex::new(HashMap::new()),
            availability: watch::Sender::new(BrokerAvailability::Unavailable {
                reason: "not connected yet".into(),
            }),
            counters: Counters::default(),
            stop: stop.clone(),
            runtime: runtime.handle().clone(),
        });
        for (index, rx) in requests.into_iter().enumerate() {
            runtime.spawn(pool::run(shared.clone(), index, rx));
        }
        let until = stop.clone();
        std::thread::Builder::new()
            .name("stomp-relay".into())
            .spawn(move || runtime.block_on(until.cancelled()))?;
        Ok(Self {
            shared,
            _running: Arc::new(Running { stop }),
        })
    }

    /// The configuration in force (addresses without their `stomp://`).
    pub fn config(&self) -> &RelayConfig {
        &self.shared.config
    }

    /// Whether the broker is reachable now, and every change from now on.
    ///
    /// ```no_run
    /// # async fn run(relay: stomp_runtime::broker::RelayBroker) {
    /// let mut availability = relay.availability();
    /// while availability.changed().await.is_ok() {
    ///     let now = availability.borrow_and_update().clone();
    ///     tracing::info!(?now, "broker availability changed");
    /// }
    /// # }
    /// ```
    pub fn availability(&self) -> watch::Receiver<BrokerAvailability> {
        self.shared.availability.subscribe()
    }

    /// Waits until the broker is available, at most `limit`; whether it is.
    pub async fn wait_available(&self, limit: Duration) -> bool {
        let mut rx = self.availability();
        tokio::time::timeout(limit, rx.wait_for(BrokerAvailability::is_available))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Figures for health checks and metrics.
    pub fn health(&self) -> RelayHealth {
        let s = &self.shared;
        let (broker_subscriptions, queues, local_subscriptions) = {
            let state = s.state.read();
            (state.pooled(), state.queues(), state.locals())
        };
        RelayHealth {
            available: s.unavailable().is_none(),
            shared_connections: s.slots.iter().filter(|x| x.client().is_some()).count(),
            queue_connections: s.counters.queue_up.load(Ordering::Relaxed).max(0) as usize,
            broker_subscriptions,
            queues,
            local_subscriptions,
            connection_failures: s.counters.lost.load(Ordering::Relaxed),
            published: s.counters.published.load(Ordering::Relaxed),
            publish_failures: s.counters.publish_failures.load(Ordering::Relaxed),
            received: s.counters.received.load(Ordering::Relaxed),
        }
    }

    /// Registers `local` on the channel of `key` and makes sure the broker subscription
    /// exists (waiting for the broker when it is reachable).
    async fn attach(
        &self,
        key: ChannelKey,
        kind: Kind,
        broker: String,
        pattern: bool,
        local: Arc<Local>,
        user_destination: Option<String>,
    ) -> Result<(), BrokerError> {
        let s = &self.shared;
        let (session, id) = (local.session_id.clone(), local.id.clone());
        let slot = s.slot_of(&broker);
        let mut queue_ready = None;
        {
            let mut state = s.state.write();
            if state.has(&session, &id) {
                return Err(BrokerError::Refused {
                    destination: local.destination.to_string(),
                    reason: format!("subscription id `{id}` is already in use"),
                });
            }
            if !state.channels.contains_key(&key) {
                let (used, max, what) = match kind {
                    Kind::Broadcast => (
                        state.pooled(),
                        s.config.max_broker_subscriptions,
                        "broker subscriptions",
                    ),
                    Kind::Queue => (
                        state.queues(),
                        s.config.max_queue_connections,
                        "relayed queues",
                    ),
                };
                if used >= max {
                    return Err(BrokerError::Refused {
                        destination: local.destination.to_string(),
                        reason: format!("this server holds its limit of {max} {what}"),
                    });
                }
            }
            let make = || Channel::new(kind, broker.clone(), pattern, slot);
            let created = state.add(Some((key.clone(), &make)), local.clone(), user_destination);
            if created && kind == Kind::Queue {
                let stop = s.stop.child_token();
                let (tx, rx) = oneshot::channel();
                if let Some(channel) = state.channels.get_mut(&key) {
                    channel.stop = Some(stop.clone());
                }
                s.runtime.spawn(queue::run(
                    s.clone(),
                    key.clone(),
                    broker.clone(),
                    local.destination.clone(),
                    stop,
                    Some(tx),
                ));
                queue_ready = Some(rx);
            }
        }
        let outcome = match kind {
            Kind::Queue => match queue_ready {
                // While the broker is away, the queue connection keeps trying on its own.
                Some(rx) if s.unavailable().is_none() => {
                    let limit = s.config.connect_timeout + s.config.receipt_timeout;
                    match tokio::time::timeout(limit, rx).await {
                        Ok(Ok(result)) => result,
                        _ => Ok(()),
                    }
                }
                _ => Ok(()),
            },
            Kind::Broadcast => {
                let (tx, rx) = oneshot::channel();
                let request = pool::Sync {
                    key: key.clone(),
                    done: Some(tx),
                };
                if s.slots[slot].requests.send(request).is_err() {
                    Err(BrokerError::Unavailable("the relay has stopped".into()))
                } else {
                    rx.await.unwrap_or_else(|_| {
                        Err(BrokerError::Unavailable("the relay has stopped".into()))
                    })
                }
            }
        };
        if outcome.is_err() {
            let removed = s.state.write().remove(&session, &id);
            self.detach(removed);
        }
        outcome
    }

    /// Follows up a local subscription's removal: a channel left without local
    /// subscriptions loses its broker subscription.
    fn detach(&self, removed: Option<Removed>) {
        let Some(Removed { key, emptied: true }) = removed else {
            return;
        };
        let s = &self.shared;
        let mut state = s.state.write();
        let Some(channel) = state.channels.get(&key) else {
            return;
        };
        match channel.kind {
            Kind::Queue => {
                if let Some(channel) = state.channels.remove(&key)
                    && let Some(stop) = channel.stop
                {
                    stop.cancel();
                }
            }
            Kind::Broadcast => {
                let slot = channel.slot;
                drop(state);
                let _ = s.slots[slot].requests.send(pool::Sync { key, done: None });
            }
        }
    }

    /// Sends ACK or NACK for the queue messages among `messages`.
    async fn settle(&self, command: Command, messages: Vec<Arc<BrokerMessage>>) {
        let handles: Vec<AckHandle> = {
            let mut acks = self.shared.acks.lock();
            messages
                .iter()
                .filter_map(|m| acks.remove(&m.message_id))
                .collect()
        };
        for h in handles {
            if let Some(client) = h.client.upgrade() {
                let _ = client.send_frame(queue::settle(command, &h.id)).await;
            }
        }
    }
}

#[async_trait]
impl Broker for RelayBroker {
    fn handles(&self, destination: &str) -> bool {
        self.shared.config.prefixes.iter().any(|p| {
            destination
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    async fn subscribe(&self, s: Subscription) -> Result<(), BrokerError> {
        let mapped = destination::to_broker(&self.shared.config, &s.destination, Use::Subscribe)
            .map_err(|reason| BrokerError::Refused {
                destination: s.destination.clone(),
                reason,
            })?;
        let local = Arc::new(Local {
            session_id: s.session_id,
            id: s.id,
            destination: Arc::from(s.destination.as_str()),
            ack: s.ack,
            sink: s.sink,
        });
        let key = ChannelKey::Broker(mapped.broker.clone());
        self.attach(key, mapped.kind, mapped.broker, mapped.pattern, local, None)
            .await
    }

    async fn unsubscribe(&self, session_id: &str, subscription_id: &str) {
        let removed = self
            .shared
            .state
            .write()
            .remove(session_id, subscription_id);
        self.detach(removed);
    }

    async fn publish(&self, message: Arc<BrokerMessage>) -> Result<(), BrokerError> {
        let mapped =
            destination::to_broker(&self.shared.config, &message.destination, Use::Publish)
                .map_err(|reason| BrokerError::Refused {
                    destination: message.destination.clone(),
                    reason,
                })?;
        let frame = local::outbound(&mapped.broker, mapped.kind, &message);
        self.shared.publish(&mapped.broker, frame).await
    }

    async fn ack(&self, _session_id: &str, messages: Vec<Arc<BrokerMessage>>) {
        self.settle(Command::Ack, messages).await;
    }

    async fn requeue(&self, _session_id: &str, messages: Vec<Arc<BrokerMessage>>) {
        // The broker redelivers, possibly to another node's consumer (RabbitMQ's NACK
        // requeues by default).
        self.settle(Command::Nack, messages).await;
    }

    async fn session_closed(&self, session_id: &str) {
        let removed = self.shared.state.write().remove_session(session_id);
        for r in removed {
            self.detach(Some(r));
        }
    }

    fn is_available(&self) -> bool {
        self.shared.unavailable().is_none()
    }

    fn user_destinations(&self) -> Option<&dyn UserDestinations> {
        Some(self)
    }
}

#[async_trait]
impl UserDestinations for RelayBroker {
    async fn subscribe_user(
        &self,
        user: Option<&str>,
        destination: &str,
        s: Subscription,
    ) -> Result<(), BrokerError> {
        let refused = |reason: String| BrokerError::Refused {
            destination: s.destination.clone(),
            reason,
        };
        if !destination.starts_with('/') || destination.len() < 2 {
            return Err(refused(
                "a user destination looks like `/user/queue/name`".into(),
            ));
        }
        let key = user
            .map(|u| destination::user_key(u, destination))
            .transpose()
            .map_err(refused)?;
        let local = Arc::new(Local {
            session_id: s.session_id,
            id: s.id,
            destination: Arc::from(s.destination.as_str()),
            ack: s.ack,
            sink: s.sink,
        });
        match key {
            Some(key) => {
                let broker = destination::user_destination(&self.shared.config, &key);
                self.attach(
                    ChannelKey::User(key),
                    Kind::Broadcast,
                    broker,
                    false,
                    local,
                    Some(destination.to_owned()),
                )
                .await
            }
            None => {
                let mut state = self.shared.state.write();
                if state.has(&local.session_id, &local.id) {
                    return Err(refused(format!(
                        "subscription id `{}` is already in use",
                        local.id
                    )));
                }
                state.add(None, local, Some(destination.to_owned()));
                Ok(())
            }
        }
    }

    async fn publish_to_user(
        &self,
        user: &str,
        message: &BrokerMessage,
    ) -> Result<(), BrokerError> {
        let key = destination::user_key(user, &message.destination).map_err(|reason| {
            BrokerError::Refused {
                destination: message.destination.clone(),
                reason,
            }
        })?;
        let broker = destination::user_destination(&self.shared.config, &key);
        let frame = local::outbound(&broker, Kind::Broadcast, message);
        self.shared.publish(&broker, frame).await
    }

    async fn publish_to_session(
        &self,
        session_id: &str,
        message: &BrokerMessage,
    ) -> Result<(), BrokerError> {
        let locals = self
            .shared
            .state
            .read()
            .session_user(session_id, &message.destination);
        let Some(first) = locals.first() else {
            return Ok(());
        };
        let shown = message.redirect(&*first.destination);
        for l in &locals {
            l.sink.deliver(&shown);
        }
        Ok(())
    }
}
