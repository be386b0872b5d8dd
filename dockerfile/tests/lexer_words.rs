//! Port of upstream `shell/wordsTest` (`Lexer::process_words`, field
//! splitting after expansion) plus the raw-quote / skip-unset modes used
//! by the parser.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit_dockerfile::{EmptyEnv, EnvSlice, Lexer};

enum Row {
    /// Adds `KEY=VALUE` to the environment for the following rows.
    Env(&'static str),
    Words(&'static str, &'static [&'static str]),
    Error(&'static str),
}

#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row::Words(r#"hello"#, &[r#"hello"#]),
    Row::Words(r#"hello${hi}bye"#, &[r#"hellobye"#]),
    Row::Env(r#"hi=hi"#),
    Row::Words(r#"hello${hi}bye"#, &[r#"hellohibye"#]),
    Row::Env(r#"space=abc  def"#),
    Row::Words(r#"hello${space}bye"#, &[r#"helloabc"#, r#"defbye"#]),
    Row::Words(r#"hello"${space}"bye"#, &[r#"helloabc  defbye"#]),
    Row::Words(r#"hello "${space}"bye"#, &[r#"hello"#, r#"abc  defbye"#]),
    Row::Env(r#"leading=  ab c"#),
    Row::Words(r#"hello${leading}def"#, &[r#"hello"#, r#"ab"#, r#"cdef"#]),
    Row::Words(r#"hello"${leading}" def"#, &[r#"hello  ab c"#, r#"def"#]),
    Row::Words(r#"hello"${leading}""#, &[r#"hello  ab c"#]),
    Row::Words(r#"hello${leading}"#, &[r#"hello"#, r#"ab"#, r#"c"#]),
    // next line MUST have 3 trailing spaces, don't erase them!
    Row::Env(r#"trailing=ab c   "#),
    Row::Words(r#"hello${trailing}"#, &[r#"helloab"#, r#"c"#]),
    Row::Words(r#"hello${trailing}d"#, &[r#"helloab"#, r#"c"#, r#"d"#]),
    Row::Words(r#"hello"${trailing}"d"#, &[r#"helloab c   d"#]),
    // next line MUST have 3 trailing spaces, don't erase them!
    Row::Words(r#"hel"lo${trailing}""#, &[r#"helloab c   "#]),
    Row::Words(r#"hello" there  ""#, &[r#"hello there  "#]),
    Row::Words(r#"hello there"#, &[r#"hello"#, r#"there"#]),
    Row::Words(r#"hello\ there"#, &[r#"hello there"#]),
    Row::Error(r#"hello" there"#),
    Row::Words(r#"hello\" there"#, &[r#"hello""#, r#"there"#]),
    Row::Words(r#"hello"\\there""#, &[r#"hello\there"#]),
    Row::Words(r#"hello"\there""#, &[r#"hello\there"#]),
    Row::Words(r#"hello'\\there'"#, &[r#"hello\\there"#]),
    Row::Words(r#"hello'\there'"#, &[r#"hello\there"#]),
    Row::Words(r#"hello'$there'"#, &[r#"hello$there"#]),
];

fn owned(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn words_table() {
    let lex = Lexer::new('\\');
    let mut env: Vec<&str> = Vec::new();
    for row in ROWS {
        match row {
            Row::Env(kv) => env.push(kv),
            Row::Words(input, want) => {
                let got = lex.process_words(input, &EnvSlice(&env));
                assert_eq!(got, Ok(owned(want)), "{input:?}");
            }
            Row::Error(input) => assert!(
                lex.process_words(input, &EnvSlice(&env)).is_err(),
                "{input:?}"
            ),
        }
    }
}

#[test]
fn raw_quotes_and_skip_unset() {
    let lex = Lexer::new('\\')
        .with_raw_quotes(true)
        .with_skip_unset_env(true);
    let env = [("hi", "yo")];
    let cases: &[(&str, &[&str])] = &[
        ("hello${hi}bye", &["helloyobye"]),
        (
            "a $unset ${unset} ${unset:-x} ${unset/a/b}",
            &["a", "$unset", "${unset}", "${unset:-x}", "${unset/a/b}"],
        ),
        ("'a b' \"c d\"", &["'a b'", "\"c d\""]),
        ("<<  EOF > out", &["<<  EOF", ">", "out"]),
        ("a\\ b", &["a b"]),
    ];
    for (input, want) in cases {
        assert_eq!(lex.process_words(input, &env), Ok(owned(want)), "{input:?}");
    }
    let raw = Lexer::new('\\').with_raw_escapes(true);
    assert_eq!(
        raw.process_words("a\\ b \"x\\y\"", &EmptyEnv),
        Ok(owned(&["a\\ b", "x\\\\y"]))
    );
}

#[test]
fn quoted_empty_fields_are_dropped() {
    let lex = Lexer::new('\\');
    assert_eq!(
        lex.process_words("a \"\" b", &EmptyEnv),
        Ok(owned(&["a", "b"]))
    );
    assert_eq!(
        lex.process_word("a \"\" b", &EmptyEnv).as_deref(),
        Ok("a  b")
    );
}

#[test]
fn nested_default_keeps_word_prefix() {
    // Upstream shares one words buffer between nested ${...} scans and
    // loses "pre" here; this implementation keeps the prefix.
    let lex = Lexer::new('\\');
    assert_eq!(
        lex.process_words("pre${X:-a b}post", &EmptyEnv),
        Ok(owned(&["prea", "bpost"]))
    );
}
