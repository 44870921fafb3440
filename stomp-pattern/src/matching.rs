//! Matching without backtracking: the set of pattern positions reachable after each
//! destination segment is a `u64` (bit `s` set when the first `s` pattern segments matched),
//! stepped once per destination segment. A pattern has at most [`MAX_SEGMENTS`] segments, so
//! a step costs at most that many segment comparisons and a match is linear in the
//! destination's length.
//!
//! [`MAX_SEGMENTS`]: crate::MAX_SEGMENTS

use crate::{Segment, Separator, tokens};

type Compiled = [(Separator, Segment)];

fn bit(s: usize) -> u64 {
    1u64 << s
}

/// Adds the positions reachable without consuming anything: past each `**` (which may
/// match zero segments). Ascending, so a chain is followed in one pass.
fn close_forward(p: &Compiled, mut set: u64) -> u64 {
    for (s, (_, seg)) in p.iter().enumerate() {
        if set & bit(s) != 0 && *seg == Segment::DoubleStar {
            set |= bit(s + 1);
        }
    }
    set
}

pub(crate) fn matches(p: &Compiled, destination: &str) -> bool {
    let end = bit(p.len());
    let mut set = close_forward(p, 1);
    for (sep, text) in tokens(destination) {
        let mut next = 0u64;
        let mut live = set & !end;
        while live != 0 {
            let s = live.trailing_zeros() as usize;
            live &= live - 1;
            let (psep, seg) = &p[s];
            if *seg == Segment::DoubleStar {
                if !text.is_empty() {
                    next |= bit(s);
                }
            } else if seg.accepts(*psep, sep, text) {
                next |= bit(s + 1);
            }
        }
        if next == 0 {
            return false;
        }
        set = close_forward(p, next);
    }
    set & end != 0
}

/// For each destination position `i` (0 to n), the pattern positions `s` from which the rest
/// of the pattern matches the rest of the destination. Computed backwards, once.
fn viable(p: &Compiled, dest: &[(Separator, &str)]) -> Vec<u64> {
    let m = p.len();
    let mut out = vec![0u64; dest.len() + 1];
    let mut after = bit(m);
    for s in (0..m).rev() {
        if p[s].1 == Segment::DoubleStar && after & bit(s + 1) != 0 {
            after |= bit(s);
        }
    }
    out[dest.len()] = after;
    for i in (0..dest.len()).rev() {
        let (sep, text) = dest[i];
        let mut here = 0u64;
        for s in (0..m).rev() {
            let (psep, seg) = &p[s];
            let ok = if *seg == Segment::DoubleStar {
                (!text.is_empty() && after & bit(s) != 0) || here & bit(s + 1) != 0
            } else {
                after & bit(s + 1) != 0 && seg.accepts(*psep, sep, text)
            };
            if ok {
                here |= bit(s);
            }
        }
        out[i] = here;
        after = here;
    }
    out
}

pub(crate) fn captures<'p, 'd>(
    p: &'p Compiled,
    destination: &'d str,
) -> Option<Vec<(&'p str, &'d str)>> {
    let dest: Vec<(Separator, &str)> = tokens(destination).collect();
    let viable = viable(p, &dest);
    if viable[0] & 1 == 0 {
        return None;
    }
    // Walk forward along viable positions; a `**` stops as early as it can.
    let mut vars = Vec::new();
    let (mut s, mut i) = (0, 0);
    while s < p.len() {
        match &p[s].1 {
            Segment::DoubleStar => {
                if viable[i] & bit(s + 1) != 0 {
                    s += 1;
                } else {
                    i += 1;
                }
            }
            seg => {
                if let Segment::Variable(name) = seg {
                    vars.push((name.as_str(), dest[i].1));
                }
                s += 1;
                i += 1;
            }
        }
    }
    debug_assert_eq!(i, dest.len(), "a viable walk ends at the destination's end");
    Some(vars)
}

#[cfg(test)]
mod tests {
    use crate::{Pattern, Syntax};

    fn sub(p: &str) -> Pattern {
        Pattern::parse(p, Syntax::Subscription).unwrap()
    }

    #[test]
    fn single_star_matches_one_non_empty_segment() {
        let p = sub("/topic/rooms.*");
        assert!(p.matches("/topic/rooms.lobby"));
        assert!(!p.matches("/topic/rooms.lobby.x"));
        assert!(!p.matches("/topic/rooms"));
        assert!(!p.matches("/topic/rooms."));
        assert!(!p.matches("/topic/rooms/lobby"));
        assert!(sub("/topic/*/status").matches("/topic/gate1/status"));
        assert!(!sub("/topic/*/status").matches("/topic//status"));
    }

    #[test]
    fn double_star_matches_any_depth_of_non_empty_segments() {
        let p = sub("/topic/**");
        assert!(p.matches("/topic/a"));
        assert!(p.matches("/topic/a/b.c"));
        assert!(p.matches("/topic"));
        assert!(!p.matches("/topic/"));
        assert!(!p.matches("/topic/a//b"));
        assert!(!p.matches("/queue/a"));
        let p = sub("/topic/**/status");
        assert!(p.matches("/topic/a/b/status"));
        assert!(p.matches("/topic/status"));
        assert!(!p.matches("/topic/a/b.status"));
    }

    #[test]
    fn exact_patterns_match_themselves_only() {
        let p = sub("/topic/a");
        assert!(p.matches("/topic/a"));
        assert!(!p.matches("/topic/ab"));
        assert!(!sub("/topic/a.b").matches("/topic/a/b"));
        assert!(!sub("topic").matches("/topic"));
    }

    #[test]
    fn captures_take_each_double_star_as_short_as_possible() {
        let p = Pattern::parse("/**/{id}/**", Syntax::Route).unwrap();
        assert_eq!(p.captures("/a/b/c").unwrap(), [("id", "a")]);
        let p = Pattern::parse("/gate/{id}/open", Syntax::Route).unwrap();
        assert_eq!(p.captures("/gate/7/open").unwrap(), [("id", "7")]);
        assert_eq!(p.captures("/gate//open"), None);
    }

    #[test]
    fn many_double_stars_against_a_long_destination_stay_linear() {
        // Backtracking would try on the order of 200^12 splits.
        let p = sub(&format!("/topic{}/x", "/**/a".repeat(12)));
        let dest = format!("/topic{}", "/a".repeat(200));
        assert!(!p.matches(&dest));
        assert!(p.captures(&dest).is_none());
        assert!(p.matches(&format!("{dest}/x")));
    }
}
