//! What can go wrong on a client connection.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::frame::{FrameError, Headers};

/// Everything a [`Client`](super::Client) call can fail with.
///
/// Cloneable, so one cause (say, the server's ERROR frame) can be handed to every call that
/// was waiting when the connection ended.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(Arc<io::Error>),
    /// The WebSocket handshake or framing failed.
    #[error("websocket error: {0}")]
    WebSocket(String),
    /// The server sent an ERROR frame; it closes the connection after it.
    #[error("server sent ERROR: {message}")]
    Server {
        /// The ERROR frame's `message` header (empty if it had none).
        message: String,
        /// The ERROR frame's body, usually a longer explanation.
        body: Bytes,
        /// All of the ERROR frame's headers (`receipt-id` among them when a receipted
        /// frame caused it).
        headers: Headers,
    },
    /// The server sent bytes that are not a valid STOMP frame.
    #[error("malformed frame from the server: {0}")]
    Malformed(#[from] FrameError),
    /// The server sent a valid frame that makes no sense at this point.
    #[error("protocol violation by the server: {0}")]
    Protocol(String),
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {waiting_for}")]
    Timeout {
        /// What was awaited (`"CONNECTED"`, `"RECEIPT"`).
        waiting_for: &'static str,
        /// How long the wait was.
        after: Duration,
    },
    /// The server went quiet for longer than the negotiated heart-beat interval allows.
    #[error("no data from the server for {silent_for:?}, beyond its heart-beat interval")]
    HeartbeatTimeout {
        /// The silence tolerated before giving up.
        silent_for: Duration,
    },
    /// The connection is closed (the peer hung up, or this client disconnected).
    #[error("the connection is closed")]
    Closed,
    /// A request the session cannot make, refused without asking the server (NACK on
    /// STOMP 1.0, ACK of a message from an `auto` subscription).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// The `message` header of the server's ERROR frame, if this is one.
    ///
    /// ```
    /// use stomp_runtime::client::ClientError;
    ///
    /// let err = ClientError::Server {
    ///     message: "heart-beat timeout".into(),
    ///     body: Default::default(),
    ///     headers: Default::default(),
    /// };
    /// assert_eq!(err.server_message(), Some("heart-beat timeout"));
    /// assert_eq!(ClientError::Closed.server_message(), None);
    /// ```
    pub fn server_message(&self) -> Option<&str> {
        match self {
            ClientError::Server { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(Arc::new(e))
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as WsError;
        match e {
            WsError::Io(io) => ClientError::Io(Arc::new(io)),
            WsError::ConnectionClosed | WsError::AlreadyClosed => ClientError::Closed,
            other => ClientError::WebSocket(other.to_string()),
        }
    }
}
