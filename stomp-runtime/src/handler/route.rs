//! Application destination patterns with variables: `/chat.send.{room}`, `*`, `**`;
//! `/` and `.` both separate segments.
//!
//! The rules are `stomp_pattern`'s, which `stomp-derive` applies at compile time too.

use std::fmt;

use stomp_pattern::{Pattern, Syntax};

pub use stomp_pattern::PatternError;

/// A compiled handler destination pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern(Pattern);

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl RoutePattern {
    /// Compiles `pattern`.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        Pattern::parse(pattern, Syntax::Route).map(Self)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The variable names, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.0.variables()
    }

    /// Matches `destination` (in time linear in its length), returning the captured
    /// variables.
    pub fn matches(&self, destination: &str) -> Option<Vec<(String, String)>> {
        self.0.captures(destination).map(|vars| {
            vars.into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
    }

    /// Whether the pattern has no variables or wildcards.
    pub fn is_exact(&self) -> bool {
        self.0.is_exact()
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
        assert!(
            p.matches("/a//c").is_none(),
            "`*` never matches an empty segment"
        );
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
