//! Port of upstream `TestProcessWithMatches` and friends: modifiers,
//! pattern removal/replacement and matched/unmatched variable tracking.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use std::collections::BTreeSet;

use nodekit_dockerfile::Lexer;

struct Case {
    input: &'static str,
    env: &'static [(&'static str, &'static str)],
    /// `None`: must fail.
    expected: Option<&'static str>,
    matched: &'static [&'static str],
    unmatched: &'static [&'static str],
}

const FB: &[(&str, &str)] = &[("FOO", "xxx"), ("BAR", "")];

const fn ok(
    input: &'static str,
    env: &'static [(&'static str, &'static str)],
    expected: &'static str,
    matched: &'static [&'static str],
    unmatched: &'static [&'static str],
) -> Case {
    Case {
        input,
        env,
        expected: Some(expected),
        matched,
        unmatched,
    }
}

const fn fails(input: &'static str, env: &'static [(&'static str, &'static str)]) -> Case {
    Case {
        input,
        env,
        expected: None,
        matched: &[],
        unmatched: &[],
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    ok("x", &[("DUMMY", "dummy")], "x", &[], &[]),
    ok("x ${UNUSED}", &[("DUMMY", "dummy")], "x ", &[], &["UNUSED"]),
    ok("x ${FOO}", &[("FOO", "y")], "x y", &["FOO"], &[]),
    ok("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", FB, "xxx  ccc", &["FOO", "BAR"], &["BAZ"]),
    ok("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", FB, "xxx bbb ccc", &["FOO", "BAR"], &["BAZ"]),
    ok("${FOO:-}", FB, "xxx", &["FOO"], &[]),
    ok("${FOO:-}", &[], "", &[], &["FOO"]),
    ok("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", FB, "aaa bbb ", &["FOO", "BAR"], &["BAZ"]),
    ok("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", FB, "aaa  ", &["FOO", "BAR"], &["BAZ"]),
    ok("${FOO?aaa}", FB, "xxx", &["FOO"], &[]),
    ok("${BAR?bbb}", FB, "", &["BAR"], &[]),
    fails("${BAZ?ccc}", FB),
    ok("${FOO:?aaa}", FB, "xxx", &["FOO"], &[]),
    fails("${BAR:?bbb}", FB),
    fails("${BAZ:?ccc}", FB),
    fails("${BAZ:?}", FB),
    fails("${FOO=aaa}", FB),
    fails("${FOO=:aaa}", FB),
    fails("${FOO=}", &[]),
    ok("${FOO#()[]{\\}^$.\\*\\?|\\\\}", &[("FOO", "()[]{}^$.*?|\\x")], "x", &["FOO"], &[]),
    ok("${FOO%%\\**}", &[("FOO", "xx**")], "xx", &["FOO"], &[]),
    ok("${FOO#*x*y}", &[("FOO", "xxyy")], "y", &["FOO"], &[]),
    ok("${FOO#*}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]),
    ok("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], "xyy", &["FOO", "BAR"], &[]),
    ok("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], "xxyy", &["FOO", "BAR"], &[]),
    ok("${FOO#}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]),
    ok("${FOO##*x}", &[("FOO", "xxyy")], "yy", &["FOO"], &[]),
    ok("${FOO##}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]),
    ok("${FOO#?\\?}", &[("FOO", "???y")], "?y", &["FOO"], &[]),
    ok("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")], ".xxyy.", &["FOO"], &["ABC"]),
    ok("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], "a", &["FOO"], &[]),
    ok("${FOO%}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]),
    ok("${FOO%%$BAR}", &[("FOO", "xxyy"), ("BAR", "")], "xxyy", &["FOO", "BAR"], &[]),
    fails("${FOO:#}", &[]),
    fails("${FOO:##}", &[]),
    fails("${FOO:%}", &[]),
    fails("${FOO:%%}", &[]),
    ok("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
       "/foo.*/*.txt - /foo..*.txt", &["FOO", "NEEDLE"], &[]),
    ok("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
       "/tmp/bar.txt - /bar.txt", &["FOO", "NEEDLE"], &[]),
    ok("${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
       &[("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("REPLACEMENT", "/")],
       "/foo/b/c.txt - /foo/c.txt", &["FOO", "NEEDLE", "REPLACEMENT"], &[]),
    ok("${FOO/$NEEDLE/$REPLACEMENT}", &[("FOO", "http://google.de"), ("NEEDLE", "http://"), ("REPLACEMENT", "https://")],
       "https://google.de", &["FOO", "NEEDLE", "REPLACEMENT"], &[]),
    ok("${FOO//\\//\\/}", &[("FOO", "/tmp/foo.txt")], "\\/tmp\\/foo.txt", &["FOO"], &[]),
    ok("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], "wwxxyy", &["FOO", "BAR"], &[]),
    fails("${FOO//ww}", &[("FOO", "xxyy")]),
    fails("${FOO//}", &[("FOO", "xxyy")]),
    ok("${FOO///}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]),
    ok("${FOO///}", &[], "", &[], &["FOO"]),
    // Additional cases.
    ok("${FOO%.*}", &[("FOO", "a.tar.gz")], "a.tar", &["FOO"], &[]),
    ok("${FOO%%.*}", &[("FOO", "a.tar.gz")], "a", &["FOO"], &[]),
    ok("${FOO##*/}", &[("FOO", "/usr/local/bin")], "bin", &["FOO"], &[]),
    ok("${FOO#*/}", &[("FOO", "/usr/local/bin")], "usr/local/bin", &["FOO"], &[]),
    ok("${FOO/?/Z}", &[("FOO", "abc")], "Zbc", &["FOO"], &[]),
    ok("${FOO//?/Z}", &[("FOO", "héllo")], "ZZZZZ", &["FOO"], &[]),
    ok("$FOO$BAR", &[("FOO", "1")], "1", &["FOO"], &["BAR"]),
    fails("${FOO/\\x/y}", &[("FOO", "x")]),
];

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn process_with_matches() {
    let lex = Lexer::new('\\');
    for c in CASES {
        let got = lex.process_word_with_matches(c.input, c.env);
        let Some(expected) = c.expected else {
            assert!(got.is_err(), "{}: expected error, got {got:?}", c.input);
            continue;
        };
        let r = got.unwrap_or_else(|e| panic!("{}: {e}", c.input));
        assert_eq!(r.result, expected, "{}", c.input);
        assert_eq!(r.matched, set(c.matched), "{} matched", c.input);
        assert_eq!(r.unmatched, set(c.unmatched), "{} unmatched", c.input);
    }
}

#[test]
fn release_file_name_with_platform() {
    let lex = Lexer::new('\\');
    let word =
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
    let base = [("VERSION", "v1.2.3"), ("TARGETOS", "linux")];
    let arm = [
        base[0],
        base[1],
        ("TARGETARCH", "arm"),
        ("TARGETVARIANT", "v7"),
    ];
    assert_eq!(
        lex.process_word(word, &arm).as_deref(),
        Ok("something-v1.2.3.linux-arm-v7.tar.gz")
    );
    let arm64 = [
        base[0],
        base[1],
        ("TARGETARCH", "arm64"),
        ("TARGETVARIANT", ""),
    ];
    assert_eq!(
        lex.process_word(word, &arm64).as_deref(),
        Ok("something-v1.2.3.linux-arm64.tar.gz")
    );
    let no_variant = [base[0], base[1], ("TARGETARCH", "arm64")];
    assert_eq!(
        lex.process_word(word, &no_variant).as_deref(),
        Ok("something-v1.2.3.linux-arm64.tar.gz")
    );
}

#[test]
fn env_lookup_last_wins() {
    use nodekit_dockerfile::{Env, EnvSlice};
    let list = ["foo=bar", "car=hat", "car=bike", "bare"];
    let env = EnvSlice(&list);
    assert_eq!(env.get("car"), Some("bike"));
    assert_eq!(env.get("foo"), Some("bar"));
    assert_eq!(env.get("bare"), Some(""));
    assert_eq!(env.get("FOO"), None, "lookups are case-sensitive");
    let pairs = vec![
        ("A".to_string(), "1".to_string()),
        ("A".to_string(), "2".to_string()),
    ];
    assert_eq!(Env::get(&pairs, "A"), Some("2"));
}

#[test]
fn error_messages() {
    let lex = Lexer::new('\\');
    let msg = |w: &str| {
        lex.process_word(w, &[("X", "v")])
            .err()
            .map(|e| e.message)
            .unwrap_or_default()
    };
    assert_eq!(
        msg("${"),
        "failed to process \"${\": syntax error: missing '}'"
    );
    assert_eq!(
        msg("${X:-a"),
        "failed to process \"${X:-a\": syntax error: missing '}'"
    );
    // Upstream reads the end of input as the modifier character here.
    assert_eq!(
        msg("${X"),
        "failed to process \"${X\": unsupported modifier (\u{FFFD}) in substitution"
    );
    assert_eq!(
        msg("${}"),
        "failed to process \"${}\": syntax error: bad substitution"
    );
    assert_eq!(
        msg("${X:=a}"),
        "failed to process \"${X:=a}\": unsupported modifier (:=) in substitution"
    );
    assert_eq!(
        msg("${X:#a}"),
        "failed to process \"${X:#a}\": unsupported modifier (:#) in substitution"
    );
    assert_eq!(msg("'a"), "failed to process \"'a\": unexpected end of statement while looking for matching single-quote");
    assert_eq!(msg("\"a"), "failed to process \"\\\"a\": unexpected end of statement while looking for matching double-quote");
    assert_eq!(
        msg("${X/a"),
        "failed to process \"${X/a\": syntax error: missing '/' in ${}"
    );
    assert_eq!(msg("${X/\\q/b}"), "failed to process \"${X/\\\\q/b}\": invalid pattern (\\q) in substitution: invalid escape '\\q'");
}
