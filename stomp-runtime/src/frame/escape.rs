//! Header value escaping (STOMP 1.2 "Value Encoding"; 1.1 lacks `\r`; 1.0 has none).

use super::Version;

/// A backslash sequence the frame's version does not define; a fatal protocol error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undefined escape sequence `\\{found}` in header")]
pub struct EscapeError {
    /// The character after the backslash (`'\0'` when the value ended there).
    pub found: char,
}

/// Unescapes a raw header name or value for `version`.
pub fn unescape(raw: &str, version: Version) -> Result<String, EscapeError> {
    if version == Version::V1_0 || !raw.contains('\\') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            Some('r') if version == Version::V1_2 => out.push('\r'),
            Some(other) => return Err(EscapeError { found: other }),
            None => return Err(EscapeError { found: '\0' }),
        }
    }
    Ok(out)
}

/// Appends `value` to `out`, escaped for `version`.
pub fn escape_into(value: &str, version: Version, out: &mut Vec<u8>) {
    if version == Version::V1_0 {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    for b in value.bytes() {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b':' => out.extend_from_slice(b"\\c"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\r' if version == Version::V1_2 => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v12_round_trips_every_special_character() {
        let v = "a:b\nc\\d\re";
        let mut out = Vec::new();
        escape_into(v, Version::V1_2, &mut out);
        assert_eq!(out, b"a\\cb\\nc\\\\d\\re");
        assert_eq!(
            unescape(std::str::from_utf8(&out).unwrap(), Version::V1_2).unwrap(),
            v
        );
    }

    #[test]
    fn v11_has_no_carriage_return_escape() {
        assert_eq!(
            unescape("x\\ry", Version::V1_1),
            Err(EscapeError { found: 'r' })
        );
        let mut out = Vec::new();
        escape_into("a\rb", Version::V1_1, &mut out);
        assert_eq!(out, b"a\rb");
    }

    #[test]
    fn v10_leaves_backslashes_alone() {
        assert_eq!(unescape("a\\tb", Version::V1_0).unwrap(), "a\\tb");
        let mut out = Vec::new();
        escape_into("a:b\\", Version::V1_0, &mut out);
        assert_eq!(out, b"a:b\\");
    }

    #[test]
    fn undefined_and_dangling_escapes_are_errors() {
        assert_eq!(
            unescape("\\t", Version::V1_2),
            Err(EscapeError { found: 't' })
        );
        assert_eq!(
            unescape("abc\\", Version::V1_1),
            Err(EscapeError { found: '\0' })
        );
    }
}
