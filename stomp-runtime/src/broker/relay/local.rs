//! The node's side of the relay: which local subscriptions hang off each broker
//! subscription, and the frames that cross between this server and the broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::destination::Kind;
use crate::broker::{AckMode, BrokerMessage, MessageSink};
use crate::frame::{Command, Frame};

/// Headers of a broker MESSAGE that describe its delivery by the broker, not the message:
/// they are not passed on (RabbitMQ even echoes the publisher's `receipt`).
const FROM_BROKER: &[&str] = &[
    "destination",
    "message-id",
    "subscription",
    "ack",
    "content-length",
    "content-type",
    "receipt",
];

/// One local subscription, as the relay sees it.
pub(crate) struct Local {
    pub(crate) session_id: Arc<str>,
    pub(crate) id: String,
    /// The destination as the client subscribed to it.
    pub(crate) destination: Arc<str>,
    pub(crate) ack: AckMode,
    pub(crate) sink: Arc<dyn MessageSink>,
}

/// What a broker subscription is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ChannelKey {
    /// A broadcast or queue destination, by its broker destination.
    Broker(String),
    /// A user destination, by its routing key on the user exchange. A separate variant, so
    /// no client destination can ever share a user's channel.
    User(String),
}

/// One broker subscription and the local subscriptions it feeds.
pub(crate) struct Channel {
    pub(crate) kind: Kind,
    /// The SUBSCRIBE destination at the broker.
    pub(crate) broker: String,
    /// Whether messages name their own destination (a pattern subscription).
    pub(crate) pattern: bool,
    /// The pool connection it lives on (broadcast and user channels).
    pub(crate) slot: usize,
    pub(crate) locals: Vec<Arc<Local>>,
    /// Round-robin position among the locals (queue channels).
    pub(crate) cursor: AtomicUsize,
    /// Stops the channel's own connection (queue channels).
    pub(crate) stop: Option<CancellationToken>,
    /// Woken when a local subscription joins (queue channels waiting for room).
    pub(crate) joined: Arc<Notify>,
}

impl Channel {
    pub(crate) fn new(kind: Kind, broker: String, pattern: bool, slot: usize) -> Self {
        Self {
            kind,
            broker,
            pattern,
            slot,
            locals: Vec::new(),
            cursor: AtomicUsize::new(0),
            stop: None,
            joined: Arc::new(Notify::new()),
        }
    }
}

/// Where one local subscription is registered.
struct Entry {
    channel: Option<ChannelKey>,
    /// The user destination (`/queue/x`) for session-addressed messages.
    user_destination: Option<String>,
}

#[derive(Default)]
struct SessionSubs {
    subs: HashMap<String, Entry>,
    /// User destination → this session's subscriptions to it.
    user: HashMap<String, Vec<Arc<Local>>>,
}

/// A local subscription taken off its channel.
pub(crate) struct Removed {
    pub(crate) key: ChannelKey,
    /// Whether the channel has no local subscription left.
    pub(crate) emptied: bool,
}

/// Every local subscription of the node.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) channels: HashMap<ChannelKey, Channel>,
    sessions: HashMap<Arc<str>, SessionSubs>,
}

impl State {
    /// Registers `local` on channel `key` (made by `make` if new) and, for user
    /// destinations, under the session's `user_destination`. Returns whether the channel
    /// is new.
    pub(crate) fn add(
        &mut self,
        key: Option<(ChannelKey, &dyn Fn() -> Channel)>,
        local: Arc<Local>,
        user_destination: Option<String>,
    ) -> bool {
        let mut created = false;
        let channel = key.map(|(key, make)| {
            let channel = self.channels.entry(key.clone()).or_insert_with(|| {
                created = true;
                make()
            });
            channel.locals.push(local.clone());
            channel.joined.notify_waiters();
            key
        });
        let session = self.sessions.entry(local.session_id.clone()).or_default();
        if let Some(dest) = &user_destination {
            session
                .user
                .entry(dest.clone())
                .or_default()
                .push(local.clone());
        }
        session.subs.insert(
            local.id.clone(),
            Entry {
                channel,
                user_destination,
            },
        );
        created
    }

    /// Whether the session already has subscription `id` here.
    pub(crate) fn has(&self, session: &str, id: &str) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|s| s.subs.contains_key(id))
    }

    /// Takes one local subscription off; `None` if unknown or not on a channel.
    pub(crate) fn remove(&mut self, session: &str, id: &str) -> Option<Removed> {
        let subs = self.sessions.get_mut(session)?;
        let entry = subs.subs.remove(id)?;
        if let Some(dest) = &entry.user_destination
            && let Some(list) = subs.user.get_mut(dest)
        {
            list.retain(|l| l.id != id);
            if list.is_empty() {
                subs.user.remove(dest);
            }
        }
        if subs.subs.is_empty() {
            self.sessions.remove(session);
        }
        let key = entry.channel?;
        let channel = self.channels.get_mut(&key)?;
        if let Some(i) = channel
            .locals
            .iter()
            .position(|l| &*l.session_id == session && l.id == id)
        {
            channel.locals.swap_remove(i);
        }
        Some(Removed {
            emptied: channel.locals.is_empty(),
            key,
        })
    }

    /// Takes every subscription of a session off.
    pub(crate) fn remove_session(&mut self, session: &str) -> Vec<Removed> {
        let ids: Vec<String> = self
            .sessions
            .get(session)
            .map(|s| s.subs.keys().cloned().collect())
            .unwrap_or_default();
        ids.iter()
            .filter_map(|id| self.remove(session, id))
            .collect()
    }

    /// A session's subscriptions to user destination `destination`.
    pub(crate) fn session_user(&self, session: &str, destination: &str) -> Vec<Arc<Local>> {
        self.sessions
            .get(session)
            .and_then(|s| s.user.get(destination))
            .cloned()
            .unwrap_or_default()
    }

    /// Broker subscriptions on the shared connections (broadcast and user channels).
    pub(crate) fn pooled(&self) -> usize {
        self.channels
            .values()
            .filter(|c| c.kind == Kind::Broadcast)
            .count()
    }

    /// Queue destinations relayed, each on its own connection.
    pub(crate) fn queues(&self) -> usize {
        self.channels
            .values()
            .filter(|c| c.kind == Kind::Queue)
            .count()
    }

    /// Local subscriptions on channels.
    pub(crate) fn locals(&self) -> usize {
        self.channels.values().map(|c| c.locals.len()).sum()
    }
}

