//! Queue destinations: one connection each, so that closing it gives the broker back every
//! message the node has not settled.
//!
//! RabbitMQ's STOMP adapter keeps the unacknowledged messages of a cancelled subscription
//! on the connection until the connection closes, and refuses ACK and NACK for them
//! ("Subscription not found"); messages already on their way when UNSUBSCRIBE arrives are
//! in the same state. On a connection of its own, a queue subscription ends by closing the
//! connection, and the broker requeues all of them for the other nodes' consumers.
//!
//! The broker subscription acknowledges message by message (`client-individual`) with a
//! prefetch window: the relay acknowledges a message once an `auto` subscriber has it
//! queued, and passes on the ACK or NACK of a `client` or `client-individual` subscriber.
//! Messages no local subscriber has room for wait here, at most a prefetch window of them.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::future::select_all;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::link::Dialer;
use super::local::{ChannelKey, inbound};
use super::{AckHandle, Shared};
use crate::broker::{AckMode, BrokerError, BrokerMessage, Delivery};
use crate::client::{Client, ClientError, Subscription};
use crate::frame::{Command, Frame, Headers};

/// A message from the broker and the id that settles it there.
struct Waiting {
    message: Arc<BrokerMessage>,
    ack: Option<String>,
}

/// Runs the connection of queue channel `key` until `stop` is cancelled. `ready` hears
/// once whether the first broker subscription was made.
pub(crate) async fn run(
    shared: Arc<Shared>,
    key: ChannelKey,
    broker: String,
    destination: Arc<str>,
    stop: CancellationToken,
    mut ready: Option<oneshot::Sender<Result<(), BrokerError>>>,
) {
    let mut dialer = Dialer::new(0);
    loop {
        let Some((client, address)) = dialer.connect(&shared.config, "queue", &stop).await else {
            return;
        };
        let client = Arc::new(client);
        let mut headers = Headers::new();
        headers.push("prefetch-count", shared.config.prefetch.to_string());
        let subscribed = tokio::select! {
            _ = stop.cancelled() => return,
            r = client.subscribe_with(&broker, AckMode::ClientIndividual, headers) => r,
        };
        let mut sub = match subscribed {
            Ok(sub) => sub,
            Err(ClientError::Server { message, .. }) => {
                // The broker will not have it (a reserved or forbidden name): retrying
                // cannot help, and the subscriber hears why.
                error!(destination = %broker, %message, "broker refused a queue subscription");
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(BrokerError::Refused {
                        destination: broker.clone(),
                        reason: format!("the broker says: {message}"),
                    }));
                }
                return;
            }
            Err(e) => {
                dialer.lost(&address, "queue", &e);
                continue;
            }
        };
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        shared.counters.queue_up(1);
        let lost = serve(&shared, &key, &destination, &client, &mut sub, &stop).await;
        shared.counters.queue_up(-1);
        match lost {
            Some(e) => {
                dialer.lost(&address, "queue", &e);
                shared.counters.lost();
            }
            None => {
                drop(sub);
                // Unsettled messages go back to the queue as the connection closes.
                let _ = client.disconnect().await;
                return;
            }
        }
    }
}

/// Moves messages from the broker to local subscribers until the connection is lost
/// (`Some(why)`) or the channel stops (`None`).
async fn serve(
    shared: &Shared,
    key: &ChannelKey,
    destination: &str,
    client: &Arc<Client>,
    sub: &mut Subscription,
    stop: &CancellationToken,
) -> Option<ClientError> {
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    loop {
        // A channel gone means it stopped.
        let joined = shared
            .state
            .read()
            .channels
            .get(key)
            .map(|c| c.joined.clone())?;
        // Registered before trying, so a subscriber joining meanwhile is not missed.
        let notified = joined.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        while let Some(w) = waiting.front() {
            match place(shared, key, client, w) {
                Placed::No => break,
                Placed::Yes { ack_now } => {
                    if ack_now && let Some(id) = &w.ack {
                        let _ = client.send_frame(settle(Command::Ack, id)).await;
                    }
                    waiting.pop_front();
                }
            }
        }
        let rooms = if waiting.is_empty() {
            Vec::new()
        } else {
            shared
                .state
                .read()
                .channels
                .get(key)
                .map(|c| c.locals.iter().map(|l| l.sink.room()).collect())
                .unwrap_or_default()
        };
        let room = async move {
            if rooms.is_empty() {
                std::future::pending::<()>().await;
            } else {
                select_all(rooms).await;
            }
        };
        tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            message = sub.next() => match message {
                Some(m) => {
                    shared.counters.received();
                    waiting.push_back(Waiting {
                        message: inbound(destination, m.frame()),
                        ack: m.ack_id().map(str::to_owned),
                    });
                }
                None => return Some(client.closed().await.unwrap_or(ClientError::Closed)),
            },
            _ = room => {}
            _ = notified => {}
        }
    }
}

enum Placed {
    Yes { ack_now: bool },
    No,
}

/// Offers a message to the local subscribers, round robin, until one takes it.
fn place(shared: &Shared, key: &ChannelKey, client: &Arc<Client>, w: &Waiting) -> Placed {
    use std::sync::atomic::Ordering::Relaxed;
    let state = shared.state.read();
    let Some(channel) = state.channels.get(key) else {
        return Placed::No;
    };
    let n = channel.locals.len();
    let start = channel.cursor.load(Relaxed);
    for step in 0..n {
        let i = (start + step) % n;
        let local = &channel.locals[i];
        let acknowledging = local.ack != AckMode::Auto;
        // Known before the subscriber can possibly ACK it.
        if acknowledging && let Some(id) = &w.ack {
            shared.acks.lock().insert(
                w.message.message_id.clone(),
                AckHandle {
                    client: Arc::downgrade(client),
                    id: id.clone(),
                },
            );
        }
        if local.sink.offer(&w.message) == Delivery::Delivered {
            channel.cursor.store((i + 1) % n, Relaxed);
            return Placed::Yes {
                ack_now: !acknowledging,
            };
        }
        if acknowledging {
            shared.acks.lock().remove(&w.message.message_id);
        }
    }
    Placed::No
}

/// The ACK or NACK of one broker message (STOMP 1.2: by the MESSAGE's `ack` header).
pub(crate) fn settle(command: Command, id: &str) -> Frame {
    Frame::new(command).header("id", id)
}
