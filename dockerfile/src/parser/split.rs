//! Splitting a logical line into keyword, `--flags` and argument text, and
//! upstream's quote-preserving word splitter (`parseWords`).

use super::lines::is_re_ws;

/// `(keyword, flags, argument text)` of a logical line.
pub(super) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let trimmed = line.trim();
    let Some(i) = trimmed.find(is_re_ws) else {
        return (trimmed.to_string(), Vec::new(), String::new());
    };
    let rest = trimmed[i..].trim_start_matches(is_re_ws);
    let (args, flags) = extract_builder_flags(rest, escape);
    (trimmed[..i].to_string(), flags, args.trim().to_string())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// Leading `--flag` words (quotes removed, escapes applied, `--` ends the
/// flags) and the remaining text (upstream `extractBuilderFlags`).
fn extract_builder_flags(line: &str, escape: char) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let (at, ch) = chars[i];
        match phase {
            Phase::Spaces if ch.is_whitespace() => {}
            Phase::Spaces => {
                if ch != '-' || chars.get(i + 1).map(|c| c.1) != Some('-') {
                    return (line[at..].to_string(), words);
                }
                phase = Phase::Word;
                continue;
            }
            Phase::Word if ch.is_whitespace() => {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line[at..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
            }
            Phase::Word if ch == '\'' || ch == '"' => {
                phase = Phase::Quote(ch);
                blank_ok = true;
            }
            Phase::Quote(q) if ch == q => phase = Phase::Word,
            Phase::Word | Phase::Quote(_) if ch == escape => {
                if i + 1 == chars.len() {
                    phase = Phase::Word;
                } else {
                    i += 1;
                    word.push(chars[i].1);
                }
            }
            Phase::Word | Phase::Quote(_) => word.push(ch),
        }
        i += 1;
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    (String::new(), words)
}

/// Splits on whitespace keeping quotes and escape tokens in the words; an
/// escape token at the very end is dropped (upstream `parseWords`).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut phase = Phase::Spaces;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        let last = i + 1 == chars.len();
        match phase {
            Phase::Spaces if ch.is_whitespace() => {}
            Phase::Spaces => {
                phase = Phase::Word;
                continue;
            }
            Phase::Word if ch.is_whitespace() => {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
            }
            Phase::Word => {
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    if !last {
                        word.push(ch);
                        i += 1;
                        word.push(chars[i]);
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                }
                if ch == escape && q != '\'' {
                    if last {
                        phase = Phase::Word;
                    } else {
                        word.push(ch);
                        i += 1;
                        word.push(chars[i]);
                    }
                } else {
                    word.push(ch);
                }
            }
        }
        i += 1;
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::{extract_builder_flags, parse_words};

    #[test]
    fn words_keep_quotes() {
        let cases: &[(&str, &[&str])] = &[
            ("foo", &["foo"]),
            ("foo bar", &["foo", "bar"]),
            ("foo\\ bar", &["foo\\ bar"]),
            ("foo=bar", &["foo=bar"]),
            ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
            (r#"foo bar "abc xyz""#, &["foo", "bar", r#""abc xyz""#]),
            ("àöû", &["àöû"]),
            (r#"föo bàr "âbc xÿz""#, &["föo", "bàr", r#""âbc xÿz""#]),
            ("a\\", &["a"]),
            ("''", &["''"]),
        ];
        for (input, expect) in cases {
            assert_eq!(parse_words(input, '\\'), *expect, "{input}");
        }
    }

    #[test]
    fn builder_flags() {
        let (rest, flags) = extract_builder_flags("--a=1 --b=\"x y\" -- --c d", '\\');
        assert_eq!(flags, ["--a=1", "--b=x y"]);
        assert_eq!(rest, " --c d");
        let (rest, flags) = extract_builder_flags("--only", '\\');
        assert_eq!((rest.as_str(), flags), ("", vec!["--only".to_string()]));
        let (rest, flags) = extract_builder_flags("-x --y", '\\');
        assert_eq!((rest.as_str(), flags.len()), ("-x --y", 0));
    }
}
