//! Compiling a pattern: the syntax rules and the limits.

use std::fmt;

use crate::{MAX_SEGMENTS, Pattern, Segment, tokens};

/// Which rules a pattern is written under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// Handler routes (`#[message_mapping("/chat.send.{room}")]`): a segment is literal text,
    /// `{name}`, `*` or `**`; `{`, `}` and `*` may not appear inside literal text.
    Route,
    /// Broker subscriptions (`/topic/rooms.*`): a segment is `*`, `**` or literal text, in
    /// which `{`, `}` and `*` are ordinary characters.
    Subscription,
}

/// How large a pattern may be. [`MAX_SEGMENTS`] bounds both, whatever is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most segments, wildcards included.
    pub max_segments: usize,
    /// Most `*`, `**` and `{name}` segments.
    pub max_wildcards: usize,
}

impl Default for Limits {
    /// The hard bound, [`MAX_SEGMENTS`], for both.
    fn default() -> Self {
        Self {
            max_segments: MAX_SEGMENTS,
            max_wildcards: MAX_SEGMENTS,
        }
    }
}

/// What is wrong with a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The pattern is the empty string.
    Empty,
    /// Two separators in a row, or one at the end.
    EmptySegment,
    /// `{}` or a name with characters other than letters, digits and `_`.
    InvalidVariable(String),
    /// The same `{name}` twice.
    DuplicateVariable(String),
    /// A segment mixing text with `{`, `}` or `*`.
    MixedSegment(String),
    /// More segments than allowed.
    TooManySegments {
        /// Segments in the pattern.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More wildcards than allowed.
    TooManyWildcards {
        /// Wildcards in the pattern.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Empty => f.write_str("the pattern is empty"),
            Reason::EmptySegment => f.write_str("empty segment (two separators in a row)"),
            Reason::InvalidVariable(name) => {
                write!(f, "`{{{name}}}` is not a valid variable name")
            }
            Reason::DuplicateVariable(name) => write!(f, "variable `{name}` appears twice"),
            Reason::MixedSegment(seg) => write!(
                f,
                "segment `{seg}` mixes text with `{{`, `}}` or `*`; a variable or wildcard must be a whole segment"
            ),
            Reason::TooManySegments { count, max } => {
                write!(f, "{count} segments exceed the limit of {max}")
            }
            Reason::TooManyWildcards { count, max } => {
                write!(f, "{count} wildcards exceed the limit of {max}")
            }
        }
    }
}

/// Why a pattern does not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: Reason,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid destination pattern `{}`: {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for PatternError {}

pub(crate) fn parse(
    pattern: &str,
    syntax: Syntax,
    limits: &Limits,
) -> Result<Pattern, PatternError> {
    let err = |reason| PatternError {
        pattern: pattern.to_owned(),
        reason,
    };
    if pattern.is_empty() {
        return Err(err(Reason::Empty));
    }
    let max_segments = limits.max_segments.min(MAX_SEGMENTS);
    let max_wildcards = limits.max_wildcards.min(MAX_SEGMENTS);
    let mut segments: Vec<(crate::Separator, Segment)> = Vec::new();
    let mut count = 0;
    let mut wildcards = 0;
    for (sep, text) in tokens(pattern) {
        count += 1;
        if count > max_segments {
            // Counted to the end, so the client learns how far over it is; cheap, since
            // tokens only scan.
            let count = tokens(pattern).count();
            return Err(err(Reason::TooManySegments {
                count,
                max: max_segments,
            }));
        }
        let segment = match text {
            "" => return Err(err(Reason::EmptySegment)),
            "*" => Segment::Star,
            "**" => Segment::DoubleStar,
            _ if syntax == Syntax::Subscription => Segment::Literal(text.to_owned()),
            _ => match text.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        return Err(err(Reason::InvalidVariable(name.to_owned())));
                    }
                    if segments
                        .iter()
                        .any(|(_, s)| matches!(s, Segment::Variable(n) if n == name))
                    {
                        return Err(err(Reason::DuplicateVariable(name.to_owned())));
                    }
                    Segment::Variable(name.to_owned())
                }
                None if text.contains(['{', '}', '*']) => {
                    return Err(err(Reason::MixedSegment(text.to_owned())));
                }
                None => Segment::Literal(text.to_owned()),
            },
        };
        if !matches!(segment, Segment::Literal(_)) {
            wildcards += 1;
            if wildcards > max_wildcards {
                return Err(err(Reason::TooManyWildcards {
                    count: tokens(pattern)
                        .filter(|(_, t)| {
                            *t == "*"
                                || *t == "**"
                                || (syntax == Syntax::Route && t.starts_with('{'))
                        })
                        .count(),
                    max: max_wildcards,
                }));
            }
        }
        let folds = segment == Segment::DoubleStar
            && matches!(segments.last(), Some((_, Segment::DoubleStar)));
        if !folds {
            segments.push((sep, segment));
        }
    }
    Ok(Pattern {
        source: pattern.to_owned(),
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(p: &str, syntax: Syntax, limits: &Limits) -> Reason {
        Pattern::parse_with(p, syntax, limits).expect_err(p).reason
    }

    #[test]
    fn malformed_routes_are_refused_with_the_reason() {
        let l = Limits::default();
        assert_eq!(reason("", Syntax::Route, &l), Reason::Empty);
        assert_eq!(reason("/a//b", Syntax::Route, &l), Reason::EmptySegment);
        assert_eq!(
            reason("/a/", Syntax::Subscription, &l),
            Reason::EmptySegment
        );
        assert_eq!(
            reason("/a/{}", Syntax::Route, &l),
            Reason::InvalidVariable(String::new())
        );
        assert_eq!(
            reason("/{a}.{a}", Syntax::Route, &l),
            Reason::DuplicateVariable("a".into())
        );
        for mixed in ["/a/{x", "/a/x{y}", "/a/b*"] {
            assert!(matches!(
                reason(mixed, Syntax::Route, &l),
                Reason::MixedSegment(_)
            ));
        }
    }

    #[test]
    fn subscriptions_read_braces_and_inner_stars_as_text() {
        let p = Pattern::parse("/topic/{x}.a*b.*", Syntax::Subscription).unwrap();
        assert!(p.matches("/topic/{x}.a*b.c"));
        assert_eq!(p.wildcards(), 1);
    }

    #[test]
    fn limits_count_what_was_written() {
        let l = Limits {
            max_segments: 4,
            max_wildcards: 2,
        };
        assert_eq!(
            reason("/a/b/c/d/e/f", Syntax::Subscription, &l),
            Reason::TooManySegments { count: 6, max: 4 }
        );
        assert_eq!(
            reason("/a/**/**/*", Syntax::Subscription, &l),
            Reason::TooManyWildcards { count: 3, max: 2 }
        );
        let hard = "/a".repeat(MAX_SEGMENTS + 1);
        assert!(matches!(
            reason(
                &hard,
                Syntax::Subscription,
                &Limits {
                    max_segments: usize::MAX,
                    max_wildcards: 1
                }
            ),
            Reason::TooManySegments {
                max: MAX_SEGMENTS,
                ..
            }
        ));
    }

    #[test]
    fn consecutive_double_stars_fold() {
        let p = Pattern::parse("/a/**/**.**/b", Syntax::Subscription).unwrap();
        assert_eq!(p.segments().len(), 3);
        assert!(p.matches("/a/x.y/b"));
        assert!(p.matches("/a/b"));
    }
}
