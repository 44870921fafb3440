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
use tokio::sync::Notify;

use super::pattern::{self, Pattern, PatternTrie};
use super::{Broker, BrokerError, BrokerMessage, Delivery, MessageSink, Subscription};
use crate::budget::MemoryBudget;

/// Default backlog of a queue without subscribers.
pub const DEFAULT_MAX_BACKLOG: usize = 10_000;
/// Default number of queues holding a backlog at once.
pub const DEFAULT_MAX_QUEUES: usize = 10_000;
/// Default bytes in all backlogs together: 256 MiB.
pub const DEFAULT_MAX_BACKLOG_BYTES: usize = 256 * 1024 * 1024;

struct Sub {
    session_id: Arc<str>,
    id: String,
    destination: String,
    /// Compiled when the destination is a pattern.
    pattern: Option<Pattern>,
    sink: Arc<dyn MessageSink>,
}

#[derive(Default)]
struct QueueState {
    cursor: usize,
    backlog: VecDeque<Arc<BrokerMessage>>,
    /// A task waits for a consumer's room to drain the backlog.
    draining: bool,
    /// Wakes that task when the consumers change (one arrives), so that it waits for the
    /// room of all of them.
    wake: Arc<Notify>,
}

/// How a message filed in a backlog pays the memory budget.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pay {
    /// Only if the budget has room.
    Try,
    /// Even past the budget: the message was accepted already and must not be lost, or
    /// its room was checked with its batch's.
    Force,
}

#[derive(Default)]
struct State {
    exact: HashMap<String, Vec<Arc<Sub>>>,
    /// Pattern subscriptions by segment: a publish visits only those that can match.
    patterns: PatternTrie<Arc<Sub>>,
    /// Every subscription of each session, so that a closing session is removed without
    /// scanning the others.
    by_session: HashMap<Arc<str>, Vec<Arc<Sub>>>,
    /// Queues with a backlog or an exact subscriber (whose round-robin cursor is kept).
    queues: HashMap<String, QueueState>,
    /// The round-robin start for queues reached only through patterns, which keep no state.
    rotor: usize,
    /// Queues whose backlog is not empty.
    backlogged: usize,
    /// Bytes held in all backlogs ([`BrokerMessage::footprint`]).
    backlog_bytes: usize,
    /// Where backlog bytes are also charged, if the server shares its budget.
    budget: Option<MemoryBudget>,
}

impl State {
    fn candidates(&self, destination: &str) -> Vec<Arc<Sub>> {
        let mut out: Vec<Arc<Sub>> = self.exact.get(destination).cloned().unwrap_or_default();
        self.patterns
            .for_each_match(destination, |s| out.push(s.clone()));
        out
    }

    fn insert(&mut self, sub: Arc<Sub>) {
        match &sub.pattern {
            Some(p) => self.patterns.insert(p, sub.clone()),
            None => self
                .exact
                .entry(sub.destination.clone())
                .or_default()
                .push(sub.clone()),
        }
        self.by_session
            .entry(sub.session_id.clone())
            .or_default()
            .push(sub);
    }

    fn remove(&mut self, sub: &Arc<Sub>) {
        match &sub.pattern {
            Some(p) => {
                self.patterns.remove(p, |s| Arc::ptr_eq(s, sub));
            }
            None => {
                if let Some(subs) = self.exact.get_mut(&sub.destination) {
                    subs.retain(|s| !Arc::ptr_eq(s, sub));
                    if subs.is_empty() {
                        self.exact.remove(&sub.destination);
                        self.forget_idle_queue(&sub.destination);
                    }
                }
            }
        }
    }

