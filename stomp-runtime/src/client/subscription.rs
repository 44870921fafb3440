//! One subscription's stream of messages.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::mpsc;

use super::connection::Inner;
use super::{ClientError, Message};
use crate::frame::{Command, Frame};

/// An active subscription: the messages the server delivers to it, in order.
///
/// Returned by [`Client::subscribe`](super::Client::subscribe) once the server has
/// confirmed it. Also a [`Stream`] of [`Message`]s. Dropping it unsubscribes without
/// waiting; [`Subscription::unsubscribe`] waits for the server's receipt.
pub struct Subscription {
    inner: Arc<Inner>,
    id: String,
    destination: String,
    rx: mpsc::UnboundedReceiver<Message>,
    active: bool,
}

impl Subscription {
    pub(crate) fn new(
        inner: Arc<Inner>,
        id: String,
        destination: String,
        rx: mpsc::UnboundedReceiver<Message>,
    ) -> Self {
        Self {
            inner,
            id,
            destination,
            rx,
            active: true,
        }
    }

    /// The subscription id (the SUBSCRIBE `id` header).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The destination or pattern subscribed to.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The next message; `None` once the connection is gone (see
    /// [`Client::closed`](super::Client::closed) for why).
    pub async fn next(&mut self) -> Option<Message> {
        self.rx.recv().await
    }

    /// A message that has already arrived, without waiting.
    pub fn try_next(&mut self) -> Option<Message> {
        self.rx.try_recv().ok()
    }

    /// Sends UNSUBSCRIBE and waits for the receipt. Messages not yet acknowledged go back
    /// to the server, which may deliver them to another subscriber.
    pub async fn unsubscribe(mut self) -> Result<(), ClientError> {
        self.active = false;
        self.inner.remove_route(&self.id);
        self.inner
            .request(Frame::new(Command::Unsubscribe).header("id", self.id.as_str()))
            .await
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.active {
            self.inner.remove_route(&self.id);
            self.inner.send_in_background(
                Frame::new(Command::Unsubscribe).header("id", self.id.as_str()),
            );
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}
