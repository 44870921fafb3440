//! Application destination patterns with variables: `/chat.send.{room}`, `*`, `**`;
//! `/` and `.` both separate segments.
//!
//! `stomp-derive` checks patterns with the same rules at compile time.

use std::fmt;

use crate::broker::pattern::split;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Var(String),
    Star,
    DoubleStar,
}

/// Why a pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid destination pattern `{pattern}`: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A compiled destination pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    source: String,
    /// (separator before, segment)
    segments: Vec<(char, Segment)>,
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl RoutePattern {
    /// Compiles `pattern`.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let err = |reason: String| PatternError {
            pattern: pattern.to_owned(),
            reason,
        };
        if pattern.is_empty() {
            return Err(err("the pattern is empty".into()));
        }
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for (sep, seg) in split(pattern) {
            let s = if seg == "*" {
                Segment::Star
            } else if seg == "**" {
                Segment::DoubleStar
            } else if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(err(format!("`{{{name}}}` is not a valid variable name")));
                }
                if names.contains(&name) {
                    return Err(err(format!("variable `{name}` appears twice")));
                }
                names.push(name);
                Segment::Var(name.to_owned())
            } else if seg.is_empty() {
                return Err(err("empty segment (two separators in a row)".into()));
            } else if seg.contains(['{', '}', '*']) {
                return Err(err(format!(
                    "segment `{seg}` mixes text with `{{`, `}}` or `*`; a variable or wildcard must be a whole segment"
                )));
            } else {
                Segment::Literal(seg.to_owned())
            };
            segments.push((sep, s));
        }
        Ok(Self {
            source: pattern.to_owned(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The variable names, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|(_, s)| match s {
            Segment::Var(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Matches `destination`, returning the captured variables.
    pub fn matches(&self, destination: &str) -> Option<Vec<(String, String)>> {
        let d = split(destination);
        let mut vars = Vec::new();
        match_from(&self.segments, &d, &mut vars).then_some(vars)
    }

    /// Whether the pattern has no variables or wildcards.
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|(_, s)| matches!(s, Segment::Literal(_)))
    }
}

fn match_from(p: &[(char, Segment)], d: &[(char, &str)], vars: &mut Vec<(String, String)>) -> bool {
    let Some(((sep, seg), rest)) = p.split_first() else {
        return d.is_empty();
    };
    if *seg == Segment::DoubleStar {
        return (0..=d.len()).any(|k| {
            let mark = vars.len();
            let ok = match_from(rest, &d[k..], vars);
            if !ok {
                vars.truncate(mark);
            }
            ok
        });
    }
    let Some(((dsep, dseg), drest)) = d.split_first() else {
        return false;
    };
    if sep != dsep {
        return false;
    }
    match seg {
        Segment::Literal(l) if l == dseg => match_from(rest, drest, vars),
        Segment::Star if !dseg.is_empty() => match_from(rest, drest, vars),
        Segment::Var(name) if !dseg.is_empty() => {
            vars.push((name.clone(), (*dseg).to_owned()));
            let ok = match_from(rest, drest, vars);
            if !ok {
                vars.pop();
            }
            ok
        }
        _ => false,
    }
}

/// Fills `{var}` placeholders of a destination template.
pub(crate) fn fill(template: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                let name = &rest[open + 1..open + close];
                match vars.iter().find(|(k, _)| k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[open..=open + close]),
                }
                rest = &rest[open + close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_variables_across_both_separators() {
        let p = RoutePattern::parse("/chat.send.{room}").unwrap();
        assert_eq!(
            p.matches("/chat.send.lobby"),
            Some(vec![("room".into(), "lobby".into())])
        );
        assert_eq!(p.matches("/chat.send"), None);
        assert_eq!(p.matches("/chat/send/lobby"), None);
        let p = RoutePattern::parse("/gate/{id}/open").unwrap();
        assert_eq!(
            p.matches("/gate/7/open"),
            Some(vec![("id".into(), "7".into())])
        );
    }

    #[test]
    fn wildcards() {
        let p = RoutePattern::parse("/payment.**").unwrap();
        assert!(p.matches("/payment.card.visa").is_some());
        assert!(p.matches("/payment").is_some());
        let p = RoutePattern::parse("/a/*/c").unwrap();
        assert!(p.matches("/a/b/c").is_some());
        assert!(p.matches("/a/b/x/c").is_none());
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in [
            "", "/a/{}", "/a/{x", "/a/x{y}", "/a//b", "/{a}.{a}", "/a/b*",
        ] {
            assert!(RoutePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fill_replaces_known_placeholders() {
        let vars = vec![("room".to_owned(), "lobby".to_owned())];
        assert_eq!(fill("/topic/rooms.{room}", &vars), "/topic/rooms.lobby");
    }
}
