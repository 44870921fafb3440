//! The compiled matcher, its captures and the trie agree with a plain backtracking matcher
//! on random patterns and destinations (small alphabets, so that matches are common).

use proptest::prelude::*;
use stomp_pattern::{Pattern, PatternTrie, Syntax};

/// (separator, segment) as written; `sep` is `'\0'` for a first segment without `/`.
fn split(s: &str) -> Vec<(char, &str)> {
    let (mut sep, mut rest) = match s.strip_prefix('/') {
        Some(r) => ('/', r),
        None => ('\0', s),
    };
    let mut out = Vec::new();
    loop {
        match rest.find(['/', '.']) {
            Some(i) => {
                out.push((sep, &rest[..i]));
                sep = rest.as_bytes()[i] as char;
                rest = &rest[i + 1..];
            }
            None => {
                out.push((sep, rest));
                return out;
            }
        }
    }
}

/// The rules, written as directly as possible: `*` and `{v}` take one non-empty segment
/// after the same separator, `**` takes zero or more non-empty segments (trying fewer
/// first), literals take themselves. Exponential, and fine for tiny inputs.
fn reference<'p, 'd>(
    p: &[(char, &'p str)],
    d: &[(char, &'d str)],
    vars: &mut Vec<(&'p str, &'d str)>,
) -> bool {
    let Some((&(psep, seg), prest)) = p.split_first() else {
        return d.is_empty();
    };
    if seg == "**" {
        for k in 0..=d.len() {
            if d[..k].iter().any(|(_, t)| t.is_empty()) {
                break;
            }
            let mark = vars.len();
            if reference(prest, &d[k..], vars) {
                return true;
            }
            vars.truncate(mark);
        }
        return false;
    }
    let Some((&(dsep, text), drest)) = d.split_first() else {
        return false;
    };
    if psep != dsep {
        return false;
    }
    let var = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
    let ok = match (seg, var) {
        ("*", _) => !text.is_empty(),
        (_, Some(_)) => !text.is_empty(),
        _ => seg == text,
    };
    if !ok {
        return false;
    }
    if let Some(name) = var {
        vars.push((name, text));
    }
    if reference(prest, drest, vars) {
        return true;
    }
    if var.is_some() {
        vars.pop();
    }
    false
}

fn sep() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("/"), Just(".")]
}

fn pattern() -> impl Strategy<Value = String> {
    let seg = prop_oneof![Just("a"), Just("b"), Just("*"), Just("**"), Just("{v}")];
    (any::<bool>(), prop::collection::vec((sep(), seg), 1..7)).prop_map(|(lead, segs)| {
        let mut s = String::new();
        let mut v = 0;
        for (i, (sep, seg)) in segs.into_iter().enumerate() {
            match (i, lead) {
                (0, true) => s.push('/'),
                (0, false) => {}
                _ => s.push_str(sep),
            }
            if seg == "{v}" {
                // Distinct names, as routes require.
                s.push_str(&format!("{{v{v}}}"));
                v += 1;
            } else {
                s.push_str(seg);
            }
        }
        s
    })
}

fn destination() -> impl Strategy<Value = String> {
    let seg = prop_oneof![4 => Just("a"), 4 => Just("b"), 1 => Just("")];
    (any::<bool>(), prop::collection::vec((sep(), seg), 1..9)).prop_map(|(lead, segs)| {
        let mut s = String::new();
        for (i, (sep, seg)) in segs.into_iter().enumerate() {
            if i > 0 || lead {
                s.push_str(sep);
            }
            s.push_str(seg);
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn compiled_matcher_agrees_with_the_reference(p in pattern(), d in destination()) {
        let compiled = Pattern::parse(&p, Syntax::Route).expect("generated patterns are valid");
        let mut vars = Vec::new();
        let expected = reference(&split(&p), &split(&d), &mut vars);
        prop_assert_eq!(compiled.matches(&d), expected, "{} vs {}", p, d);
        let captured = compiled.captures(&d);
        prop_assert_eq!(captured.is_some(), expected);
        if let Some(captured) = captured {
            prop_assert_eq!(captured, vars);
        }
    }

    #[test]
    fn trie_finds_exactly_the_matching_patterns(
        ps in prop::collection::vec(pattern(), 1..12),
        d in destination(),
    ) {
        let mut trie = PatternTrie::new();
        let compiled: Vec<Pattern> = ps
            .iter()
            .map(|p| Pattern::parse(p, Syntax::Route).expect("valid"))
            .collect();
        for (i, c) in compiled.iter().enumerate() {
            trie.insert(c, i);
        }
        let mut got = Vec::new();
        trie.for_each_match(&d, |i| got.push(*i));
        got.sort();
        let expected: Vec<usize> = ps
            .iter()
            .enumerate()
            .filter(|(_, p)| reference(&split(p), &split(&d), &mut Vec::new()))
            .map(|(i, _)| i)
            .collect();
        prop_assert_eq!(got, expected, "{:?} vs {}", ps, d);
        // Removing every value leaves an empty trie.
        for (i, c) in compiled.iter().enumerate() {
            prop_assert_eq!(trie.remove(c, |v| *v == i), 1);
        }
        prop_assert!(trie.is_empty());
    }
}
