//! Destination pattern checks at expansion time, by the rules of
//! `stomp_runtime::handler::RoutePattern`: segments separated by `/` or `.`; a segment is
//! literal text, `{name}`, `*` or `**`.

/// Checks `pattern`, returning its variable names.
pub(crate) fn variables(pattern: &str) -> Result<Vec<String>, String> {
    if pattern.is_empty() {
        return Err("the pattern is empty".into());
    }
    let body = pattern.strip_prefix('/').unwrap_or(pattern);
    let mut names: Vec<String> = Vec::new();
    for seg in body.split(['/', '.']) {
        if seg == "*" || seg == "**" {
            continue;
        }
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(format!("`{{{name}}}` is not a valid variable name"));
            }
            if names.iter().any(|n| n == name) {
                return Err(format!("variable `{name}` appears twice"));
            }
            names.push(name.to_owned());
        } else if seg.is_empty() {
            return Err("empty segment (two separators in a row)".into());
        } else if seg.contains(['{', '}', '*']) {
            return Err(format!(
                "segment `{seg}` mixes text with `{{`, `}}` or `*`; a variable or wildcard must be a whole segment"
            ));
        }
    }
    Ok(names)
}

/// The `{placeholder}` names of a `send_to` destination.
pub(crate) fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err("unclosed `{`".into());
        };
        out.push(rest[open + 1..open + close].to_owned());
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err("unmatched `}`".into());
    }
    Ok(out)
}
