//! The chat's message handlers, Spring-controller style.
//!
//! | the client sends or subscribes to | handler     | the answer goes to                     |
//! |-----------------------------------|-------------|----------------------------------------|
//! | SEND `/app/chat.join.{room}`      | [`join`]    | `/topic/rooms.{room}`                  |
//! | SEND `/app/chat.leave.{room}`     | [`leave`]   | `/topic/rooms.{room}`                  |
//! | SEND `/app/chat.send.{room}`      | [`send`]    | `/topic/rooms.{room}`                  |
//! | SEND `/app/chat.whisper`          | [`whisper`] | `/user/queue/whispers` of both users   |
//! | SUBSCRIBE `/app/rooms.{room}.members` | [`members`] | the subscriber, once               |
//! | SUBSCRIBE `/app/rooms.{room}.history` | [`history`] | the subscriber, once               |
//!
//! A failing handler's error reaches the sender on `/user/queue/errors`.

use stomp_runtime::prelude::*;

use crate::auth::check_name;
use crate::message::{ChatMessage, NewMessage, Whisper, WhisperRequest, now_ms};
use crate::rooms::Rooms;

/// Longest line of chat, in characters: a chat line, not a document. The page's inputs
/// have the same `maxlength`.
pub const MAX_TEXT_CHARS: usize = 500;

/// Enters a room; the room hears of it unless the user was already there (another tab).
#[message_mapping("/chat.join.{room}")]
#[send_to("/topic/rooms.{room}")]
pub async fn join(
    user: Principal,
    session: SessionInfo,
    DestinationVar(room): DestinationVar<String>,
    rooms: State<Rooms>,
) -> Result<Option<ChatMessage>, StompError> {
    rooms.join(&room, user.name(), &session.id)
}

/// Leaves a room; the room hears of it once the user's last session has left. Closing the
/// connection leaves every room too (see `server`, which listens for session events).
#[message_mapping("/chat.leave.{room}")]
#[send_to("/topic/rooms.{room}")]
pub async fn leave(
    user: Principal,
    session: SessionInfo,
    DestinationVar(room): DestinationVar<String>,
    rooms: State<Rooms>,
) -> Result<Option<ChatMessage>, StompError> {
    rooms.leave(&room, user.name(), &session.id)
}

/// Says something in a room the user has joined.
#[message_mapping("/chat.send.{room}")]
#[send_to("/topic/rooms.{room}")]
pub async fn send(
    user: Principal,
    DestinationVar(room): DestinationVar<String>,
    Payload(message): Payload<NewMessage>,
    rooms: State<Rooms>,
) -> Result<ChatMessage, StompError> {
    let text = checked_text(&message.text)?;
    rooms.post(&room, user.name(), text)
}

/// Whispers to one user, who must be in a room. The template reaches every session of the
/// recipient; the return value, through `#[send_to_user]`, every session of the sender, so
/// their other tabs show the conversation too.
#[message_mapping("/chat.whisper")]
#[send_to_user("/queue/whispers")]
pub async fn whisper(
    user: Principal,
    Payload(request): Payload<WhisperRequest>,
    rooms: State<Rooms>,
    template: MessagingTemplate,
) -> Result<Whisper, StompError> {
    let text = checked_text(&request.text)?;
    check_name(&request.to).map_err(|e| StompError::new(format!("cannot whisper: {e}")))?;
    if !rooms.is_present(&request.to) {
        return Err(StompError::new(format!(
            "cannot whisper: `{}` is not in any room",
            request.to
        )));
    }
    let whisper = Whisper {
        from: user.name().to_owned(),
        to: request.to,
        text,
        timestamp: now_ms(),
    };
    // Whispering to oneself: the echo below is the only copy.
    if whisper.to != whisper.from {
        template
            .convert_and_send_to_user(&whisper.to, "/queue/whispers", &whisper)
            .await?;
    }
    Ok(whisper)
}

/// Answers who is in a room, once, to the subscriber; joins and leaves that follow arrive
/// on the room's topic.
#[subscribe_mapping("/rooms.{room}.members")]
pub async fn members(
    DestinationVar(room): DestinationVar<String>,
    rooms: State<Rooms>,
) -> Result<Vec<String>, StompError> {
    rooms.members(&room)
}

/// Answers the last lines of a room, oldest first, once, to the subscriber.
#[subscribe_mapping("/rooms.{room}.history")]
pub async fn history(
    DestinationVar(room): DestinationVar<String>,
    rooms: State<Rooms>,
) -> Result<Vec<ChatMessage>, StompError> {
    rooms.history(&room)
}

/// The text without surrounding blanks, if it is neither empty nor too long.
fn checked_text(text: &str) -> Result<String, StompError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(StompError::new("the message is empty"));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(StompError::new(format!(
            "the message is {chars} characters long; at most {MAX_TEXT_CHARS} are allowed"
        )));
    }
    Ok(text.to_owned())
}
