//! The broker-facing end of one subscription: turns a shared message into this
//! subscriber's MESSAGE frame and queues it.

use std::collections::VecDeque;
use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use super::outbound::{Out, Outbound};
use crate::advice::{ChannelInterceptor, Deliver, OutboundContext};
use crate::broker::{AckMode, BrokerMessage, Delivery, MessageSink};
use crate::budget::{Charge, MemoryBudget};
use crate::frame::{Version, message_head};

/// A delivered message awaiting ACK or NACK.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) ack_id: u64,
    pub(crate) subscription: Arc<str>,
    pub(crate) message: Arc<BrokerMessage>,
    /// Counts against the subscription's window and the memory budget until settled.
    _hold: Unacked,
}

/// One message's place in its subscription's prefetch window and in the memory budget,
/// given back when the message is settled (the [`Pending`] entry is dropped).
#[derive(Debug)]
struct Unacked {
    window: Arc<Window>,
    _charge: Charge,
}

impl Drop for Unacked {
    fn drop(&mut self) {
        self.window.held.fetch_sub(1, Ordering::AcqRel);
        self.window.opened.notify_waiters();
    }
}

/// A subscription's prefetch window: how many unacknowledged messages it may hold.
#[derive(Debug)]
struct Window {
    max: usize,
    held: AtomicUsize,
    /// Wakes whoever waits for the window to open (a queue's backlog).
    opened: Notify,
}

/// State of a session that its subscriptions' sinks share with it.
#[derive(Debug)]
pub(crate) struct SessionShared {
    pub(crate) id: Arc<str>,
    pub(crate) outbound: Outbound,
    pub(crate) version: OnceLock<Version>,
    next_ack: AtomicU64,
    pub(crate) pending: Mutex<VecDeque<Pending>>,
    /// Negotiated (send, receive) heart-beat intervals in milliseconds.
    pub(crate) heartbeat: watch::Sender<(u64, u64)>,
    /// Attributes handlers keep for the life of the session.
    pub(crate) attributes: crate::handler::SessionAttributes,
    /// The user, once CONNECT is accepted.
    pub(crate) principal: OnceLock<crate::security::Principal>,
    /// Channel interceptors that see outbound MESSAGEs; unset when none does.
    pub(crate) interceptors: OnceLock<Arc<[Arc<dyn ChannelInterceptor>]>>,
}

impl SessionShared {
    pub(crate) fn new(id: Arc<str>, outbound: Outbound) -> Arc<Self> {
        Arc::new(Self {
            id,
            outbound,
            version: OnceLock::new(),
            next_ack: AtomicU64::new(1),
            pending: Mutex::new(VecDeque::new()),
            heartbeat: watch::Sender::new((0, 0)),
            attributes: Default::default(),
            principal: OnceLock::new(),
            interceptors: OnceLock::new(),
        })
    }

    pub(crate) fn version(&self) -> Version {
        self.version.get().copied().unwrap_or(Version::V1_2)
    }
}

/// One subscription's sink.
pub(crate) struct SubscriptionSink {
    shared: Arc<SessionShared>,
    id: Arc<str>,
    ack: AckMode,
    /// `MESSAGE\nsubscription:<id>\n`, encoded once.
    head: Bytes,
    window: Arc<Window>,
    budget: MemoryBudget,
}

impl SubscriptionSink {
    /// A sink for subscription `id`; `window` bounds its unacknowledged messages (in the
    /// `client` modes) and `budget` is charged for each of them.
    pub(crate) fn new(
        shared: Arc<SessionShared>,
        id: &str,
        ack: AckMode,
        window: usize,
        budget: MemoryBudget,
    ) -> Self {
        let head = message_head(id, None, shared.version());
        Self {
            shared,
            id: Arc::from(id),
            ack,
            head,
            window: Arc::new(Window {
                max: window,
                held: AtomicUsize::new(0),
                opened: Notify::new(),
            }),
            budget,
        }
    }
}

