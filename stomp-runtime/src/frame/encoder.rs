//! Frame encoding. Every header line the server writes, in any frame and any version, goes
//! through [`header_line`], so what a version cannot carry is handled in one place.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Frame, Headers, Version, escape::escape_into};

/// Appends `frame`, encoded for `version`, to `out`.
///
/// Header names and values are escaped unless the command is CONNECT, STOMP or CONNECTED
/// or the version is 1.0. Text a frame cannot carry never reaches the wire raw: unescaped,
/// a name holding `:`, LF, CR or NUL is left out and a LF, CR or NUL in a value is written as
/// a space; escaped, a name holding NUL is left out and a NUL in a value is written as a
/// space (STOMP has no escape for NUL, and clients end frames at it).
/// `content-length` is added when the body is not empty and the frame does not already
/// carry one, so bodies may hold NUL bytes.
pub fn encode_into(frame: &Frame, version: Version, out: &mut BytesMut) {
    let escape = if frame.command.escapes_headers() {
        version
    } else {
        Version::V1_0
    };
    let mut head: Vec<u8> = Vec::with_capacity(128);
    head.extend_from_slice(frame.command.as_str().as_bytes());
    head.push(b'\n');
    for (name, value) in frame.headers.iter() {
        header_line(name, value, escape, &mut head);
    }
    if !frame.body.is_empty() && !frame.headers.contains("content-length") {
        header_line(
            "content-length",
            &frame.body.len().to_string(),
            escape,
            &mut head,
        );
    }
    head.push(b'\n');
    out.reserve(head.len() + frame.body.len() + 1);
    out.put_slice(&head);
    out.put_slice(&frame.body);
    out.put_u8(0);
}

/// Appends the line `name:value\n`, escaped by `escape`'s rules (1.0: none). Returns
/// whether it was written: a name the rules cannot carry is left out, with a warning,
/// rather than allowed to end the line early or move the colon, which would let
/// peer-supplied text pose as other headers (a first-wins `content-length`, say).
pub(crate) fn header_line(name: &str, value: &str, escape: Version, out: &mut Vec<u8>) -> bool {
    let unescaped = escape == Version::V1_0;
    let unsafe_name = if unescaped {
        name.contains([':', '\n', '\r', '\0'])
    } else {
        name.contains('\0')
    };
    if unsafe_name {
        tracing::warn!(header = ?name, "header name cannot be carried; dropped");
        return false;
    }
    escape_into(name, escape, out);
    out.push(b':');
    if unescaped {
        out.extend(value.bytes().map(|b| match b {
            b'\n' | b'\r' | 0 => b' ',
            b => b,
        }));
    } else if value.contains('\0') {
        escape_into(&value.replace('\0', " "), escape, out);
    } else {
        escape_into(value, escape, out);
    }
    out.push(b'\n');
    true
}

/// The start of a MESSAGE frame that differs per subscription: the command, `subscription`
/// and, for acknowledged subscriptions in 1.2, `ack`.
pub(crate) fn message_head(subscription: &str, ack: Option<u64>, version: Version) -> Bytes {
    let mut head = Vec::with_capacity(40 + subscription.len());
    head.extend_from_slice(b"MESSAGE\n");
    header_line("subscription", subscription, version, &mut head);
    if let Some(id) = ack {
        header_line("ack", &id.to_string(), version, &mut head);
    }
    Bytes::from(head)
}

/// The rest of a MESSAGE frame, shared by every subscriber: `destination`, `message-id`,
/// `content-type`, `content-length`, the sender's `headers`, the blank line, the body and
/// the NUL. [`message_head`] followed by this is the frame [`encode_into`] writes for the same
/// headers in the same order.
pub(crate) fn message_shared(
    destination: &str,
    message_id: &str,
    content_type: Option<&str>,
    headers: &Headers,
    body: &[u8],
    version: Version,
) -> Bytes {
    let mut head = Vec::with_capacity(128);
    header_line("destination", destination, version, &mut head);
    header_line("message-id", message_id, version, &mut head);
    if let Some(ct) = content_type {
        header_line("content-type", ct, version, &mut head);
    }
    header_line(
        "content-length",
        &body.len().to_string(),
        version,
        &mut head,
    );
    for (k, v) in headers.iter() {
        header_line(k, v, version, &mut head);
    }
    let mut out = BytesMut::with_capacity(head.len() + body.len() + 2);
    out.put_slice(&head);
    out.put_u8(b'\n');
    out.put_slice(body);
    out.put_u8(0);
    out.freeze()
}
