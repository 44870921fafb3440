//! Destination patterns of subscriptions: `*` matches one non-empty segment, `**` any number
//! of them; `/` and `.` both separate segments (`/topic/rooms.*`, `/topic/**`).
//!
//! The rules and the compiled [`Pattern`] are `stomp_pattern`'s, shared with the handler
//! router and the macros; this module names them for brokers.

pub use stomp_pattern::{
    Limits, MAX_SEGMENTS, Pattern, PatternError, PatternTrie, Reason, Segment, Separator, Syntax,
    is_pattern, tokens,
};

/// Compiles a subscription's destination pattern within `limits`.
pub fn compile(destination: &str, limits: &Limits) -> Result<Pattern, PatternError> {
    Pattern::parse_with(destination, Syntax::Subscription, limits)
}

/// Whether `destination` matches the subscription pattern `pattern` (compiled on each call:
/// for one-off checks; keep the [`Pattern`] when matching often). A pattern that does not
/// compile matches nothing.
pub fn matches(pattern: &str, destination: &str) -> bool {
    Pattern::parse(pattern, Syntax::Subscription).is_ok_and(|p| p.matches(destination))
}

/// Splits a destination into (separator before, segment) pairs; the first separator is
/// `\0` when the destination does not start with `/`.
pub(crate) fn split(s: &str) -> Vec<(char, &str)> {
    tokens(s)
        .map(|(sep, seg)| {
            let c = match sep {
                Separator::Start => '\0',
                Separator::Slash => '/',
                Separator::Dot => '.',
            };
            (c, seg)
        })
        .collect()
}
