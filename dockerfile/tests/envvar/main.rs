//! Port of upstream `shell/envVarTest`: `Lexer::process_word` with
//! PWD=/home, SHELL=bash, KOREAN=한국어, NULL= (Unix rows; `None` means the
//! input must fail).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod cases_ascii;
mod cases_params;
mod cases_unicode;

use nodekit_dockerfile::Lexer;

const ENV: [(&str, &str); 4] = [
    ("PWD", "/home"),
    ("SHELL", "bash"),
    ("KOREAN", "한국어"),
    ("NULL", ""),
];

#[test]
fn env_var_table_ascii() {
    check(cases_ascii::CASES);
}

#[test]
fn env_var_table_unicode() {
    check(cases_unicode::CASES);
}

#[test]
fn env_var_table_parameters() {
    check(cases_params::CASES);
}

fn check(cases: &[(&str, Option<&str>)]) {
    let lex = Lexer::new('\\');
    let mut failures = Vec::new();
    for (input, expected) in cases {
        let got = lex.process_word(input, &ENV);
        let ok = match expected {
            None => got.is_err(),
            Some(want) => got.as_deref() == Ok(*want),
        };
        if !ok {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn mandatory_env_vars() {
    let lex = Lexer::new('\\');
    let set = [("VAR", "plain"), ("ARG", "x")];
    let empty = [("VAR", ""), ("ARG", "x")];
    let unset = [("ARG", "x")];
    let no_empty = "${VAR:?message here$ARG}";
    let no_unset = "${VAR?message here$ARG}";

    assert_eq!(lex.process_word(no_empty, &set).as_deref(), Ok("plain"));
    for env in [&empty[..], &unset[..]] {
        let err = lex
            .process_word(no_empty, env)
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(err.contains("VAR: message herex"), "{err}");
    }
    assert_eq!(lex.process_word(no_unset, &set).as_deref(), Ok("plain"));
    assert_eq!(lex.process_word(no_unset, &empty).as_deref(), Ok(""));
    let err = lex
        .process_word(no_unset, &unset)
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(err.contains("message herex"), "{err}");
    assert!(
        err.starts_with("failed to process \"${VAR?message here$ARG}\": "),
        "{err}"
    );
}

#[test]
fn default_messages_for_required() {
    let lex = Lexer::new('\\');
    let err = |w: &str, env: &[(&str, &str)]| {
        lex.process_word(w, env)
            .err()
            .map(|e| e.message)
            .unwrap_or_default()
    };
    assert!(err("${X?}", &[]).ends_with("X: is not allowed to be unset"));
    assert!(err("${X:?}", &[("X", "")]).ends_with("X: is not allowed to be empty"));
}

#[test]
fn backtick_escape() {
    let lex = Lexer::new('`');
    let env = [("A", "1")];
    assert_eq!(lex.process_word("a`$A", &env).as_deref(), Ok("a$A"));
    assert_eq!(
        lex.process_word("C:\\dir\\$A", &env).as_deref(),
        Ok("C:\\dir\\1")
    );
    assert_eq!(lex.process_word("\"x`\"y\"", &env).as_deref(), Ok("x\"y"));
    assert_eq!(lex.process_word("it`'s", &env).as_deref(), Ok("it's"));
}