/// A broker MESSAGE as the message local subscribers get, shown at `destination`.
pub(crate) fn inbound(destination: &str, frame: &Frame) -> Arc<BrokerMessage> {
    BrokerMessage::new(
        destination,
        frame.get("content-type").map(str::to_owned),
        frame.headers.filter(|k| !FROM_BROKER.contains(&k)),
        frame.body.clone(),
    )
}

/// The SEND that publishes `message` at the broker destination `broker`.
pub(crate) fn outbound(broker: &str, kind: Kind, message: &BrokerMessage) -> Frame {
    let mut frame = Frame::new(Command::Send).header("destination", broker);
    if let Some(ct) = &message.content_type {
        frame = frame.header("content-type", ct.as_str());
    }
    for (k, v) in message.headers.iter() {
        // A `/temp-queue/` reply-to makes RabbitMQ create a queue on the relay's shared
        // connection; a client has no business doing that.
        if k == "receipt" || k == "persistent" || (k == "reply-to" && v.starts_with("/temp-queue"))
        {
            continue;
        }
        frame = frame.header(k, v);
    }
    if kind == Kind::Queue {
        // Queue messages outlive a broker restart, as durable queues do.
        frame = frame.header("persistent", "true");
    }
    frame.body(message.body.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Delivery;
    use crate::frame::Headers;
    use bytes::Bytes;

    struct Null;
    impl MessageSink for Null {
        fn deliver(&self, _: &Arc<BrokerMessage>) -> Delivery {
            Delivery::Delivered
        }
    }

    fn local(session: &str, id: &str) -> Arc<Local> {
        Arc::new(Local {
            session_id: Arc::from(session),
            id: id.into(),
            destination: Arc::from("/topic/x"),
            ack: AckMode::Auto,
            sink: Arc::new(Null),
        })
    }

    #[test]
    fn a_channel_empties_with_its_last_local_subscription() {
        let mut s = State::default();
        let key = ChannelKey::Broker("/topic/x".into());
        let make = || Channel::new(Kind::Broadcast, "/topic/x".into(), false, 0);
        assert!(s.add(Some((key.clone(), &make)), local("a", "1"), None));
        assert!(!s.add(Some((key.clone(), &make)), local("b", "1"), None));
        assert!(s.has("a", "1"));
        let r = s.remove("a", "1").unwrap();
        assert!(!r.emptied);
        assert!(s.remove("a", "1").is_none());
        let gone = s.remove_session("b");
        assert_eq!(gone.len(), 1);
        assert!(gone[0].emptied);
        assert_eq!(gone[0].key, key);
        assert_eq!(s.locals(), 0);
    }

    #[test]
    fn session_user_subscriptions_are_found_by_destination() {
        let mut s = State::default();
        s.add(None, local("a", "1"), Some("/queue/errors".into()));
        assert_eq!(s.session_user("a", "/queue/errors").len(), 1);
        assert!(s.session_user("a", "/queue/other").is_empty());
        assert!(s.session_user("b", "/queue/errors").is_empty());
        assert!(s.remove("a", "1").is_none());
        assert!(s.session_user("a", "/queue/errors").is_empty());
    }

    #[test]
    fn broker_delivery_headers_are_not_passed_on() {
        let frame = Frame::new(Command::Message)
            .header("subscription", "3")
            .header("destination", "/topic/x")
            .header("message-id", "T_3@@s@@1")
            .header("receipt", "r-7")
            .header("content-type", "text/plain")
            .header("x-app", "yes")
            .body("hi");
        let m = inbound("/topic/x", &frame);
        assert_eq!(m.destination, "/topic/x");
        assert_eq!(m.content_type.as_deref(), Some("text/plain"));
        let kept: Vec<_> = m.headers.iter().collect();
        assert_eq!(kept, [("x-app", "yes")]);
    }

    #[test]
    fn sends_drop_temp_queue_replies_and_persist_queue_messages() {
        let mut h = Headers::new();
        h.push("reply-to", "/temp-queue/x");
        h.push("x-app", "1");
        let m = BrokerMessage::new("/queue/a", None, h, Bytes::from_static(b"b"));
        let f = outbound("/queue/a", Kind::Queue, &m);
        assert_eq!(f.get("reply-to"), None);
        assert_eq!(f.get("x-app"), Some("1"));
        assert_eq!(f.get("persistent"), Some("true"));
        let f = outbound("/topic/a", Kind::Broadcast, &m);
        assert_eq!(f.get("persistent"), None);
    }
}
