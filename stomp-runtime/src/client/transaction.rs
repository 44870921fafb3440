//! A STOMP transaction: sends and acknowledgements that take effect together at COMMIT.

use std::sync::Arc;

use bytes::Bytes;

use super::connection::Inner;
use super::message::ack_frame;
use super::{ClientError, Message, send_frame_for};
use crate::frame::{Command, Frame, Headers};

/// An open transaction, from [`Client::begin`](super::Client::begin).
///
/// Frames sent through it are held by the server until [`Transaction::commit`] and thrown
/// away by [`Transaction::abort`]. Dropping it without either aborts it, without waiting.
pub struct Transaction {
    inner: Arc<Inner>,
    id: String,
    finished: bool,
}

impl Transaction {
    pub(crate) fn new(inner: Arc<Inner>, id: String) -> Self {
        Self {
            inner,
            id,
            finished: false,
        }
    }

    /// The transaction id (the `transaction` header).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends `body` to `destination` within the transaction.
    pub async fn send(&self, destination: &str, body: impl Into<Bytes>) -> Result<(), ClientError> {
        self.send_with(destination, body, Headers::new()).await
    }

    /// Sends `body` to `destination` with headers of your own, within the transaction.
    pub async fn send_with(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
        headers: Headers,
    ) -> Result<(), ClientError> {
        let frame = send_frame_for(destination, body.into(), headers)
            .header("transaction", self.id.as_str());
        self.inner.send_frame(frame).await
    }

    /// Acknowledges `message` when the transaction commits.
    pub async fn ack(&self, message: &Message) -> Result<(), ClientError> {
        let frame = ack_frame(Command::Ack, message, self.inner.version, Some(&self.id))?;
        self.inner.send_frame(frame).await
    }

    /// Rejects `message` when the transaction commits (STOMP 1.1+).
    pub async fn nack(&self, message: &Message) -> Result<(), ClientError> {
        let frame = ack_frame(Command::Nack, message, self.inner.version, Some(&self.id))?;
        self.inner.send_frame(frame).await
    }

    /// Commits and waits for the receipt: once this returns, the transaction's messages
    /// are published and its acknowledgements settled.
    pub async fn commit(mut self) -> Result<(), ClientError> {
        self.finished = true;
        self.inner.request(self.end(Command::Commit)).await
    }

    /// Aborts and waits for the receipt: nothing the transaction held takes effect.
    pub async fn abort(mut self) -> Result<(), ClientError> {
        self.finished = true;
        self.inner.request(self.end(Command::Abort)).await
    }

    fn end(&self, command: Command) -> Frame {
        Frame::new(command).header("transaction", self.id.as_str())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.finished {
            self.inner.send_in_background(self.end(Command::Abort));
        }
    }
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
