//! Heredoc markers (`<<EOF`, `<<-EOF`, `3<<"EOF"`) and body helpers.

use super::lines::is_go_re_space;
use crate::ast::Heredoc;
use crate::shell::{EmptyEnv, Lexer};

/// Parses one word as a heredoc marker (upstream `ParseHeredoc`).
///
/// `Ok(None)` when the word is not a heredoc marker; `Err` when it is one
/// with unbalanced quotes (e.g. `<<'EOF`). The returned heredoc has empty
/// content.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(is_go_re_space);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let lexer = Lexer::new('\\').with_skip_unset_env(true);
    let words = lexer
        .process_words(rest, &EmptyEnv)
        .map_err(|e| e.message)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lexer
        .with_raw_quotes(true)
        .process_words(rest, &EmptyEnv)
        .map_err(|e| e.message)?;
    let [raw_name] = raw.as_slice() else {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    };
    Ok(Some(Heredoc {
        name: name.clone(),
        file_descriptor: word[..digits].parse().unwrap_or(0),
        expand: count_quotes(name) == count_quotes(raw_name),
        chomp,
        content: String::new(),
    }))
}

fn count_quotes(s: &str) -> usize {
    s.chars().filter(|c| *c == '\'' || *c == '"').count()
}

/// Heredoc markers among the words of a logical line. Lexing errors (e.g.
/// unbalanced quotes in the line) mean "no heredocs", as upstream.
pub(super) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let lexer = Lexer::new('\\')
        .with_raw_quotes(true)
        .with_raw_escapes(true)
        .with_skip_unset_env(true);
    let words = lexer.process_words(line, &EmptyEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Removes leading tabs from every line (for `<<-` heredocs; upstream
/// `ChompHeredocContent`).
pub fn chomp_heredoc_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(src: &str) -> Option<String> {
        parse_heredoc(src).ok().flatten().map(|h| h.name)
    }

    #[test]
    fn heredoc_helpers() {
        for src in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            assert_eq!(name(src).as_deref(), Some("EOF"), "{src}");
        }
        for src in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(src).is_err(), "{src}");
        }
        for src in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_heredoc(src), Ok(None), "{src}");
        }
        assert_eq!(
            chomp_heredoc_content("\thello\n\tworld\n"),
            "hello\nworld\n"
        );
    }

    #[test]
    fn heredocs_in_lines() {
        let cases: &[(&str, &[&str])] = &[
            ("RUN <<EOF", &["EOF"]),
            ("RUN <<-EOF", &["EOF"]),
            ("RUN <<- EOF", &[]),
            ("RUN << -EOF", &["-EOF"]),
            ("RUN <<'EOF'", &["EOF"]),
            ("RUN 4<<EOF", &["EOF"]),
            ("RUN <<EOF <<EOF2", &["EOF", "EOF2"]),
            ("RUN '<<EOF'", &[]),
            ("RUN \"<<EOF\"", &[]),
        ];
        for (line, names) in cases {
            let docs = heredocs_from_line(line).unwrap_or_default();
            let got: Vec<&str> = docs.iter().map(|d| d.name.as_str()).collect();
            assert_eq!(got, *names, "{line}");
        }
    }
}
