//! Pointcuts: which handlers an advice applies to, decided once when the server is built.

use crate::broker::pattern::split;
use crate::handler::HandlerDef;

/// A marker a handler declares (`#[message_mapping("/pay", tags = [AUDITED])]`) and a
/// pointcut selects (`#[around(tag(AUDITED))]`), as Spring's `@annotation(...)` pointcuts.
///
/// Tags are constants, so a misspelled tag is a compile error rather than an advice that
/// silently applies to nothing:
///
/// ```
/// use stomp_runtime::advice::Tag;
///
/// pub const AUDITED: Tag = Tag::new("audited");
/// assert_eq!(AUDITED.name(), "audited");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    name: &'static str,
}

impl Tag {
    /// A tag named `name`; tags with the same name are the same tag.
    pub const fn new(name: &'static str) -> Self {
        Self { name }
    }

    /// The tag's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

/// Which handlers an advice or exception handler applies to.
///
/// Written in the attributes as a destination pattern (`"/payment.**"`), `handler("payments::*")`,
/// `tag(AUDITED)`, or `any(...)`, `all(...)`, `not(...)` of those.
#[derive(Debug, Clone, Copy)]
pub enum Pointcut {
    /// Every handler.
    Every,
    /// Handlers whose destination pattern (without the application prefix) the given
    /// pattern covers: `*` stands for one segment (or one `{var}`), `**` for any number;
    /// `/` and `.` separate segments. `"/payment.**"` selects `/payment.pay` and
    /// `/payment.{id}.refund`.
    Destination(&'static str),
    /// Handlers whose path (`crate::module::function`) ends with the given `::`-separated
    /// segments; `*` stands for one segment, `**` for any number. `"payments::*"` selects
    /// `app::payments::pay` and `app::api::payments::refund`.
    Handler(&'static str),
    /// Handlers that declare the tag.
    Tag(Tag),
    /// Handlers any of the pointcuts select.
    Any(&'static [Pointcut]),
    /// Handlers all of the pointcuts select.
    All(&'static [Pointcut]),
    /// Handlers the pointcut does not select.
    Not(&'static Pointcut),
}

impl Pointcut {
    /// Whether the pointcut selects `handler`.
    pub fn selects(&self, handler: &HandlerDef) -> bool {
        match self {
            Pointcut::Every => true,
            Pointcut::Destination(p) => handler.patterns.iter().any(|h| covers(p, h)),
            Pointcut::Handler(glob) => path_matches(glob, handler.name),
            Pointcut::Tag(t) => handler.tags.contains(t),
            Pointcut::Any(list) => list.iter().any(|p| p.selects(handler)),
            Pointcut::All(list) => list.iter().all(|p| p.selects(handler)),
            Pointcut::Not(p) => !p.selects(handler),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Seg<'a> {
    Text(&'a str),
    One,
    Many,
}

fn seg(s: &str) -> Seg<'_> {
    match s {
        "**" => Seg::Many,
        "*" => Seg::One,
        s if s.starts_with('{') && s.ends_with('}') => Seg::One,
        s => Seg::Text(s),
    }
}

/// Whether pointcut pattern `p` covers handler pattern `h`: a literal covers the same
/// literal, `*` one segment of any kind but `**`, `**` any run of segments.
fn covers(p: &str, h: &str) -> bool {
    let p: Vec<(char, Seg)> = split(p).into_iter().map(|(c, s)| (c, seg(s))).collect();
    let h: Vec<(char, Seg)> = split(h).into_iter().map(|(c, s)| (c, seg(s))).collect();
    glob(
        &p,
        &h,
        |(pc, ps), (hc, hs)| {
            pc == hc
                && match (ps, hs) {
                    (Seg::Text(a), Seg::Text(b)) => a == b,
                    (Seg::One, Seg::Text(_) | Seg::One) => true,
                    _ => false,
                }
        },
        |(_, s)| *s == Seg::Many,
    )
}

/// Whether `glob` matches the end of `path` at a `::` boundary.
fn path_matches(glob: &str, path: &str) -> bool {
    let mut g: Vec<&str> = vec!["**"];
    g.extend(glob.split("::"));
    let p: Vec<&str> = path.split("::").collect();
    glob_segments(&g, &p)
}

fn glob_segments(g: &[&str], p: &[&str]) -> bool {
    glob(g, p, |a, b| *a == "*" || a == b, |a| *a == "**")
}

/// Wildcard matching by dynamic programming over (pattern, subject) positions: time is
/// the product of the two lengths, never exponential.
fn glob<P, S>(
    pattern: &[P],
    subject: &[S],
    one: impl Fn(&P, &S) -> bool,
    many: impl Fn(&P) -> bool,
) -> bool {
    // row[j]: pattern[..i] matches subject[..j].
    let mut row = vec![false; subject.len() + 1];
    row[0] = true;
    for p in pattern {
        let mut next = vec![false; subject.len() + 1];
        if many(p) {
            next[0] = row[0];
            for j in 1..=subject.len() {
                next[j] = row[j] || next[j - 1];
            }
        } else {
            for j in 1..=subject.len() {
                next[j] = row[j - 1] && one(p, &subject[j - 1]);
            }
        }
        row = next;
    }
    row[subject.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_pointcuts_cover_handler_patterns() {
        assert!(covers("/payment.**", "/payment.pay"));
        assert!(covers("/payment.**", "/payment.{id}.refund"));
        assert!(covers("/payment.*", "/payment.{id}"));
        assert!(covers("/**", "/chat.send.{room}"));
        assert!(covers("/payment.{x}", "/payment.pay"));
        assert!(!covers("/payment.*", "/payment.a.b"));
        assert!(!covers("/payment.pay", "/payment.{id}"));
        assert!(!covers("/payment.**", "/payments.pay"));
        assert!(
            !covers("/payment/*", "/payment.pay"),
            "separators must agree"
        );
        assert!(!covers("/a.*", "/a.**"), "`*` does not cover `**`");
    }

    #[test]
    fn handler_pointcuts_match_path_suffixes() {
        assert!(path_matches("payments::*", "app::payments::pay"));
        assert!(path_matches("payments::*", "app::api::payments::refund"));
        assert!(path_matches("pay", "app::payments::pay"));
        assert!(path_matches("app::**", "app::payments::pay"));
        assert!(!path_matches("payments::*", "app::payments::v2::pay"));
        assert!(!path_matches("payments::**::x", "app::payments::pay"));
        assert!(!path_matches("ments::*", "app::payments::pay"));
    }

    #[test]
    fn many_double_stars_stay_cheap() {
        let p = vec!["**"; 64].join("::") + "::x";
        let subject = vec!["a"; 4096].join("::");
        assert!(!path_matches(&p, &subject));
    }
}
