//! Line handling: line numbers, continuations with comments and empty
//! lines, directives, BOM, comments, negative upstream test files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit_dockerfile::{parse, parse_ast, ParseError};

/// Upstream `testfile-line/Dockerfile`.
const LINE_INFO: &str = "# ESCAPE=\\



FROM brimstone/ubuntu:14.04


# TORUN -v /var/run/docker.sock:/var/run/docker.sock


ENV GOPATH \\
/go



# Install the packages we need, clean up after them and us
RUN apt-get update \\
\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.clean \\


    && apt-get --no-install-recommends install -y git golang ca-certificates \\
    && apt-get clean \\
    && rm -rf /var/lib/apt/lists \\

\t&& go get -v github.com/brimstone/consuldock \\
    && mv $GOPATH/bin/consuldock /usr/local/bin/consuldock \\

\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.dirty \\
\t&& apt-get remove --purge -y $(diff /tmp/dpkg.clean /tmp/dpkg.dirty | awk '/^>/ {print $2}') \\
\t&& rm /tmp/dpkg.* \\
\t&& rm -rf $GOPATH




";

fn err(src: &str) -> ParseError {
    match parse(src) {
        Ok(df) => panic!("expected an error for {src:?}, got {df:?}"),
        Err(e) => e,
    }
}

#[test]
fn includes_line_numbers() {
    let ast = parse_ast(LINE_INFO).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<(usize, usize)> = ast
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(lines, [(5, 5), (11, 12), (17, 31)]);
    assert_eq!(ast.directives.len(), 1);
    assert_eq!(
        (ast.directives[0].name.as_str(), ast.directives[0].line),
        ("escape", 1)
    );
    assert_eq!(ast.warnings.len(), 1, "empty continuation lines in RUN");
}

#[test]
fn warns_on_empty_continuation_line() {
    let src = "
FROM alpine:3.6

RUN valid \\
    continuation

RUN something \\

    following \\

    more

RUN another \\

    thing

RUN non-indented \\
# this is a comment
   after-comment

RUN indented \\
    # this is an indented comment
    comment
\t";
    let ast = parse_ast(src).unwrap_or_else(|e| panic!("{e}"));
    let w = &ast.warnings;
    assert_eq!(w.len(), 2);
    assert!(
        w[0].message.starts_with("Empty continuation line found in"),
        "{}",
        w[0].message
    );
    assert!(w[0]
        .message
        .contains("RUN something     following     more"));
    assert_eq!(w[0].line, 11);
    assert!(w[1].message.contains("RUN another     thing"));
    let originals: Vec<&str> = ast.nodes.iter().map(|n| n.original.as_str()).collect();
    assert_eq!(originals[4], "RUN non-indented    after-comment");
    assert_eq!(originals[5], "RUN indented     comment");
}

#[test]
fn directives() {
    let df = parse("# syntax = docker/dockerfile:1 // opts\n#ESCAPE=`\n# check=skip=all;error=true\nFROM a `\n  AS b\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let d: Vec<(&str, &str, usize)> = df
        .directives
        .iter()
        .map(|d| (d.name.as_str(), d.value.as_str(), d.line))
        .collect();
    assert_eq!(
        d,
        [
            ("syntax", "docker/dockerfile:1 // opts", 1),
            ("escape", "`", 2),
            ("check", "skip=all;error=true", 3)
        ]
    );
    assert_eq!(df.escape, '`');
    assert_eq!(df.directive("SYNTAX"), Some("docker/dockerfile:1 // opts"));
    assert_eq!(df.stages[0].name.as_deref(), Some("b"));
}

#[test]
fn directives_stop_at_first_other_line() {
    for src in [
        "# comment\n# escape=`\nFROM a\n",
        "\n# escape=`\nFROM a\n",
        "# unknown=x\n# escape=`\nFROM a\n",
    ] {
        let df = parse(src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(df.escape, '\\', "{src:?}");
        assert!(df.directive("escape").is_none());
    }
    let df = parse("   # escape=`\nFROM a\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(df.escape, '`', "leading blanks are allowed");
    let df = parse("FROM a\n# syntax=x\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(df.directives.is_empty());
}

#[test]
fn directive_errors() {
    let e = err("# escape=`\n# syntax=a\n# ESCAPE=\\\nFROM a\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "only one escape parser directive can be used")
    );
    let e = err("# syntax=a\n# escape=x\nFROM a\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "invalid escape token 'x' does not match ` or \\")
    );
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: invalid escape token 'x' does not match ` or \\"
    );
}

#[test]
fn byte_order_mark_is_ignored() {
    let df = parse("\u{feff}# escape=`\nFROM a\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(df.escape, '`');
    assert_eq!(df.stages[0].from.image, "a");
}

#[test]
fn comments_are_attached() {
    let ast = parse_ast("# syntax=x\n# first\n#\n# second\n\n# third\nFROM a\nRUN b\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ast.nodes[0].comments, ["second", "third"]);
    assert!(ast.nodes[1].comments.is_empty());
}

#[test]
fn negative_upstream_files() {
    let e = err("");
    assert_eq!(
        (e.line, e.message.as_str()),
        (1, "file with no instructions")
    );
    let e = err("# Hello\n# These are just comments\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "file with no instructions")
    );
    let e = err("FROM busybox\n\nENV PATH\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "ENV must have two arguments")
    );
    let e = err("CMD [ \"echo\", [ \"nested json\" ] ]\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (
            1,
            "when using JSON array syntax, arrays must be comprised of strings only"
        )
    );
}

#[test]
fn too_long_line() {
    let long = "a".repeat(65536);
    let e = err(&format!("\nFROM image\nLABEL test={long}\n"));
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "dockerfile line greater than max allowed size of 65535")
    );
    let fits = "a".repeat(65535 - "LABEL a=".len());
    assert!(parse(&format!("FROM image\nLABEL a={fits}\n")).is_ok());
}

#[test]
fn continuation_edge_cases() {
    let ast = parse_ast("FROM a\nRUN a \\\\\nRUN b\\  \t\n  c\nRUN d \\")
        .unwrap_or_else(|e| panic!("{e}"));
    let originals: Vec<&str> = ast.nodes.iter().map(|n| n.original.as_str()).collect();
    assert_eq!(originals, ["FROM a", "RUN a \\\\", "RUN b  c", "RUN d "]);
    assert_eq!((ast.nodes[2].start_line, ast.nodes[2].end_line), (3, 4));
    let ast = parse_ast("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ast.nodes[1].original, "RUN dir c:\\   && echo");
}

#[test]
fn instruction_keywords_are_case_insensitive() {
    let df = parse("from a AS Build\nrun echo\nCoPy --FROM=x a b\n").map_err(|e| e.to_string());
    assert_eq!(
        df.err().as_deref(),
        Some("Dockerfile:3: unknown flag: --FROM")
    );
    let df = parse("from a AS Build\nrun echo\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[0].instructions[0].keyword, "run");
}
