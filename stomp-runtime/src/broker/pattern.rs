//! Destination patterns: `*` matches one segment, `**` any number of segments; `/` and `.`
//! both separate segments (`/topic/rooms.*`, `/topic/**`).

/// Whether `destination` contains a wildcard segment.
pub fn is_pattern(destination: &str) -> bool {
    segments(destination).any(|s| s == "*" || s == "**")
}

/// Whether `destination` matches `pattern`. Separators must agree position by position.
pub fn matches(pattern: &str, destination: &str) -> bool {
    match_tokens(&split(pattern), &split(destination))
}

fn match_tokens(p: &[(char, &str)], d: &[(char, &str)]) -> bool {
    match p.split_first() {
        None => d.is_empty(),
        // `**` swallows zero or more whole segments.
        Some((&(_, "**"), rest)) => (0..=d.len()).any(|k| match_tokens(rest, &d[k..])),
        Some((&(sep, seg), rest)) => match d.split_first() {
            Some((&(dsep, dseg), _)) if dsep == sep && (seg == "*" || seg == dseg) => {
                match_tokens(rest, &d[1..])
            }
            _ => false,
        },
    }
}

/// Splits a destination into (separator before, segment) pairs; the first separator is
/// `\0` when the destination does not start with `/`. Shared with the handler routes.
pub(crate) fn split(s: &str) -> Vec<(char, &str)> {
    let mut out = Vec::new();
    let mut sep = '\0';
    let mut rest = s;
    if let Some(r) = rest.strip_prefix('/') {
        sep = '/';
        rest = r;
    }
    loop {
        match rest.find(['/', '.']) {
            Some(i) => {
                out.push((sep, &rest[..i]));
                sep = if rest.as_bytes()[i] == b'/' { '/' } else { '.' };
                rest = &rest[i + 1..];
            }
            None => {
                out.push((sep, rest));
                return out;
            }
        }
    }
}

fn segments(s: &str) -> impl Iterator<Item = &str> {
    s.split(['/', '.'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_star_matches_one_segment() {
        assert!(matches("/topic/rooms.*", "/topic/rooms.lobby"));
        assert!(!matches("/topic/rooms.*", "/topic/rooms.lobby.x"));
        assert!(!matches("/topic/rooms.*", "/topic/rooms"));
        assert!(matches("/topic/*/status", "/topic/gate1/status"));
    }

    #[test]
    fn double_star_matches_any_depth() {
        assert!(matches("/topic/**", "/topic/a"));
        assert!(matches("/topic/**", "/topic/a/b.c"));
        assert!(matches("/topic/**", "/topic"));
        assert!(matches("/topic/**/status", "/topic/a/b/status"));
        assert!(matches("/topic/**/status", "/topic/status"));
        assert!(!matches("/topic/**", "/queue/a"));
    }

    #[test]
    fn exact_destinations_match_themselves_only() {
        assert!(matches("/topic/a", "/topic/a"));
        assert!(!matches("/topic/a", "/topic/ab"));
        assert!(!matches("/topic/a.b", "/topic/a/b"));
        assert!(!is_pattern("/topic/a.b"));
        assert!(is_pattern("/topic/a.*"));
    }
}
