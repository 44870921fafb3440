//! Destination patterns: `*` matches one segment, `**` any number of segments; `/` and `.`
//! both separate segments (`/topic/rooms.*`, `/topic/**`).

/// Whether `destination` contains a wildcard segment.
pub fn is_pattern(destination: &str) -> bool {
    segments(destination).any(|s| s == "*" || s == "**")
}

/// Whether `destination` matches `pattern`. Separators must agree position by position.
pub fn matches(pattern: &str, destination: &str) -> bool {
    let p: Vec<(char, &str)> = tokens(pattern).collect();
    let d: Vec<(char, &str)> = tokens(destination).collect();
    match_tokens(&p, &d)
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

/// Splits into (separator-before, segment) pairs; the first separator is `\0` when the
/// destination does not start with one.
fn tokens(s: &str) -> impl Iterator<Item = (char, &str)> {
    let mut rest = s;
    let mut out = Vec::new();
    let mut sep = '\0';
    if let Some(stripped) = rest.strip_prefix('/') {
        sep = '/';
        rest = stripped;
    }
    loop {
        match rest.find(['/', '.']) {
            Some(i) => {
                out.push((sep, &rest[..i]));
                sep = rest[i..].chars().next().unwrap_or('/');
                rest = &rest[i + 1..];
            }
            None => {
                out.push((sep, rest));
                break;
            }
        }
    }
    out.into_iter()
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
