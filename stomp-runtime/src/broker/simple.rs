//! The in-memory broker.
//!
//! `/topic`-style prefixes broadcast: every subscriber gets every message. `/queue`-style
//! prefixes have competing consumers, as in RabbitMQ and ActiveMQ: each message goes to
//! exactly one subscriber, round robin, and waits in a bounded backlog while there is none.
//! (Spring's simple broker broadcasts on `/queue` too; this one does not.)

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;

use super::{Broker, BrokerError, BrokerMessage, Delivery, MessageSink, Subscription, pattern};

/// Default backlog of a queue without subscribers.
pub const DEFAULT_MAX_BACKLOG: usize = 10_000;

struct Sub {
    session_id: Arc<str>,
    id: String,
    destination: String,
    sink: Arc<dyn MessageSink>,
}

#[derive(Default)]
struct QueueState {
    cursor: usize,
    backlog: VecDeque<Arc<BrokerMessage>>,
}

#[derive(Default)]
struct State {
    exact: HashMap<String, Vec<Arc<Sub>>>,
    patterns: Vec<Arc<Sub>>,
    queues: HashMap<String, QueueState>,
}

impl State {
    fn candidates(&self, destination: &str) -> Vec<Arc<Sub>> {
        let mut out: Vec<Arc<Sub>> = self.exact.get(destination).cloned().unwrap_or_default();
        out.extend(
            self.patterns
                .iter()
                .filter(|s| pattern::matches(&s.destination, destination))
                .cloned(),
        );
        out
    }
}

/// The in-memory broker with topic and queue prefixes.
///
/// ```
/// use stomp_runtime::broker::{Broker, SimpleBroker};
///
/// let broker = SimpleBroker::new(["/topic"], ["/queue"]);
/// assert!(broker.handles("/topic/news"));
/// assert!(broker.handles("/queue/jobs"));
/// assert!(!broker.handles("/app/chat"));
/// ```
pub struct SimpleBroker {
    topics: Vec<String>,
    queues: Vec<String>,
    max_backlog: usize,
    state: RwLock<State>,
}

impl SimpleBroker {
    /// A broker broadcasting under `topics` prefixes and load-balancing under `queues`.
    pub fn new<T, Q>(topics: T, queues: Q) -> Self
    where
        T: IntoIterator,
        T::Item: Into<String>,
        Q: IntoIterator,
        Q::Item: Into<String>,
    {
        Self {
            topics: topics.into_iter().map(Into::into).collect(),
            queues: queues.into_iter().map(Into::into).collect(),
            max_backlog: DEFAULT_MAX_BACKLOG,
            state: RwLock::new(State::default()),
        }
    }

    /// Sets how many messages a queue without subscribers keeps.
    pub fn max_backlog(mut self, max: usize) -> Self {
        self.max_backlog = max;
        self
    }

    fn is_queue(&self, destination: &str) -> bool {
        self.queues
            .iter()
            .any(|p| destination.starts_with(p.as_str()))
    }

    /// Delivers a queue message to one subscriber, skipping those of `except`.
    fn deliver_queue(
        state: &mut State,
        message: &Arc<BrokerMessage>,
        except: Option<&str>,
    ) -> bool {
        let subs = state.candidates(&message.destination);
        let eligible: Vec<&Arc<Sub>> = subs
            .iter()
            .filter(|s| except.is_none_or(|e| &*s.session_id != e))
            .collect();
        if eligible.is_empty() {
            return false;
        }
        let queue = state.queues.entry(message.destination.clone()).or_default();
        for step in 0..eligible.len() {
            let sub = eligible[(queue.cursor + step) % eligible.len()];
            if sub.sink.deliver(message) == Delivery::Delivered {
                queue.cursor = (queue.cursor + step + 1) % eligible.len();
                return true;
            }
        }
        false
    }

