//! Destination pattern checks at expansion time, by the very rules the runtime's router
//! uses: both compile with `stomp_pattern::Pattern` under `Syntax::Route`.

use stomp_pattern::{Pattern, Syntax};

/// Checks `pattern`, returning its variable names.
pub(crate) fn variables(pattern: &str) -> Result<Vec<String>, String> {
    let compiled = Pattern::parse(pattern, Syntax::Route).map_err(|e| e.reason.to_string())?;
    Ok(compiled.variables().map(str::to_owned).collect())
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
