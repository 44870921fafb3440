//! Many patterns indexed by their segments (RabbitMQ's topic exchange keeps its bindings
//! the same way), so that finding the patterns a destination matches visits only the trie
//! nodes whose prefix matches a prefix of the destination, not every pattern.

use std::collections::HashMap;

use crate::{Pattern, Segment, Separator, tokens};

/// Values (subscriptions) filed under the patterns they were inserted with.
///
/// ```
/// use stomp_pattern::{Pattern, PatternTrie, Syntax};
///
/// let mut trie = PatternTrie::new();
/// let rooms = Pattern::parse("/topic/rooms.*", Syntax::Subscription).unwrap();
/// let all = Pattern::parse("/topic/**", Syntax::Subscription).unwrap();
/// trie.insert(&rooms, "rooms");
/// trie.insert(&all, "all");
/// let mut hits = Vec::new();
/// trie.for_each_match("/topic/rooms.lobby", |v| hits.push(*v));
/// hits.sort();
/// assert_eq!(hits, ["all", "rooms"]);
/// assert_eq!(trie.remove(&rooms, |v| *v == "rooms"), 1);
/// ```
#[derive(Debug)]
pub struct PatternTrie<T> {
    root: Node<T>,
    len: usize,
}

#[derive(Debug)]
struct Node<T> {
    values: Vec<T>,
    /// Literal children, per separator.
    literal: [HashMap<Box<str>, Node<T>>; 3],
    /// `*` (and `{name}`) children, per separator.
    star: [Option<Box<Node<T>>>; 3],
    /// The `**` child; its separator does not matter.
    any: Option<Box<Node<T>>>,
    /// Whether this node was reached through `**`, which may take more segments.
    loops: bool,
}

impl<T> Node<T> {
    fn new(loops: bool) -> Self {
        Self {
            values: Vec::new(),
            literal: Default::default(),
            star: Default::default(),
            any: None,
            loops,
        }
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty()
            && self.literal.iter().all(HashMap::is_empty)
            && self.star.iter().all(Option::is_none)
            && self.any.is_none()
    }
}

impl<T> Default for PatternTrie<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PatternTrie<T> {
    /// An empty trie.
    pub fn new() -> Self {
        Self {
            root: Node::new(false),
            len: 0,
        }
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Files `value` under `pattern`.
    pub fn insert(&mut self, pattern: &Pattern, value: T) {
        let mut node = &mut self.root;
        for (sep, seg) in pattern.segments() {
            node = match seg {
                Segment::Literal(text) => node.literal[sep.index()]
                    .entry(text.as_str().into())
                    .or_insert_with(|| Node::new(false)),
                Segment::Star | Segment::Variable(_) => {
                    node.star[sep.index()].get_or_insert_with(|| Box::new(Node::new(false)))
                }
                Segment::DoubleStar => node.any.get_or_insert_with(|| Box::new(Node::new(true))),
            };
        }
        node.values.push(value);
        self.len += 1;
    }

    /// Removes the values filed under `pattern` that `which` picks, returning how many.
    pub fn remove(&mut self, pattern: &Pattern, which: impl FnMut(&T) -> bool) -> usize {
        let removed = remove_in(&mut self.root, pattern.segments(), which);
        self.len -= removed;
        removed
    }

    /// Calls `f` with every value whose pattern matches `destination`, once per value.
    pub fn for_each_match(&self, destination: &str, mut f: impl FnMut(&T)) {
        let mut active: Vec<&Node<T>> = Vec::new();
        push_closed(&mut active, &self.root);
        let mut next: Vec<&Node<T>> = Vec::new();
        for (sep, text) in tokens(destination) {
            next.clear();
            for node in &active {
                if text.is_empty() {
                    // No wildcard takes an empty segment; only literals could, and no
                    // pattern has an empty literal.
                    continue;
                }
                if node.loops {
                    next.push(node);
                }
                if let Some(child) = node.literal[sep.index()].get(text) {
                    push_closed(&mut next, child);
                }
                if let Some(child) = &node.star[sep.index()] {
                    push_closed(&mut next, child);
                }
            }
            // Several paths may reach one node (`**` then `*`, or `*` then `**`).
            next.sort_unstable_by_key(|n| *n as *const Node<T>);
            next.dedup_by_key(|n| *n as *const Node<T>);
            std::mem::swap(&mut active, &mut next);
            if active.is_empty() {
                return;
            }
        }
        for node in active {
            node.values.iter().for_each(&mut f);
        }
    }

    /// Calls `f` with every value, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        fn walk<T>(node: &Node<T>, f: &mut impl FnMut(&T)) {
            node.values.iter().for_each(&mut *f);
            for map in &node.literal {
                map.values().for_each(|c| walk(c, f));
            }
            for c in node.star.iter().flatten() {
                walk(c, f);
            }
            if let Some(c) = &node.any {
                walk(c, f);
            }
        }
        walk(&self.root, &mut f);
    }
}