    /// Files `message` in its queue's backlog, counted against the totals and, as `pay`
    /// says, the memory budget.
    fn enqueue(
        &mut self,
        message: Arc<BrokerMessage>,
        front: bool,
        pay: Pay,
    ) -> Result<(), BrokerError> {
        let size = message.footprint();
        if let Some(budget) = &self.budget {
            match pay {
                Pay::Try => budget
                    .try_take(size)
                    .map_err(|e| BrokerError::Unavailable(e.to_string()))?,
                Pay::Force => budget.force_take(size),
            }
        }
        let queue = self.queues.entry(message.destination.clone()).or_default();
        if queue.backlog.is_empty() {
            self.backlogged += 1;
        }
        if front {
            queue.backlog.push_front(message);
        } else {
            queue.backlog.push_back(message);
        }
        self.backlog_bytes += size;
        Ok(())
    }

    /// Takes the oldest message of `destination`'s backlog.
    fn dequeue(&mut self, destination: &str) -> Option<Arc<BrokerMessage>> {
        let queue = self.queues.get_mut(destination)?;
        let message = queue.backlog.pop_front()?;
        if queue.backlog.is_empty() {
            self.backlogged -= 1;
        }
        let size = message.footprint();
        self.backlog_bytes -= size;
        if let Some(budget) = &self.budget {
            budget.release(size);
        }
        Some(message)
    }

