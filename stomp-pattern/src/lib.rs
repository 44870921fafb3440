//! Destination patterns, shared by the broker's subscriptions, the handler router and the
//! macros' compile-time checks, so that all three agree on what a pattern means.
//!
//! A destination is a sequence of segments separated by `/` or `.` (`/topic/rooms.lobby` has
//! the segments `topic`, `rooms` and `lobby`). In a pattern, a segment is literal text, `*`
//! (exactly one non-empty segment), `**` (zero or more non-empty segments, whatever
//! separates them) or, in handler routes, `{name}` (like `*`, captured under `name`).
//! Separators must agree position by position: `/topic/rooms.*` matches
//! `/topic/rooms.lobby` but not `/topic/rooms/lobby`. No wildcard matches an empty segment.
//!
//! A [`Pattern`] is compiled once; matching it costs time linear in the destination's
//! length, whatever the pattern (a bit set of pattern positions is stepped once per
//! segment: nothing backtracks). A [`PatternTrie`] indexes many patterns by their segments,
//! as RabbitMQ's topic exchange does, so a lookup visits only the patterns that can match.
//!
//! ```
//! use stomp_pattern::{Pattern, Syntax};
//!
//! let p = Pattern::parse("/chat.send.{room}", Syntax::Route).unwrap();
//! assert_eq!(p.captures("/chat.send.lobby").unwrap(), [("room", "lobby")]);
//! assert!(!p.matches("/chat.send."));
//!
//! let s = Pattern::parse("/topic/**/status", Syntax::Subscription).unwrap();
//! assert!(s.matches("/topic/gate1/door/status"));
//! assert!(!s.matches("/topic/gate1/door.status"));
//! ```

#![warn(missing_docs)]

mod matching;
mod parse;
mod trie;

pub use parse::{Limits, PatternError, Reason, Syntax};
pub use trie::PatternTrie;

/// The most segments a pattern may have, whatever the configured [`Limits`]: matching keeps
/// one bit per pattern position in a `u64`.
pub const MAX_SEGMENTS: usize = 63;

/// What separates a segment from the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Separator {
    /// The first segment of a destination that does not start with `/`.
    Start,
    /// `/`.
    Slash,
    /// `.`.
    Dot,
}

impl Separator {
    fn index(self) -> usize {
        self as usize
    }
}

/// One segment of a compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Text that must appear as the whole segment.
    Literal(String),
    /// `{name}`: one non-empty segment, captured.
    Variable(String),
    /// `*`: one non-empty segment.
    Star,
    /// `**`: zero or more non-empty segments, whatever separates them.
    DoubleStar,
}

impl Segment {
    /// Whether this segment accepts the destination segment `text` after `sep`, given that
    /// the pattern wrote `psep` before it. Not for `**`, which consumes any number.
    fn accepts(&self, psep: Separator, sep: Separator, text: &str) -> bool {
        psep == sep
            && match self {
                Segment::Literal(l) => l == text,
                Segment::Variable(_) | Segment::Star => !text.is_empty(),
                Segment::DoubleStar => false,
            }
    }
}

/// A compiled destination pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    source: String,
    /// Consecutive `**` are folded into one: they mean the same.
    segments: Vec<(Separator, Segment)>,
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

impl Pattern {
    /// Compiles `pattern` with the hard limits only ([`Limits::default`]).
    pub fn parse(pattern: &str, syntax: Syntax) -> Result<Self, PatternError> {
        Self::parse_with(pattern, syntax, &Limits::default())
    }

    /// Compiles `pattern`, refusing more segments or wildcards than `limits` allow.
    pub fn parse_with(
        pattern: &str,
        syntax: Syntax,
        limits: &Limits,
    ) -> Result<Self, PatternError> {
        parse::parse(pattern, syntax, limits)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled segments, each with the separator written before it.
    pub fn segments(&self) -> &[(Separator, Segment)] {
        &self.segments
    }

    /// The variable names, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|(_, s)| match s {
            Segment::Variable(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// The number of `*`, `**` and `{name}` segments.
    pub fn wildcards(&self) -> usize {
        self.segments
            .iter()
            .filter(|(_, s)| !matches!(s, Segment::Literal(_)))
            .count()
    }

    /// Whether the pattern has no wildcard or variable: it matches only its own text.
    pub fn is_exact(&self) -> bool {
        self.wildcards() == 0
    }

    /// Whether `destination` matches.
    pub fn matches(&self, destination: &str) -> bool {
        matching::matches(&self.segments, destination)
    }

    /// The variables captured from `destination` (name, value), in pattern order, or `None`
    /// when it does not match. Where `**` makes a match ambiguous, each `**` takes as few
    /// segments as it can, leftmost first.
    pub fn captures<'p, 'd>(&'p self, destination: &'d str) -> Option<Vec<(&'p str, &'d str)>> {
        matching::captures(&self.segments, destination)
    }
}

/// Whether `destination` is a subscription pattern: whether a segment is `*` or `**`.
///
/// ```
/// assert!(stomp_pattern::is_pattern("/topic/rooms.*"));
/// assert!(!stomp_pattern::is_pattern("/topic/rooms.a*"));
/// ```
pub fn is_pattern(destination: &str) -> bool {
    tokens(destination).any(|(_, s)| s == "*" || s == "**")
}

/// Splits a destination into its segments, each with the separator before it.
///
/// ```
/// use stomp_pattern::{Separator, tokens};
///
/// let t: Vec<_> = tokens("/a.b").collect();
/// assert_eq!(t, [(Separator::Slash, "a"), (Separator::Dot, "b")]);
/// ```
pub fn tokens(destination: &str) -> Tokens<'_> {
    let (sep, rest) = match destination.strip_prefix('/') {
        Some(rest) => (Separator::Slash, rest),
        None => (Separator::Start, destination),
    };
    Tokens {
        rest: Some(rest),
        sep,
    }
}

/// The iterator of [`tokens`].
#[derive(Clone, Debug)]
pub struct Tokens<'a> {
    rest: Option<&'a str>,
    sep: Separator,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = (Separator, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest?;
        let sep = self.sep;
        match rest.find(['/', '.']) {
            Some(i) => {
                self.sep = if rest.as_bytes()[i] == b'/' {
                    Separator::Slash
                } else {
                    Separator::Dot
                };
                self.rest = Some(&rest[i + 1..]);
                Some((sep, &rest[..i]))
            }
            None => {
                self.rest = None;
                Some((sep, rest))
            }
        }
    }
}
