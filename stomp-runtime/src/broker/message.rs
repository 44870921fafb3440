use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;

use crate::frame::{Frame, Headers, Version, message_shared};

/// Headers of a SEND frame that describe the frame itself and are not passed on to
/// subscribers.
const NOT_FORWARDED: &[&str] = &[
    "destination",
    "receipt",
    "transaction",
    "content-length",
    "content-type",
    "message-id",
    "subscription",
    "ack",
];

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A published message, shared by every subscriber it reaches.
///
/// The part of the MESSAGE frame that all subscribers share (destination, message-id,
/// content headers, the sender's headers and the body) is encoded once per STOMP version,
/// on first use.
#[derive(Debug)]
pub struct BrokerMessage {
    /// Where it was sent.
    pub destination: String,
    /// A server-unique id.
    pub message_id: String,
    /// The body's media type, if the sender gave one.
    pub content_type: Option<String>,
    /// The sender's own headers, passed on to subscribers.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
    /// Whether a queue keeps the message while it has no subscriber. Messages for user
    /// destinations are not kept: they reach the sessions subscribed now or nobody.
    pub retain: bool,
    encoded: [OnceLock<Bytes>; 3],
}

impl BrokerMessage {
    /// A message with a fresh id.
    pub fn new(
        destination: impl Into<String>,
        content_type: Option<String>,
        headers: Headers,
        body: Bytes,
    ) -> Arc<Self> {
        Arc::new(Self::build(
            destination.into(),
            content_type,
            headers,
            body,
            true,
        ))
    }

    fn build(
        destination: String,
        content_type: Option<String>,
        headers: Headers,
        body: Bytes,
        retain: bool,
    ) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Self {
            destination,
            message_id: format!("m-{id}"),
            content_type,
            headers,
            body,
            retain,
            encoded: Default::default(),
        }
    }

    /// The message a SEND frame publishes: its own headers travel with it.
    pub fn from_send(frame: &Frame, destination: &str) -> Arc<Self> {
        // Copied out of the read buffer: a message may wait in a queue for long, and should
        // pin only its own bytes, not the whole buffer it arrived in.
        let headers = frame
            .headers
            .filter(|k| !NOT_FORWARDED.contains(&k))
            .detached();
        Self::new(
            destination,
            frame.get("content-type").map(str::to_owned),
            headers,
            Bytes::copy_from_slice(&frame.body),
        )
    }

    /// The same message under a new id at one session's user destination; not kept by a
    /// queue without subscribers.
    pub fn redirect(&self, destination: impl Into<String>) -> Arc<Self> {
        Arc::new(Self::build(
            destination.into(),
            self.content_type.clone(),
            self.headers.clone(),
            self.body.clone(),
            false,
        ))
    }

    /// Roughly the bytes this message holds, for memory accounting: body, headers,
    /// destination and bookkeeping.
    pub fn footprint(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 16)
            .sum();
        self.body.len()
            + headers
            + self.destination.len()
            + self.message_id.len()
            + crate::budget::ENTRY_OVERHEAD
    }

    /// The shared tail of the MESSAGE frame for `version`: every header line but the
    /// per-subscription ones, the blank line, the body and the NUL.
    pub fn shared_encoding(&self, version: Version) -> &Bytes {
        let slot = match version {
            Version::V1_0 => &self.encoded[0],
            Version::V1_1 => &self.encoded[1],
            Version::V1_2 => &self.encoded[2],
        };
        slot.get_or_init(|| self.encode_shared(version))
    }

    fn encode_shared(&self, version: Version) -> Bytes {
        message_shared(
            &self.destination,
            &self.message_id,
            self.content_type.as_deref(),
            &self.headers,
            &self.body,
            version,
        )
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::config::Limits;
    use crate::frame::{Command, Parsed, Parser, message_head};

    #[test]
    fn a_forwarded_header_cannot_inject_lines_into_a_v10_message() {
        // A 1.2 sender escapes LF, CR and colons; a 1.0 subscriber gets no escaping at all.
        let send = Frame::new(Command::Send)
            .header("destination", "/topic/a")
            .header("x", "1\ncontent-length:0\r\nevil:yes")
            .header("y\ncontent-type:evil", "2")
            .body("hello");
        let message = BrokerMessage::from_send(&send, "/topic/a");
        for version in Version::ALL {
            let mut wire = BytesMut::from(&message_head("s", None, version)[..]);
            wire.extend_from_slice(message.shared_encoding(version));
            let mut parser = Parser::new(&Limits::default());
            parser.set_version(version);
            let Ok(Some(Parsed::Frame(got))) = parser.parse(&mut wire) else {
                panic!("{version}: one MESSAGE")
            };
            assert!(wire.is_empty(), "{version}: nothing after the frame");
            assert_eq!(got.get("evil"), None, "{version}");
            assert_eq!(got.get("content-length"), Some("5"), "{version}");
            assert_eq!(got.get("content-type"), None, "{version}");
            assert_eq!(&got.body[..], b"hello", "{version}");
            if version == Version::V1_0 {
                assert_eq!(got.get("x"), Some("1 content-length:0  evil:yes"));
            } else {
                assert_eq!(got.get("x"), Some("1\ncontent-length:0\r\nevil:yes"));
            }
        }
    }
}
