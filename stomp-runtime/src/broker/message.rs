use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU64, Ordering},
};

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::{Frame, Headers, Version, escape_into};

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
        let headers = frame.headers.filter(|k| !NOT_FORWARDED.contains(&k));
        Self::new(
            destination,
            frame.get("content-type").map(str::to_owned),
            headers,
            frame.body.clone(),
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
        let mut head = Vec::with_capacity(128);
        let mut line = |name: &str, value: &str| {
            escape_into(name, version, &mut head);
            head.push(b':');
            escape_into(value, version, &mut head);
            head.push(b'\n');
        };
        line("destination", &self.destination);
        line("message-id", &self.message_id);
        if let Some(ct) = &self.content_type {
            line("content-type", ct);
        }
        line("content-length", &self.body.len().to_string());
        for (k, v) in self.headers.iter() {
            line(k, v);
        }
        let mut out = BytesMut::with_capacity(head.len() + self.body.len() + 2);
        out.put_slice(&head);
        out.put_u8(b'\n');
        out.put_slice(&self.body);
        out.put_u8(0);
        out.freeze()
    }
}
