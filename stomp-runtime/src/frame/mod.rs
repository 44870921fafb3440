//! STOMP frames: commands, headers, the incremental parser and the encoder.
//!
//! The wire format follows the STOMP 1.2 specification ("Augmented BNF" section); versions
//! 1.0 and 1.1 differ only in header escaping, which [`Version`] selects.

mod encoder;
mod escape;
mod parser;

use std::fmt;

use bytes::Bytes;
pub use bytestring::ByteString;

pub use encoder::encode_into;
pub(crate) use encoder::{message_head, message_shared};
pub use escape::{EscapeError, escape_into, unescape};
pub use parser::{FrameError, Parsed, Parser};

/// A STOMP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no header escaping, no heart-beats, no NACK.
    V1_0,
    /// STOMP 1.1: escapes `\n`, `\c`, `\\`; heart-beats; NACK.
    V1_1,
    /// STOMP 1.2: also escapes `\r`; ACK/NACK by `id`; CRLF line ends.
    V1_2,
}

impl Version {
    /// Every version this crate speaks, lowest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// The version's name as used in `accept-version` and `version` headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Parses `"1.0"`, `"1.1"` or `"1.2"`.
    pub fn parse(s: &str) -> Option<Version> {
        match s.trim() {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }

    /// The WebSocket subprotocol naming this version (`v12.stomp`).
    pub fn subprotocol(self) -> &'static str {
        match self {
            Version::V1_0 => "v10.stomp",
            Version::V1_1 => "v11.stomp",
            Version::V1_2 => "v12.stomp",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A STOMP command, client or server side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Client: open a session.
    Connect,
    /// Client: open a session (1.1+ alias of CONNECT).
    Stomp,
    /// Server: the session is open.
    Connected,
    /// Client: send a message to a destination.
    Send,
    /// Client: subscribe to a destination.
    Subscribe,
    /// Client: end a subscription.
    Unsubscribe,
    /// Client: acknowledge a message.
    Ack,
    /// Client: reject a message (1.1+).
    Nack,
    /// Client: start a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: roll a transaction back.
    Abort,
    /// Client: close the session.
    Disconnect,
    /// Server: a message for a subscription.
    Message,
    /// Server: confirms a client frame that carried `receipt`.
    Receipt,
    /// Server: a protocol error; the connection closes after it.
    Error,
}

impl Command {
    /// The command as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Connected => "CONNECTED",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Parses a command line (without its end of line).
    pub fn from_bytes(b: &[u8]) -> Option<Command> {
        Some(match b {
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"CONNECTED" => Command::Connected,
            b"SEND" => Command::Send,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"DISCONNECT" => Command::Disconnect,
            b"MESSAGE" => Command::Message,
            b"RECEIPT" => Command::Receipt,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    /// CONNECT, STOMP and CONNECTED headers are never escaped (STOMP 1.2, "Value Encoding").
    pub fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }

    /// Whether the spec allows this frame to carry a body.
    pub fn allows_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Frame headers in wire order. Lookups return the first occurrence, as STOMP 1.2 requires
/// ("Repeated Header Entries").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    /// Parsed headers share the frame's bytes: no copy per header.
    entries: Vec<(ByteString, ByteString)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `n` headers.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
        }
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| &**v)
    }

    /// Appends a header (an earlier one of the same name still wins on lookup).
    pub fn push(&mut self, name: impl Into<ByteString>, value: impl Into<ByteString>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Replaces every `name` entry by one with `value`.
    pub fn set(&mut self, name: &str, value: impl Into<ByteString>) {
        self.entries.retain(|(k, _)| &**k != name);
        self.entries.push((ByteString::from(name), value.into()));
    }

    /// Removes every `name` entry and returns the first value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let mut first = None;
        self.entries.retain(|(k, v)| {
            if &**k == name {
                if first.is_none() {
                    first = Some(String::from(v.clone()));
                }
                false
            } else {
                true
            }
        });
        first
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|(k, _)| &**k == name)
    }

    /// The entries whose name `keep` accepts, sharing their bytes with these.
    pub fn filter(&self, keep: impl Fn(&str) -> bool) -> Headers {
        Headers {
            entries: self
                .entries
                .iter()
                .filter(|(k, _)| keep(k))
                .cloned()
                .collect(),
        }
    }

    /// The same headers in one allocation of their own (see [`Frame::detached`]).
    pub fn detached(&self) -> Headers {
        let total: usize = self.entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        let mut all = bytes::BytesMut::with_capacity(total);
        for (k, v) in &self.entries {
            all.extend_from_slice(k.as_bytes());
            all.extend_from_slice(v.as_bytes());
        }
        let all = all.freeze();
        let mut at = 0;
        let mut piece = |len: usize| {
            let text = ByteString::try_from(all.slice(at..at + len))
                .expect("a copy of UTF-8 text, cut at its own boundaries");
            at += len;
            text
        };
        Headers {
            entries: self
                .entries
                .iter()
                .map(|(k, v)| (piece(k.len()), piece(v.len())))
                .collect(),
        }
    }

    /// All entries in wire order, repeats included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The number of entries, repeats included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<ByteString>, V: Into<ByteString>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            entries: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// One STOMP frame.
///
/// ```
/// use stomp_runtime::frame::{Command, Frame, Version};
///
/// let frame = Frame::new(Command::Send)
///     .header("destination", "/topic/greetings")
///     .body("hello");
/// let wire = frame.encode(Version::V1_2);
/// assert!(wire.starts_with(b"SEND\ndestination:/topic/greetings\n"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The command.
    pub command: Command,
    /// The headers, unescaped.
    pub headers: Headers,
    /// The body (may hold NUL bytes when `content-length` was given).
    pub body: Bytes,
}

impl Frame {
    /// A frame with no headers and no body.
    pub fn new(command: Command) -> Self {
        Self {
            command,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: impl Into<ByteString>, value: impl Into<ByteString>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets the body (builder style).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of header `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Encodes the frame for `version`, adding `content-length` when the body is not empty
    /// and the header is absent.
    pub fn encode(&self, version: Version) -> Bytes {
        let mut out = bytes::BytesMut::with_capacity(64 + self.body.len());
        encode_into(self, version, &mut out);
        out.freeze()
    }

    /// The same frame in allocations of its own. A parsed frame's headers and body are
    /// slices of the buffer it was read into, which they keep alive whole; a frame held for
    /// long (in a transaction, a queue) should pin only its own bytes.
    pub fn detached(&self) -> Frame {
        Frame {
            command: self.command,
            headers: self.headers.detached(),
            body: Bytes::copy_from_slice(&self.body),
        }
    }

    /// An ERROR frame with a `message` header and a body that explains it.
    pub fn error(message: impl Into<String>, details: impl Into<String>) -> Self {
        let details: String = details.into();
        let message: String = message.into();
        let mut f = Frame::new(Command::Error).header("message", message);
        if !details.is_empty() {
            f = f.header("content-type", "text/plain");
            f.body = Bytes::from(details);
        }
        f
    }
}

#[cfg(test)]
mod tests;
