//! Splitting a command line into arguments as BuildKit's `llb.Shlex` does (`google/shlex`):
//! whitespace separates words, `"…"` quotes with `\` escapes, `'…'` quotes literally, `\`
//! escapes one character, and `#` at the start of a word comments to the end of the line.

/// Lexer states (`google/shlex`'s).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lex {
    Start,
    Word,
    Escaping,
    EscapingQuoted,
    Quoting,
    QuotingLiteral,
    Comment,
}

/// Splits `line` into words, or says why it can't (an unclosed quote, a trailing `\`).
pub fn shlex_split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = Lex::Start;
    for ch in line.chars() {
        state = step(state, ch, &mut word, &mut words);
    }
    match state {
        Lex::Start | Lex::Comment => Ok(words),
        Lex::Word => {
            words.push(word);
            Ok(words)
        }
        Lex::Escaping | Lex::EscapingQuoted => Err("EOF found after escape character".into()),
        Lex::Quoting | Lex::QuotingLiteral => Err("EOF found when expecting closing quote".into()),
    }
}

fn step(state: Lex, ch: char, word: &mut String, words: &mut Vec<String>) -> Lex {
    let space = matches!(ch, ' ' | '\t' | '\r' | '\n');
    match state {
        Lex::Start => match ch {
            _ if space => Lex::Start,
            '"' => Lex::Quoting,
            '\'' => Lex::QuotingLiteral,
            '\\' => Lex::Escaping,
            '#' => Lex::Comment,
            _ => {
                word.push(ch);
                Lex::Word
            }
        },
        Lex::Word => match ch {
            _ if space => {
                words.push(std::mem::take(word));
                Lex::Start
            }
            '"' => Lex::Quoting,
            '\'' => Lex::QuotingLiteral,
            '\\' => Lex::Escaping,
            _ => {
                word.push(ch);
                Lex::Word
            }
        },
        Lex::Escaping => {
            word.push(ch);
            Lex::Word
        }
        Lex::EscapingQuoted => {
            word.push(ch);
            Lex::Quoting
        }
        Lex::Quoting => match ch {
            '"' => Lex::Word,
            '\\' => Lex::EscapingQuoted,
            _ => {
                word.push(ch);
                Lex::Quoting
            }
        },
        Lex::QuotingLiteral => match ch {
            '\'' => Lex::Word,
            _ => {
                word.push(ch);
                Lex::QuotingLiteral
            }
        },
        Lex::Comment if ch == '\n' => Lex::Start,
        Lex::Comment => Lex::Comment,
    }
}

#[cfg(test)]
mod tests {
    use super::shlex_split;

    fn split(line: &str) -> Vec<String> {
        shlex_split(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    #[test]
    fn splits_like_google_shlex() {
        assert_eq!(split("echo hello  world"), ["echo", "hello", "world"]);
        assert_eq!(
            split(r#"sh -c "echo \"hi\" \a""#),
            ["sh", "-c", r#"echo "hi" a"#]
        );
        assert_eq!(split(r"a\ b 'c\d' e'f g'h"), ["a b", r"c\d", "ef gh"]);
        assert_eq!(split("a #comment x\nb c#d"), ["a", "b", "c#d"]);
        assert_eq!(split(r#"x "" y"#), ["x", "", "y"]);
        assert!(split("  ").is_empty());
    }

    #[test]
    fn reports_unfinished_input() {
        assert!(shlex_split("echo 'open").is_err());
        assert!(shlex_split("echo \"open").is_err());
        assert!(shlex_split("echo \\").is_err());
    }
}
