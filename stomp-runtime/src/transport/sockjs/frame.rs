//! SockJS framing: the frames the server sends (`o`, `h`, `a[...]`, `c[code,"reason"]`), the
//! JSON string quoting the protocol requires, and the decoding of what clients send.

use serde::Deserialize;

/// The open frame, sent once when a session is established.
pub(crate) const OPEN: &str = "o";
/// The heart-beat frame, sent when nothing else was for the heart-beat interval.
pub(crate) const HEARTBEAT: &str = "h";

/// Whether the server must send `c` as a `\uXXXX` escape.
///
/// The ranges are those of sockjs-protocol 0.3.3 ("JSON Unicode Encoding",
/// `escapable_by_server`): control characters, and characters that browsers or proxies
/// mangle or drop (zero-width joiners, line and paragraph separators, invisible operators,
/// specials). Surrogates cannot occur in a Rust string.
fn escapable(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{200c}'..='\u{200f}'
        | '\u{2028}'..='\u{202f}'
        | '\u{2060}'..='\u{206f}'
        | '\u{fff0}'..='\u{ffff}')
}

/// Appends `s` as a JSON string literal, escaping what the protocol requires.
///
/// The short escapes (`\n`, `\r`, `\t`, `\b`, `\f`) are used where JSON has them and
/// `\u00xx` (lower-case hex) otherwise, as browsers' `JSON.stringify` writes them, so a
/// client that compares bytes sees what it expects.
pub(crate) fn quote_into(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            _ => None,
        };
        if short.is_none() && !escapable(c) {
            continue;
        }
        out.push_str(&s[start..i]);
        start = i + c.len_utf8();
        match short {
            Some(esc) => out.push_str(esc),
            None => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
        }
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `s` as a JSON string literal (see [`quote_into`]).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::new();
    quote_into(s, &mut out);
    out
}

/// The message frame `a[...]` carrying `messages`, in order.
pub(crate) fn messages<'a>(messages: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("a[");
    for (i, m) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote_into(m, &mut out);
    }
    out.push(']');
    out
}

/// The close frame `c[code,"reason"]`.
pub(crate) fn close(code: u16, reason: &str) -> String {
    let mut out = format!("c[{code},");
    quote_into(reason, &mut out);
    out.push(']');
    out
}

/// Why a client's payload was refused; the texts are the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PayloadError {
    /// Nothing was sent.
    #[error("Payload expected.")]
    Empty,
    /// The payload is not JSON, or not a string or an array of strings.
    #[error("Broken JSON encoding.")]
    BrokenJson,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Incoming {
    Many(Vec<String>),
    One(String),
}

/// Decodes what a client sent: a JSON array of strings (HTTP transports) or, over
/// WebSocket, also a single JSON string.
pub(crate) fn decode(payload: &[u8], single_allowed: bool) -> Result<Vec<String>, PayloadError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(PayloadError::Empty);
    }
    match serde_json::from_slice::<Incoming>(payload) {
        Ok(Incoming::Many(list)) => Ok(list),
        Ok(Incoming::One(one)) if single_allowed => Ok(vec![one]),
        _ => Err(PayloadError::BrokenJson),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_protocol_shape() {
        assert_eq!(messages(["a", "b\"c"]), r#"a["a","b\"c"]"#);
        assert_eq!(messages(std::iter::empty()), "a[]");
        assert_eq!(close(3000, "Go away!"), r#"c[3000,"Go away!"]"#);
        assert_eq!(
            close(2010, "Another connection still open"),
            r#"c[2010,"Another connection still open"]"#
        );
    }

    #[test]
    fn control_characters_use_json_stringify_escapes() {
        assert_eq!(quote("  \u{0}\n\r "), r#""  \u0000\n\r ""#);
        assert_eq!(quote("\u{1f}\t\u{8}\u{c}\\"), r#""\u001f\t\b\f\\""#);
    }

    #[test]
    fn every_character_the_protocol_names_is_escaped_and_no_other() {
        for n in 0u32..=0xffff {
            let Some(c) = char::from_u32(n) else { continue };
            let quoted = quote(&c.to_string());
            let must = escapable(c) || c == '"' || c == '\\';
            assert_eq!(quoted.len() > c.len_utf8() + 2, must, "U+{n:04X}: {quoted}");
            if escapable(c) && !matches!(c, '\n' | '\r' | '\t' | '\u{8}' | '\u{c}') {
                assert_eq!(quoted, format!("\"\\u{n:04x}\""));
            }
            // What we write, JSON reads back as the same character.
            let back: String = serde_json::from_str(&quoted).expect("valid JSON");
            assert_eq!(back, c.to_string());
        }
    }

    #[test]
    fn payloads_decode_or_say_why_not() {
        assert_eq!(
            decode(br#"["a","b"]"#, false),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(decode(br#""a""#, true), Ok(vec!["a".into()]));
        assert_eq!(decode(br#""a""#, false), Err(PayloadError::BrokenJson));
        assert_eq!(decode(br#"["x"#, false), Err(PayloadError::BrokenJson));
        assert_eq!(decode(br#"[1]"#, false), Err(PayloadError::BrokenJson));
        assert_eq!(decode(b"", false), Err(PayloadError::Empty));
        assert_eq!(decode(b" \n", false), Err(PayloadError::Empty));
        assert_eq!(
            decode(br#"["\u200c\ufff0 \"q\""]"#, false),
            Ok(vec!["\u{200c}\u{fff0} \"q\"".into()])
        );
    }
}
