//! Closed connections leave their rooms.
//!
//! The framework has no session-closed event yet (Spring's `SessionDisconnectEvent`).
//! `Broker::session_closed` is the one call every closed session makes, so the chat wraps
//! the in-memory broker and listens there: a closed tab leaves its rooms, and each room
//! hears of it. Replace this with the event once the framework has one.

use std::sync::Arc;

use stomp_runtime::async_trait;
use stomp_runtime::broker::{Broker, BrokerError, BrokerMessage, Subscription};
use stomp_runtime::frame::Headers;
use tracing::warn;

use crate::rooms::Rooms;

/// A broker that forwards everything to `inner`, and on a closed session removes it from
/// the rooms and publishes the leave events.
pub(crate) struct Departures {
    inner: Arc<dyn Broker>,
    rooms: Rooms,
}

impl Departures {
    pub(crate) fn new(inner: Arc<dyn Broker>, rooms: Rooms) -> Self {
        Self { inner, rooms }
    }
}

#[async_trait]
impl Broker for Departures {
    fn handles(&self, destination: &str) -> bool {
        self.inner.handles(destination)
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<(), BrokerError> {
        self.inner.subscribe(subscription).await
    }

    async fn unsubscribe(&self, session_id: &str, subscription_id: &str) {
        self.inner.unsubscribe(session_id, subscription_id).await
    }

    async fn publish(&self, message: Arc<BrokerMessage>) -> Result<(), BrokerError> {
        self.inner.publish(message).await
    }

    async fn ack(&self, session_id: &str, messages: Vec<Arc<BrokerMessage>>) {
        self.inner.ack(session_id, messages).await
    }

    async fn requeue(&self, session_id: &str, messages: Vec<Arc<BrokerMessage>>) {
        self.inner.requeue(session_id, messages).await
    }

    async fn session_closed(&self, session_id: &str) {
        self.inner.session_closed(session_id).await;
        for event in self.rooms.session_closed(session_id) {
            let destination = format!("/topic/rooms.{}", event.room);
            let body = serde_json::to_vec(&event).expect("a ChatMessage serializes");
            let message = BrokerMessage::new(
                destination.as_str(),
                Some("application/json".into()),
                Headers::new(),
                body.into(),
            );
            if let Err(e) = self.inner.publish(message).await {
                warn!(%destination, error = %e, "leave not announced");
            }
        }
    }
}
