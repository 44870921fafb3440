//! A MESSAGE frame as a subscriber sees it, and the ACK/NACK frames that answer it.

use bytes::Bytes;

use super::ClientError;
use crate::frame::{Command, Frame, Headers, Version};

/// A message delivered to a [`Subscription`](super::Subscription): a MESSAGE frame with
/// typed accessors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    frame: Frame,
}

impl Message {
    /// Wraps a MESSAGE frame.
    pub fn new(frame: Frame) -> Self {
        Self { frame }
    }

    /// The `destination` header: where the message was sent (empty if absent).
    pub fn destination(&self) -> &str {
        self.frame.get("destination").unwrap_or_default()
    }

    /// The body, byte for byte (it may hold NUL bytes).
    pub fn body(&self) -> &Bytes {
        &self.frame.body
    }

    /// The body as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.frame.body).ok()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.frame.get(name)
    }

    /// Every header, in wire order.
    pub fn headers(&self) -> &Headers {
        &self.frame.headers
    }

    /// The server's id for the message, the `message-id` header (empty if absent).
    pub fn message_id(&self) -> &str {
        self.frame.get("message-id").unwrap_or_default()
    }

    /// The id of the subscription it was delivered to (empty if absent).
    pub fn subscription(&self) -> &str {
        self.frame.get("subscription").unwrap_or_default()
    }

    /// The `ack` header: what a STOMP 1.2 ACK or NACK names. Present only when the
    /// subscription acknowledges (`client` or `client-individual`) on 1.2.
    pub fn ack_id(&self) -> Option<&str> {
        self.frame.get("ack")
    }

    /// The `content-type` header.
    pub fn content_type(&self) -> Option<&str> {
        self.frame.get("content-type")
    }

    /// The whole frame.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// Unwraps the frame.
    pub fn into_frame(self) -> Frame {
        self.frame
    }
}

/// The ACK or NACK frame settling `message` under `version`'s rules: 1.2 names the
/// message's `ack` header as `id`; 1.1 gives `message-id` and `subscription`; 1.0 gives
/// `message-id` alone.
pub(crate) fn ack_frame(
    command: Command,
    message: &Message,
    version: Version,
    transaction: Option<&str>,
) -> Result<Frame, ClientError> {
    debug_assert!(matches!(command, Command::Ack | Command::Nack));
    if command == Command::Nack && version == Version::V1_0 {
        return Err(ClientError::InvalidRequest(
            "NACK needs STOMP 1.1 or later; this session speaks 1.0".into(),
        ));
    }
    let mut frame = Frame::new(command);
    match version {
        Version::V1_2 => {
            let Some(id) = message.ack_id() else {
                return Err(ClientError::InvalidRequest(format!(
                    "message `{}` has no `ack` header: its subscription is in auto mode",
                    message.message_id()
                )));
            };
            frame = frame.header("id", id);
        }
        Version::V1_1 => {
            frame = frame
                .header("message-id", message.message_id())
                .header("subscription", message.subscription());
        }
        Version::V1_0 => frame = frame.header("message-id", message.message_id()),
    }
    if let Some(tx) = transaction {
        frame = frame.header("transaction", tx);
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(ack: Option<&str>) -> Message {
        let mut f = Frame::new(Command::Message)
            .header("subscription", "sub-1")
            .header("message-id", "m-7")
            .header("destination", "/queue/a")
            .body("hi");
        if let Some(a) = ack {
            f = f.header("ack", a);
        }
        Message::new(f)
    }

    #[test]
    fn accessors_read_the_headers() {
        let m = message(Some("3"));
        assert_eq!(m.destination(), "/queue/a");
        assert_eq!(m.message_id(), "m-7");
        assert_eq!(m.subscription(), "sub-1");
        assert_eq!(m.ack_id(), Some("3"));
        assert_eq!(m.text(), Some("hi"));
        assert_eq!(m.content_type(), None);
    }

    #[test]
    fn v12_acks_by_the_ack_header() {
        let f = ack_frame(Command::Ack, &message(Some("3")), Version::V1_2, Some("tx")).unwrap();
        assert_eq!(f.command, Command::Ack);
        assert_eq!(f.get("id"), Some("3"));
        assert_eq!(f.get("message-id"), None);
        assert_eq!(f.get("transaction"), Some("tx"));
    }

    #[test]
    fn v12_refuses_a_message_without_ack_header() {
        let err = ack_frame(Command::Ack, &message(None), Version::V1_2, None).unwrap_err();
        assert!(matches!(err, ClientError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn v11_names_message_and_subscription() {
        let f = ack_frame(Command::Nack, &message(None), Version::V1_1, None).unwrap();
        assert_eq!(f.command, Command::Nack);
        assert_eq!(f.get("message-id"), Some("m-7"));
        assert_eq!(f.get("subscription"), Some("sub-1"));
        assert_eq!(f.get("id"), None);
    }

    #[test]
    fn v10_names_the_message_only_and_has_no_nack() {
        let f = ack_frame(Command::Ack, &message(None), Version::V1_0, None).unwrap();
        assert_eq!(f.get("message-id"), Some("m-7"));
        assert_eq!(f.get("subscription"), None);
        let err = ack_frame(Command::Nack, &message(None), Version::V1_0, None).unwrap_err();
        assert!(matches!(err, ClientError::InvalidRequest(_)), "{err:?}");
    }
}
