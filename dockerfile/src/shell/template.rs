//! Replacement templates of `${VAR//pat/repl}`: upstream uses Go's
//! `Regexp.ReplaceAllString`, which expands `$` references in `repl`.

/// Go `regexp.Expand` for a regexp without capture groups: `$0`/`${0}` is
/// the match, `$$` a dollar, other references are empty.
pub(super) fn expand_template(out: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest[1..].starts_with('$') {
            out.push('$');
            rest = &rest[2..];
            continue;
        }
        match template_ref(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(matched);
                }
                rest = after;
            }
            None => {
                out.push('$');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
}

/// Parses `$name` or `${name}` at the start of `s` (which starts with `$`).
fn template_ref(s: &str) -> Option<(&str, &str)> {
    let body = &s[1..];
    let (body, brace) = match body.strip_prefix('{') {
        Some(b) => (b, true),
        None => (body, false),
    };
    let len: usize = body
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if brace {
        return after.strip_prefix('}').map(|a| (name, a));
    }
    Some((name, after))
}
