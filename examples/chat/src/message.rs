//! What travels between the page and the server, as JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use stomp_runtime::prelude::*;

/// What a room topic carries: a chat line, or someone coming or going.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A line of chat.
    Chat,
    /// The user entered the room.
    Join,
    /// The user left the room (or closed their last connection).
    Leave,
}

/// One event of a room, as broadcast on `/topic/rooms.{room}` and kept in its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Unique and increasing across the server, so a page can drop a message it saw both
    /// in the history and live.
    pub id: u64,
    /// What happened.
    pub kind: Kind,
    /// The room.
    pub room: String,
    /// Who wrote, joined or left.
    pub user: String,
    /// The line of chat; empty for joins and leaves.
    pub text: String,
    /// Milliseconds since the Unix epoch (what JavaScript's `Date` takes).
    pub timestamp: u64,
}

/// What a client sends to `/app/chat.send.{room}`; the user and the time come from the
/// server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewMessage {
    /// The line of chat.
    pub text: String,
}

/// What a client sends to `/app/chat.whisper`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WhisperRequest {
    /// The recipient's user name.
    pub to: String,
    /// The private line.
    pub text: String,
}

/// A private message, delivered on `/user/queue/whispers` to every session of the
/// recipient and of the sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whisper {
    /// The sender.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// The private line.
    pub text: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
}

/// Milliseconds since the Unix epoch; 0 on a clock set before 1970.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