/// Adds `node` and the `**` children reachable from it without consuming a segment.
fn push_closed<'a, T>(out: &mut Vec<&'a Node<T>>, node: &'a Node<T>) {
    out.push(node);
    if let Some(any) = &node.any {
        // Consecutive `**` are folded at compile time, so this is one level deep.
        push_closed(out, any);
    }
}

fn remove_in<T>(
    node: &mut Node<T>,
    rest: &[(Separator, Segment)],
    mut which: impl FnMut(&T) -> bool,
) -> usize {
    let Some(((sep, seg), tail)) = rest.split_first() else {
        let before = node.values.len();
        node.values.retain(|v| !which(v));
        return before - node.values.len();
    };
    match seg {
        Segment::Literal(text) => {
            let map = &mut node.literal[sep.index()];
            let Some(child) = map.get_mut(text.as_str()) else {
                return 0;
            };
            let n = remove_in(child, tail, which);
            if child.is_empty() {
                map.remove(text.as_str());
            }
            n
        }
        Segment::Star | Segment::Variable(_) => prune(&mut node.star[sep.index()], tail, which),
        Segment::DoubleStar => prune(&mut node.any, tail, which),
    }
}

fn prune<T>(
    slot: &mut Option<Box<Node<T>>>,
    tail: &[(Separator, Segment)],
    which: impl FnMut(&T) -> bool,
) -> usize {
    let Some(child) = slot else { return 0 };
    let n = remove_in(child, tail, which);
    if child.is_empty() {
        *slot = None;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Syntax;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s, Syntax::Subscription).unwrap()
    }

    fn hits(t: &PatternTrie<u32>, d: &str) -> Vec<u32> {
        let mut v = Vec::new();
        t.for_each_match(d, |x| v.push(*x));
        v.sort();
        v
    }

    #[test]
    fn finds_every_matching_pattern_once() {
        let mut t = PatternTrie::new();
        t.insert(&p("/topic/**"), 1);
        t.insert(&p("/topic/*.*"), 2);
        t.insert(&p("/topic/**/b"), 3);
        t.insert(&p("/topic/a.b"), 4);
        t.insert(&p("/topic/**.b"), 5);
        t.insert(&p("/topic/a/**"), 6);
        // `**` takes segments whatever separates them.
        assert_eq!(hits(&t, "/topic/a.b"), [1, 2, 4, 5, 6]);
        assert_eq!(hits(&t, "/topic/x/b"), [1, 3]);
        assert_eq!(hits(&t, "/topic"), [1]);
        assert_eq!(hits(&t, "/topic/a"), [1, 6]);
        assert_eq!(hits(&t, "/topic//b"), Vec::<u32>::new());
        assert_eq!(hits(&t, "/queue/a.b"), Vec::<u32>::new());
    }

    #[test]
    fn removal_prunes_empty_branches() {
        let mut t = PatternTrie::new();
        t.insert(&p("/topic/a.*"), 1);
        t.insert(&p("/topic/a.*"), 2);
        t.insert(&p("/topic/**/x"), 3);
        assert_eq!(t.remove(&p("/topic/a.*"), |v| *v == 1), 1);
        assert_eq!(hits(&t, "/topic/a.b"), [2]);
        assert_eq!(t.remove(&p("/topic/a.*"), |_| true), 1);
        assert_eq!(t.remove(&p("/topic/**/x"), |_| true), 1);
        assert_eq!(t.remove(&p("/topic/nothing.*"), |_| true), 0);
        assert!(t.is_empty());
        assert!(t.root.is_empty(), "no node left behind");
    }
}
