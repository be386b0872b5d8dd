//! Upstream `parser/testfiles/*` cases: each Dockerfile must parse and
//! its AST dump must equal upstream's `result` (the s-expression format of
//! `Node.Dump()`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod cases_escapes;
mod cases_json;
mod cases_misc;

use nodekit_dockerfile::parse_ast;

pub struct Case {
    pub name: &'static str,
    pub dockerfile: &'static str,
    pub dump: &'static str,
}

fn check(cases: &[Case]) {
    for case in cases {
        let ast = parse_ast(case.dockerfile).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(format!("{}\n", ast.dump()), case.dump, "{}", case.name);
    }
}

#[test]
fn escapes_and_continuations() {
    check(cases_escapes::CASES);
}

#[test]
fn json_flags_and_healthcheck() {
    check(cases_json::CASES);
}

#[test]
fn other_upstream_cases() {
    check(cases_misc::CASES);
}