    /// Drops a queue's state once nothing waits in it and no exact subscriber needs its
    /// cursor, so that per-session user queues do not pile up.
    fn forget_idle_queue(&mut self, destination: &str) {
        if self
            .queues
            .get(destination)
            .is_some_and(|q| q.backlog.is_empty() && !q.draining)
            && !self.exact.contains_key(destination)
        {
            self.queues.remove(destination);
        }
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
    max_queues: usize,
    max_backlog_bytes: usize,
    state: Arc<RwLock<State>>,
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
            max_queues: DEFAULT_MAX_QUEUES,
            max_backlog_bytes: DEFAULT_MAX_BACKLOG_BYTES,
            state: Arc::new(RwLock::new(State::default())),
        }
    }

    /// Sets how many messages a queue without subscribers keeps.
    pub fn max_backlog(mut self, max: usize) -> Self {
        self.max_backlog = max;
        self
    }

    /// Sets how many queues may hold a backlog at once.
    pub fn max_queues(mut self, max: usize) -> Self {
        self.max_queues = max;
        self
    }

    /// Sets how many bytes all backlogs together may hold.
    pub fn max_backlog_bytes(mut self, max: usize) -> Self {
        self.max_backlog_bytes = max;
        self
    }

    /// Charges backlogs to `budget` as well (the server's, to bound client state as a whole).
    pub fn memory_budget(self, budget: MemoryBudget) -> Self {
        self.state.write().budget = Some(budget);
        self
    }

    /// Queues holding a backlog, and the bytes in all backlogs.
    pub fn backlog(&self) -> (usize, usize) {
        let state = self.state.read();
        (state.backlogged, state.backlog_bytes)
    }

    fn is_queue(&self, destination: &str) -> bool {
        self.queues
            .iter()
            .any(|p| destination.starts_with(p.as_str()))
    }

    /// Offers a queue message to one subscriber with room, round robin, skipping those of
    /// `except`.
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
        let keeps_cursor = state.exact.contains_key(&message.destination)
            || state.queues.contains_key(&message.destination);
        let cursor = if keeps_cursor {
            &mut state
                .queues
                .entry(message.destination.clone())
                .or_default()
                .cursor
        } else {
            &mut state.rotor
        };
        for step in 0..eligible.len() {
            let sub = eligible[(*cursor + step) % eligible.len()];
            if sub.sink.offer(message) == Delivery::Delivered {
                *cursor = (*cursor + step + 1) % eligible.len();
                return true;
            }
        }
        false
    }

    /// Moves a queue's backlog, oldest first, to consumers with room. Returns the consumers
    /// to wait for when every one is full; `None` when the backlog is empty or the queue has
    /// no consumer (the next SUBSCRIBE drains it).
    fn drain(state: &mut State, destination: &str) -> Option<Vec<Arc<dyn MessageSink>>> {
        loop {
            let front = state.queues.get(destination)?.backlog.front().cloned()?;
            if !Self::deliver_queue(state, &front, None) {
                let sinks: Vec<Arc<dyn MessageSink>> = state
                    .candidates(destination)
                    .iter()
                    .map(|s| s.sink.clone())
                    .collect();
                return (!sinks.is_empty()).then_some(sinks);
            }
            state.dequeue(destination);
        }
    }

    /// Drains `destination` now and, if its consumers are full, again whenever one of
    /// them has room, so a backlog never floods a consumer past its bound.
    fn schedule_drain(shared: &Arc<RwLock<State>>, state: &mut State, destination: &str) {
        let Some(sinks) = Self::drain(state, destination) else {
            state.forget_idle_queue(destination);
            return;
        };
        let queue = state.queues.entry(destination.to_owned()).or_default();
        if queue.draining {
            queue.wake.notify_one();
            return;
        }
        queue.draining = true;
        let wake = queue.wake.clone();
        let shared = shared.clone();
        let destination = destination.to_owned();
        tokio::spawn(async move {
            let mut sinks = sinks;
            loop {
                // Whichever consumer has room first (its socket queue drained, or its
                // prefetch window opened), or a new consumer.
                let rooms = sinks.iter().map(|s| s.room());
                tokio::select! {
                    _ = futures_util::future::select_all(rooms) => {}
                    _ = wake.notified() => {}
                }
                let before = backlog_len(&shared, &destination);
                let next = {
                    let mut state = shared.write();
                    let next = Self::drain(&mut state, &destination);
                    if next.is_none()
                        && let Some(q) = state.queues.get_mut(&destination)
                    {
                        q.draining = false;
                        state.forget_idle_queue(&destination);
                    }
                    next
                };
                let Some(next) = next else { return };
                if backlog_len(&shared, &destination) == before {
                    // Woken without progress (a consumer closing): do not spin.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                sinks = next;
            }
        });
    }

    /// Whether the backlogs have room for `messages`, should every queue message among them
    /// have to wait: the per-queue, queue-count and byte bounds.
    fn check_room(
        &self,
        state: &State,
        messages: &[Arc<BrokerMessage>],
    ) -> Result<(), BrokerError> {
        let mut adding: HashMap<&str, usize> = HashMap::new();
        let mut bytes = 0usize;
        for m in messages
            .iter()
            .filter(|m| m.retain && self.is_queue(&m.destination))
        {
            let held = state
                .queues
                .get(&m.destination)
                .map_or(0, |q| q.backlog.len());
            let added = adding.entry(&m.destination).or_insert(0);
            *added += 1;
            if held + *added > self.max_backlog {
                return Err(BrokerError::QueueFull {
                    destination: m.destination.clone(),
                    max: self.max_backlog,
                });
            }
            bytes = bytes.saturating_add(m.footprint());
        }
        let new_queues = adding
            .keys()
            .filter(|d| state.queues.get(**d).is_none_or(|q| q.backlog.is_empty()))
            .count();
        if new_queues > 0 && state.backlogged + new_queues > self.max_queues {
            return Err(BrokerError::TooManyQueues {
                max: self.max_queues,
            });
        }
        if bytes > 0 && state.backlog_bytes.saturating_add(bytes) > self.max_backlog_bytes {
            return Err(BrokerError::BacklogFull {
                max_bytes: self.max_backlog_bytes,
            });
        }
        Ok(())
    }

    /// Publishes a queue message: to a consumer with room, else to the backlog if it has
    /// room. `Pay::Force` means the caller checked the room ([`Self::check_room`]).
    fn publish_locked(
        &self,
        state: &mut State,
        message: Arc<BrokerMessage>,
        pay: Pay,
    ) -> Result<(), BrokerError> {
        let waiting = state
            .queues
            .get(&message.destination)
            .is_some_and(|q| !q.backlog.is_empty());
        // Behind a backlog, a message waits its turn so the queue keeps its order.
        if !waiting && Self::deliver_queue(state, &message, None) || !message.retain {
            return Ok(());
        }
        if pay == Pay::Try {
            self.check_room(state, std::slice::from_ref(&message))?;
        }
        let destination = message.destination.clone();
        state.enqueue(message, false, pay)?;
        Self::schedule_drain(&self.state, state, &destination);
        Ok(())
    }

    /// Hands a topic message to every matching subscriber.
    fn fan_out(state: &State, message: &Arc<BrokerMessage>) {
        if let Some(subs) = state.exact.get(&message.destination) {
            for sub in subs {
                sub.sink.deliver(message);
            }
        }
        state.patterns.for_each_match(&message.destination, |sub| {
            sub.sink.deliver(message);
        });
    }

    fn drain_matching(&self, state: &mut State, sub: &Sub) {
        let dests: Vec<String> = match &sub.pattern {
            // Bounded by the number of queues holding a backlog.
            Some(p) => state
                .queues
                .iter()
                .filter(|(d, q)| !q.backlog.is_empty() && p.matches(d))
                .map(|(d, _)| d.clone())
                .collect(),
            None => vec![sub.destination.clone()],
        };
        for d in dests {
            Self::schedule_drain(&self.state, state, &d);
        }
    }
}