impl MessageSink for SubscriptionSink {
    fn deliver(&self, message: &Arc<BrokerMessage>) -> Delivery {
        self.queue(message, true)
    }

    fn offer(&self, message: &Arc<BrokerMessage>) -> Delivery {
        self.queue(message, false)
    }

    fn room(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let room = self.shared.outbound.room();
        let killed = self.shared.outbound.killed();
        let window = self.window.clone();
        Box::pin(async move {
            room.await;
            tokio::pin!(killed);
            loop {
                let opened = window.opened.notified();
                if window.held.load(Ordering::Acquire) < window.max {
                    return;
                }
                tokio::select! {
                    _ = opened => {}
                    _ = &mut killed => return,
                }
            }
        })
    }
}

impl SubscriptionSink {
    /// Queues the MESSAGE; over the bound, `policy` decides between the slow-consumer
    /// policy and a plain refusal.
    fn queue(&self, message: &Arc<BrokerMessage>, policy: bool) -> Delivery {
        if let Some(interceptors) = self.shared.interceptors.get() {
            let ctx = OutboundContext {
                session_id: &self.shared.id,
                principal: self.shared.principal.get(),
                subscription: &self.id,
            };
            let mut replaced: Option<Arc<BrokerMessage>> = None;
            for i in interceptors.iter() {
                let current = replaced.as_ref().unwrap_or(message);
                match i.pre_deliver(current, &ctx) {
                    Deliver::Pass => {}
                    // Consumed for this subscriber, as if it had been delivered.
                    Deliver::Drop => return Delivery::Delivered,
                    Deliver::Replace(m) => replaced = Some(m),
                }
            }
            if let Some(m) = replaced {
                return self.queue_now(&m, policy);
            }
        }
        self.queue_now(message, policy)
    }

    fn queue_now(&self, message: &Arc<BrokerMessage>, policy: bool) -> Delivery {
        let push = |out: Out| {
            if policy {
                self.shared.outbound.push(out)
            } else {
                self.shared.outbound.offer(out)
            }
        };
        let version = self.shared.version();
        let shared = message.shared_encoding(version).clone();
        if self.ack == AckMode::Auto {
            let out = Out::Message {
                head: self.head.clone(),
                shared,
            };
            return match push(out) {
                Ok(()) => Delivery::Delivered,
                Err(_) => Delivery::Refused,
            };
        }
        // The prefetch window: a queue's message waits in the queue; a topic's cannot, so a
        // subscriber that does not acknowledge is cut off rather than allowed to pile up.
        if self.window.held.load(Ordering::Acquire) >= self.window.max {
            if policy {
                self.shared.outbound.fail(
                    "too many unacknowledged messages",
                    format!(
                        "Subscription `{}` holds {} unacknowledged messages, its limit; \
                         acknowledge messages to receive more.",
                        self.id, self.window.max
                    ),
                );
            }
            return Delivery::Refused;
        }
        let charge = match self.budget.charge(message.footprint()) {
            Ok(c) => c,
            Err(e) => {
                if policy {
                    self.shared
                        .outbound
                        .kill_with("memory budget exhausted", e.to_string());
                }
                return Delivery::Refused;
            }
        };
        self.window.held.fetch_add(1, Ordering::AcqRel);
        let hold = Unacked {
            window: self.window.clone(),
            _charge: charge,
        };
        let ack_id = self.shared.next_ack.fetch_add(1, Ordering::Relaxed);
        let head = if version == Version::V1_2 {
            message_head(&self.id, Some(ack_id), version)
        } else {
            self.head.clone()
        };
        // Registered before queueing, so an ACK can never arrive for an unknown message.
        self.shared.pending.lock().push_back(Pending {
            ack_id,
            subscription: self.id.clone(),
            message: message.clone(),
            _hold: hold,
        });
        let out = Out::Message { head, shared };
        match push(out) {
            Ok(()) => Delivery::Delivered,
            Err(_) => {
                self.shared.pending.lock().retain(|p| p.ack_id != ack_id);
                Delivery::Refused
            }
        }
    }
}
