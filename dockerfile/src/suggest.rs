//! "did you mean …?" hints (upstream `util/suggest`): the closest option
//! within edit distance 2 (Levenshtein, from `strsim`).

/// Appends ` (did you mean X?)` to `message` when an option is close to
/// `value` (and none equals it).
pub fn wrap(message: String, value: &str, options: &[&str], case_sensitive: bool) -> String {
    match search(value, options, case_sensitive) {
        Some(m) => format!("{message} (did you mean {m}?)"),
        None => message,
    }
}

/// The option closest to `value` (edit distance below 3, first one wins
/// on ties), or `None` when none is close or one equals `value`.
pub fn search(value: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let val = if case_sensitive {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let opt = if case_sensitive {
            opt.to_string()
        } else {
            opt.to_lowercase()
        };
        if val == opt {
            return None;
        }
        let dist = strsim::levenshtein(&val, &opt);
        if dist < min {
            min = dist;
            best = Some(if case_sensitive {
                opt
            } else {
                match_case(&opt, value)
            });
        }
    }
    best
}

fn match_case(opt: &str, orig: &str) -> String {
    if orig == orig.to_lowercase() {
        opt.to_lowercase()
    } else if orig == orig.to_uppercase() {
        opt.to_uppercase()
    } else {
        opt.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            search("chwon", &["chown", "chmod"], true).as_deref(),
            Some("chown")
        );
        assert_eq!(search("chown", &["chown"], true), None);
        assert_eq!(
            search("RUNN", &["RUN", "CMD"], false).as_deref(),
            Some("RUN")
        );
        assert_eq!(
            search("runn", &["RUN", "CMD"], false).as_deref(),
            Some("run")
        );
        assert_eq!(search("xyzzy", &["RUN"], false), None);
    }
}