fn backlog_len(state: &RwLock<State>, destination: &str) -> usize {
    state
        .read()
        .queues
        .get(destination)
        .map_or(0, |q| q.backlog.len())
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
        let pattern = if pattern::is_pattern(&s.destination) {
            // The session checked its configured limits; here only the hard ones apply.
            let p = pattern::compile(&s.destination, &pattern::Limits::default()).map_err(|e| {
                BrokerError::InvalidDestination {
                    destination: s.destination.clone(),
                    reason: e.reason.to_string(),
                }
            })?;
            Some(p)
        } else {
            None
        };
        let sub = Arc::new(Sub {
            session_id: s.session_id,
            id: s.id,
            destination: s.destination,
            pattern,
            sink: s.sink,
        });
        let mut state = self.state.write();
        state.insert(sub.clone());
        if queue {
            self.drain_matching(&mut state, &sub);
        }
        Ok(())
    }

    async fn unsubscribe(&self, session_id: &str, subscription_id: &str) {
        let mut state = self.state.write();
        let Some(subs) = state.by_session.get_mut(session_id) else {
            return;
        };
        let Some(at) = subs.iter().position(|s| s.id == subscription_id) else {
            return;
        };
        let sub = subs.swap_remove(at);
        if subs.is_empty() {
            state.by_session.remove(session_id);
        }
        state.remove(&sub);
    }

    async fn publish(&self, message: Arc<BrokerMessage>) -> Result<(), BrokerError> {
        if !self.handles(&message.destination) {
            return Err(BrokerError::UnknownDestination(message.destination.clone()));
        }
        if self.is_queue(&message.destination) {
            let mut state = self.state.write();
            return self.publish_locked(&mut state, message, Pay::Try);
        }
        let state = self.state.read();
        Self::fan_out(&state, &message);
        Ok(())
    }

    async fn publish_all(&self, messages: Vec<Arc<BrokerMessage>>) -> Result<(), BrokerError> {
        if let Some(m) = messages.iter().find(|m| !self.handles(&m.destination)) {
            return Err(BrokerError::UnknownDestination(m.destination.clone()));
        }
        // One lock for the whole batch: room for all of it is checked, and the budget taken,
        // before any message goes anywhere.
        let mut state = self.state.write();
        self.check_room(&state, &messages)?;
        let worst_case: usize = messages
            .iter()
            .filter(|m| m.retain && self.is_queue(&m.destination))
            .map(|m| m.footprint())
            .sum();
        if let Some(budget) = &state.budget {
            // The budget has room for the worst case now; what other sessions take in the
            // meantime may overdraw it by at most this batch.
            budget
                .try_take(worst_case)
                .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
            budget.release(worst_case);
        }
        for message in messages {
            if self.is_queue(&message.destination) {
                self.publish_locked(&mut state, message, Pay::Force)
                    .expect("room for the whole batch was checked under this lock");
            } else {
                Self::fan_out(&state, &message);
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
        front.retain(|_, msgs| {
            msgs.retain(|m| m.retain);
            !msgs.is_empty()
        });
        for (dest, msgs) in front {
            // Accepted messages go back whatever the bounds: they are never lost.
            for m in msgs.into_iter().rev() {
                let _ = state.enqueue(m, true, Pay::Force);
            }
            // Other consumers exist but are full: hand over when they have room. With no
            // other consumer, the message waits for the next subscriber or publish.
            let others = state
                .candidates(&dest)
                .iter()
                .any(|s| &*s.session_id != session_id);
            if others {
                Self::schedule_drain(&self.state, &mut state, &dest);
            }
        }
    }

    async fn session_closed(&self, session_id: &str) {
        let mut state = self.state.write();
        let Some(subs) = state.by_session.remove(session_id) else {
            return;
        };
        for sub in &subs {
            state.remove(sub);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Headers;
    use bytes::Bytes;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Collect {
        got: Mutex<Vec<String>>,
        refuse: bool,
    }

    impl MessageSink for Collect {
        fn deliver(&self, m: &Arc<BrokerMessage>) -> Delivery {
            if self.refuse {
                return Delivery::Refused;
            }
            self.got
                .lock()
                .push(String::from_utf8_lossy(&m.body).into_owned());
            Delivery::Delivered
        }
    }

    fn msg(dest: &str, body: &'static str) -> Arc<BrokerMessage> {
        BrokerMessage::new(
            dest,
            None,
            Headers::new(),
            Bytes::from_static(body.as_bytes()),
        )
    }

    async fn sub(b: &SimpleBroker, session: &str, dest: &str, sink: Arc<Collect>) {
        b.subscribe(Subscription {
            session_id: Arc::from(session),
            id: "0".into(),
            destination: dest.into(),
            ack: super::super::AckMode::Auto,
            sink,
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn queue_keeps_messages_until_a_subscriber_comes_then_drains_in_order() {
        let b = SimpleBroker::new(["/topic"], ["/queue"]);
        b.publish(msg("/queue/a", "1")).await.unwrap();
        b.publish(msg("/queue/a", "2")).await.unwrap();
        let s = Arc::new(Collect::default());
        sub(&b, "s1", "/queue/a", s.clone()).await;
        assert_eq!(*s.got.lock(), ["1", "2"]);
    }

    #[tokio::test]
    async fn unretained_messages_without_subscribers_are_dropped() {
        let b = SimpleBroker::new(["/topic"], ["/queue"]);
        b.publish(msg("/queue/x", "keep").redirect("/queue/x-user1"))
            .await
            .unwrap();
        let s = Arc::new(Collect::default());
        sub(&b, "s1", "/queue/x-user1", s.clone()).await;
        assert!(s.got.lock().is_empty());
    }

    #[tokio::test]
    async fn full_backlog_refuses_and_refused_delivery_goes_to_the_next_consumer() {
        let b = SimpleBroker::new(["/topic"], ["/queue"]).max_backlog(1);
        b.publish(msg("/queue/f", "1")).await.unwrap();
        assert!(matches!(
            b.publish(msg("/queue/f", "2")).await,
            Err(BrokerError::QueueFull { max: 1, .. })
        ));
        let b = SimpleBroker::new(["/topic"], ["/queue"]);
        let slow = Arc::new(Collect {
            refuse: true,
            ..Default::default()
        });
        let ok = Arc::new(Collect::default());
        sub(&b, "slow", "/queue/r", slow).await;
        sub(&b, "ok", "/queue/r", ok.clone()).await;
        for _ in 0..4 {
            b.publish(msg("/queue/r", "m")).await.unwrap();
        }
        assert_eq!(ok.got.lock().len(), 4);
    }

    #[tokio::test]
    async fn requeue_skips_the_session_that_gave_the_message_back() {
        let b = SimpleBroker::new(["/topic"], ["/queue"]);
        let a = Arc::new(Collect::default());
        let c = Arc::new(Collect::default());
        sub(&b, "a", "/queue/n", a.clone()).await;
        sub(&b, "c", "/queue/n", c.clone()).await;
        b.requeue("a", vec![msg("/queue/n", "again")]).await;
        assert!(a.got.lock().is_empty());
        assert_eq!(*c.got.lock(), ["again"]);
        // With no other consumer it waits, here for the next subscriber.
        b.session_closed("c").await;
        b.requeue("a", vec![msg("/queue/n", "later")]).await;
        assert!(a.got.lock().is_empty());
        b.session_closed("a").await;
        let d = Arc::new(Collect::default());
        sub(&b, "d", "/queue/n", d.clone()).await;
        assert_eq!(*d.got.lock(), ["later"]);
    }

    #[tokio::test]
    async fn topics_reach_exact_and_pattern_subscribers() {
        let b = SimpleBroker::new(["/topic"], ["/queue"]);
        let exact = Arc::new(Collect::default());
        let one = Arc::new(Collect::default());
        let all = Arc::new(Collect::default());
        sub(&b, "e", "/topic/rooms.lobby", exact.clone()).await;
        sub(&b, "o", "/topic/rooms.*", one.clone()).await;
        sub(&b, "a", "/topic/**", all.clone()).await;
        b.publish(msg("/topic/rooms.lobby", "1")).await.unwrap();
        b.publish(msg("/topic/rooms.lobby.x", "2")).await.unwrap();
        assert_eq!(*exact.got.lock(), ["1"]);
        assert_eq!(*one.got.lock(), ["1"]);
        assert_eq!(*all.got.lock(), ["1", "2"]);
        assert!(b.publish(msg("/elsewhere", "x")).await.is_err());
        b.publish(msg("/topic/rooms.", "3")).await.unwrap();
        assert_eq!(*one.got.lock(), ["1"], "`*` never matches an empty segment");
    }

    #[tokio::test]
    async fn unsubscribe_and_close_remove_pattern_subscriptions() {
        let b = SimpleBroker::new(["/topic"], ["/queue"]);
        let a = Arc::new(Collect::default());
        let c = Arc::new(Collect::default());
        sub(&b, "a", "/topic/**", a.clone()).await;
        sub(&b, "c", "/topic/x.*", c.clone()).await;
        b.publish(msg("/topic/x.y", "1")).await.unwrap();
        b.unsubscribe("a", "0").await;
        b.publish(msg("/topic/x.y", "2")).await.unwrap();
        b.session_closed("c").await;
        b.publish(msg("/topic/x.y", "3")).await.unwrap();
        assert_eq!(*a.got.lock(), ["1"]);
        assert_eq!(*c.got.lock(), ["1", "2"]);
        let state = b.state.read();
        assert!(state.patterns.is_empty() && state.by_session.is_empty());
    }

    #[tokio::test]
    async fn a_pattern_past_the_hard_limit_is_refused() {
        let b = SimpleBroker::new(["/topic"], ["/queue"]);
        let long = format!("/topic{}", "/*".repeat(pattern::MAX_SEGMENTS));
        let err = b
            .subscribe(Subscription {
                session_id: Arc::from("s"),
                id: "0".into(),
                destination: long,
                ack: super::super::AckMode::Auto,
                sink: Arc::new(Collect::default()),
            })
            .await
            .expect_err("refused");
        assert!(
            matches!(err, BrokerError::InvalidDestination { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_pattern_subscriber_drains_matching_queue_backlogs() {
        let b = SimpleBroker::new(["/topic"], ["/queue"]);
        b.publish(msg("/queue/jobs.a", "1")).await.unwrap();
        b.publish(msg("/queue/jobs.b", "2")).await.unwrap();
        b.publish(msg("/queue/other", "3")).await.unwrap();
        let s = Arc::new(Collect::default());
        sub(&b, "s1", "/queue/jobs.*", s.clone()).await;
        let mut got = s.got.lock().clone();
        got.sort();
        assert_eq!(got, ["1", "2"]);
        // Drained queues leave no state behind; the other keeps its backlog.
        let state = b.state.read();
        assert_eq!(state.queues.len(), 1);
        assert!(state.queues.contains_key("/queue/other"));
    }
}
