//! The shared connections: each carries the broker subscriptions of the broadcast and user
//! destinations hashed to it, and the publishes to those destinations.
//!
//! One task per connection owns it. It connects (failing over through the addresses),
//! restores the subscriptions of its destinations, and then reconciles, one request at a
//! time, the broker subscriptions it holds with the local subscriptions that exist: a
//! destination with local subscribers has one broker subscription, one without has none.
//! Reconciling rather than applying each change keeps a quick unsubscribe-subscribe from
//! leaving the two out of step.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use super::Shared;
use super::destination::Kind;
use super::link::Dialer;
use super::local::ChannelKey;
use crate::broker::{AckMode, BrokerError};
use crate::client::{self, Client, ClientError};

/// A request to the task of one connection.
pub(crate) struct Sync {
    pub(crate) key: ChannelKey,
    /// Answered once the broker subscription matches the local ones (at once while
    /// disconnected: the next connection restores it).
    pub(crate) done: Option<oneshot::Sender<Result<(), BrokerError>>>,
}

/// One shared connection, as the rest of the relay sees it.
pub(crate) struct Slot {
    pub(crate) requests: mpsc::UnboundedSender<Sync>,
    /// The connection and its address, once connected with every subscription restored.
    pub(crate) ready: RwLock<Option<(Arc<Client>, String)>>,
    /// Why it is not ready.
    pub(crate) last_error: Mutex<String>,
}

impl Slot {
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<Sync>) {
        let (requests, rx) = mpsc::unbounded_channel();
        (
            Self {
                requests,
                ready: RwLock::new(None),
                last_error: Mutex::new("not connected yet".into()),
            },
            rx,
        )
    }

    pub(crate) fn client(&self) -> Option<Arc<Client>> {
        self.ready.read().as_ref().map(|(c, _)| c.clone())
    }
}

/// What one connection's task keeps between requests.
struct Held {
    /// Broker subscriptions held, each stopped by its token.
    active: HashMap<ChannelKey, CancellationToken>,
    /// Destinations the broker refused: not subscribed again until their local
    /// subscriptions are gone.
    refused: HashSet<ChannelKey>,
}

/// Runs shared connection `index` until the relay stops.
pub(crate) async fn run(
    shared: Arc<Shared>,
    index: usize,
    mut requests: mpsc::UnboundedReceiver<Sync>,
) {
    let reporter = shared.clone();
    let mut dialer = Dialer::new(0).reporting(move |error| {
        *reporter.slots[index].last_error.lock() = error.to_owned();
        reporter.update_availability();
    });
    let mut held = Held {
        active: HashMap::new(),
        refused: HashSet::new(),
    };
    loop {
        let connected = {
            let connect = dialer.connect(&shared.config, "shared", &shared.stop);
            tokio::pin!(connect);
            loop {
                tokio::select! {
                    r = &mut connect => break r,
                    req = requests.recv() => match req {
                        Some(req) => offline(&shared, &mut held, req),
                        None => return,
                    },
                }
            }
        };
        let Some((client, address)) = connected else {
            return;
        };
        let client = Arc::new(client);
        if let Err(e) = restore(&shared, index, &client, &mut held).await {
            lose(&shared, index, &mut dialer, &mut held, &address, &e);
            continue;
        }
        *shared.slots[index].ready.write() = Some((client.clone(), address.clone()));
        shared.update_availability();
        let lost = loop {
            tokio::select! {
                _ = shared.stop.cancelled() => return,
                reason = client.closed() => break reason.unwrap_or(ClientError::Closed),
                req = requests.recv() => match req {
                    Some(req) => match reconcile(&shared, &client, &mut held, &req.key).await {
                        Outcome::Done(result) => {
                            if let Some(done) = req.done {
                                let _ = done.send(result);
                            }
                        }
                        // The local subscription stays; the next connection makes it.
                        Outcome::Broken(e) => {
                            if let Some(done) = req.done {
                                let _ = done.send(Ok(()));
                            }
                            break e;
                        }
                    },
                    None => return,
                },
            }
        };
        lose(&shared, index, &mut dialer, &mut held, &address, &lost);
    }
}

/// Marks the connection lost: its subscriptions are gone with it at the broker.
fn lose(
    shared: &Shared,
    index: usize,
    dialer: &mut Dialer,
    held: &mut Held,
    address: &str,
    error: &ClientError,
) {
    *shared.slots[index].ready.write() = None;
    dialer.lost(address, "shared", error);
    for (_, stop) in held.active.drain() {
        stop.cancel();
    }
    shared.counters.lost();
    shared.update_availability();
}

