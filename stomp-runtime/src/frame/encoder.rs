//! Frame encoding.

use bytes::{BufMut, BytesMut};

use super::{Frame, Version, escape::escape_into};

/// Appends `frame`, encoded for `version`, to `out`.
///
/// Header names and values are escaped unless the command is CONNECT, STOMP or CONNECTED
/// or the version is 1.0; unescaped, a name holding `:` or LF is left out and a LF in a value
/// is written as a space, since neither can be carried.
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
        if escape == Version::V1_0 {
            // Unescaped, a LF would end the line early and a colon in the name would move
            // the split, so peer-supplied text could pose as other headers (a first-wins
            // `content-length`, say): drop such names, and write a LF in a value as a space.
            if name.contains([':', '\n']) {
                tracing::warn!(
                    command = %frame.command,
                    header = ?name,
                    "header name cannot be sent unescaped; dropped"
                );
                continue;
            }
            head.extend_from_slice(name.as_bytes());
            head.push(b':');
            head.extend(value.bytes().map(|b| if b == b'\n' { b' ' } else { b }));
            head.push(b'\n');
            continue;
        }
        escape_into(name, escape, &mut head);
        head.push(b':');
        escape_into(value, escape, &mut head);
        head.push(b'\n');
    }
    if !frame.body.is_empty() && !frame.headers.contains("content-length") {
        head.extend_from_slice(b"content-length:");
        head.extend_from_slice(itoa_usize(frame.body.len()).as_bytes());
        head.push(b'\n');
    }
    head.push(b'\n');
    out.reserve(head.len() + frame.body.len() + 1);
    out.put_slice(&head);
    out.put_slice(&frame.body);
    out.put_u8(0);
}

fn itoa_usize(n: usize) -> String {
    n.to_string()
}