    fn drain_backlogs(&self, state: &mut State, sub: &Sub) {
        let dests: Vec<String> = state
            .queues
            .iter()
            .filter(|(d, q)| !q.backlog.is_empty() && pattern::matches(&sub.destination, d))
            .map(|(d, _)| d.clone())
            .collect();
        for d in dests {
            let Some(queue) = state.queues.get_mut(&d) else {
                continue;
            };
            while let Some(m) = queue.backlog.pop_front() {
                if sub.sink.deliver(&m) != Delivery::Delivered {
                    queue.backlog.push_front(m);
                    break;
                }
            }
        }
    }
}

#[async_trait]
impl Broker for SimpleBroker {
    fn handles(&self, destination: &str) -> bool {
        self.topics
            .iter()
            .chain(&self.queues)
            .any(|p| destination.starts_with(p.as_str()))
    }

    async fn subscribe(&self, s: Subscription) -> Result<(), BrokerError> {
        if !self.handles(&s.destination) {
            return Err(BrokerError::UnknownDestination(s.destination));
        }
        let queue = self.is_queue(&s.destination);
        let sub = Arc::new(Sub {
            session_id: s.session_id,
            id: s.id,
            destination: s.destination,
            sink: s.sink,
        });
        let mut state = self.state.write();
        if pattern::is_pattern(&sub.destination) {
            state.patterns.push(sub.clone());
        } else {
            state
                .exact
                .entry(sub.destination.clone())
                .or_default()
                .push(sub.clone());
        }
        if queue {
            self.drain_backlogs(&mut state, &sub);
        }
        Ok(())
    }

    async fn unsubscribe(&self, session_id: &str, subscription_id: &str) {
        let mut state = self.state.write();
        let keep = |s: &Arc<Sub>| !(&*s.session_id == session_id && s.id == subscription_id);
        state.patterns.retain(keep);
        state.exact.retain(|_, subs| {
            subs.retain(keep);
            !subs.is_empty()
        });
    }

    async fn publish(&self, message: Arc<BrokerMessage>) -> Result<(), BrokerError> {
        if !self.handles(&message.destination) {
            return Err(BrokerError::UnknownDestination(message.destination.clone()));
        }
        if self.is_queue(&message.destination) {
            let mut state = self.state.write();
            if Self::deliver_queue(&mut state, &message, None) {
                return Ok(());
            }
            let queue = state.queues.entry(message.destination.clone()).or_default();
            if queue.backlog.len() >= self.max_backlog {
                return Err(BrokerError::QueueFull {
                    destination: message.destination.clone(),
                    max: self.max_backlog,
                });
            }
            queue.backlog.push_back(message);
            return Ok(());
        }
        let state = self.state.read();
        if let Some(subs) = state.exact.get(&message.destination) {
            for sub in subs {
                sub.sink.deliver(&message);
            }
        }
        for sub in &state.patterns {
            if pattern::matches(&sub.destination, &message.destination) {
                sub.sink.deliver(&message);
            }
        }
        Ok(())
    }

    async fn ack(&self, _session_id: &str, _messages: Vec<Arc<BrokerMessage>>) {
        // In memory, a delivered message is held only by the session until it is acked.
    }

    async fn requeue(&self, session_id: &str, messages: Vec<Arc<BrokerMessage>>) {
        let mut state = self.state.write();
        // Oldest first, so a queue's order survives as far as it can.
        let mut front: HashMap<String, Vec<Arc<BrokerMessage>>> = HashMap::new();
        for m in messages {
            if !self.is_queue(&m.destination) {
                continue;
            }
            if !Self::deliver_queue(&mut state, &m, Some(session_id)) {
                front.entry(m.destination.clone()).or_default().push(m);
            }
        }
        for (dest, msgs) in front {
            let queue = state.queues.entry(dest).or_default();
            for m in msgs.into_iter().rev() {
                queue.backlog.push_front(m);
            }
        }
    }

    async fn session_closed(&self, session_id: &str) {
        let mut state = self.state.write();
        state.patterns.retain(|s| &*s.session_id != session_id);
        state.exact.retain(|_, subs| {
            subs.retain(|s| &*s.session_id != session_id);
            !subs.is_empty()
        });
    }
}