/// Answers a request while disconnected: the state is already recorded, and the next
/// connection restores it; a destination left without local subscribers is forgotten.
fn offline(shared: &Shared, held: &mut Held, req: Sync) {
    forget_if_unused(shared, held, &req.key);
    if let Some(done) = req.done {
        let _ = done.send(Ok(()));
    }
}

/// Subscribes again, on a new connection, to every destination of this slot that has
/// local subscribers.
async fn restore(
    shared: &Arc<Shared>,
    index: usize,
    client: &Arc<Client>,
    held: &mut Held,
) -> Result<(), ClientError> {
    let wanted: Vec<(ChannelKey, String)> = {
        let state = shared.state.read();
        state
            .channels
            .iter()
            .filter(|(k, c)| {
                c.slot == index
                    && c.kind == Kind::Broadcast
                    && !c.locals.is_empty()
                    && !held.refused.contains(k)
            })
            .map(|(k, c)| (k.clone(), c.broker.clone()))
            .collect()
    };
    debug!(
        slot = index,
        subscriptions = wanted.len(),
        "restoring subscriptions"
    );
    for (key, broker) in wanted {
        match subscribe(shared, client, &key, &broker).await {
            Ok(stop) => {
                held.active.insert(key, stop);
            }
            Err(e) => {
                if let ClientError::Server { message, .. } = &e {
                    error!(destination = %broker, %message, "broker refused a subscription; not restoring it");
                    held.refused.insert(key);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// What became of a request.
enum Outcome {
    /// Answered.
    Done(Result<(), BrokerError>),
    /// The connection failed (a SUBSCRIBE unanswered in time, say): it is dropped, and the
    /// next one restores every subscription.
    Broken(ClientError),
}

/// Brings the broker subscription of `key` in line with its local subscriptions.
async fn reconcile(
    shared: &Arc<Shared>,
    client: &Arc<Client>,
    held: &mut Held,
    key: &ChannelKey,
) -> Outcome {
    let wanted = {
        let state = shared.state.read();
        state
            .channels
            .get(key)
            .filter(|c| !c.locals.is_empty())
            .map(|c| c.broker.clone())
    };
    match (wanted, held.active.contains_key(key)) {
        (Some(broker), false) => {
            if held.refused.contains(key) {
                return Outcome::Done(Err(refused(&broker, "the broker refused it earlier")));
            }
            match subscribe(shared, client, key, &broker).await {
                Ok(stop) => {
                    held.active.insert(key.clone(), stop);
                    Outcome::Done(Ok(()))
                }
                Err(ClientError::Server { message, .. }) => {
                    held.refused.insert(key.clone());
                    Outcome::Done(Err(refused(
                        &broker,
                        &format!("the broker says: {message}"),
                    )))
                }
                Err(e) => Outcome::Broken(e),
            }
        }
        (None, true) => {
            if let Some(stop) = held.active.remove(key) {
                stop.cancel();
            }
            forget_if_unused(shared, held, key);
            Outcome::Done(Ok(()))
        }
        (None, false) => {
            forget_if_unused(shared, held, key);
            Outcome::Done(Ok(()))
        }
        (Some(_), true) => Outcome::Done(Ok(())),
    }
}

fn refused(broker: &str, reason: &str) -> BrokerError {
    BrokerError::Refused {
        destination: broker.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Drops the channel of `key` if no local subscription uses it any more.
fn forget_if_unused(shared: &Shared, held: &mut Held, key: &ChannelKey) {
    let mut state = shared.state.write();
    if state.channels.get(key).is_some_and(|c| c.locals.is_empty()) {
        state.channels.remove(key);
        held.refused.remove(key);
    }
}

/// Subscribes at the broker and starts the task that fans its messages out; the token
/// stops it (and unsubscribes).
async fn subscribe(
    shared: &Arc<Shared>,
    client: &Arc<Client>,
    key: &ChannelKey,
    broker: &str,
) -> Result<CancellationToken, ClientError> {
    let sub = client.subscribe(broker, AckMode::Auto).await?;
    let stop = CancellationToken::new();
    tokio::spawn(intake(shared.clone(), key.clone(), sub, stop.clone()));
    Ok(stop)
}

/// Hands each message of one broker subscription to its local subscribers.
async fn intake(
    shared: Arc<Shared>,
    key: ChannelKey,
    mut sub: client::Subscription,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => {
                let _ = sub.unsubscribe().await;
                return;
            }
            message = sub.next() => match message {
                Some(m) => shared.broadcast(&key, m.frame()),
                None => return,
            },
        }
    }
}
