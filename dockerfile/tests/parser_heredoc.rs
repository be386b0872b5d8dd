//! Heredoc extraction (port of upstream `TestParseExtractsHeredoc`,
//! `TestParseJSONHeredoc`) and heredoc edge cases.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit_dockerfile::{parse_ast, Heredoc};

const DOCKERFILE: &str = "
FROM alpine:3.6

ENV NAME=me

RUN ls

USER <<INVALID
INVALID

RUN <<EMPTY
EMPTY

RUN 3<<EMPTY2
EMPTY2

RUN \"<<NOHEREDOC\"

RUN <<INDENT
\tfoo
\tbar
INDENT

RUN <<-UNINDENT
\tbaz
\tquux
UNINDENT

RUN <<-UNINDENT2
\tbaz
\tquux
\tUNINDENT2

RUN <<-EXPAND
\texpand $NAME
EXPAND

RUN <<-'NOEXPAND'
\tdon't expand $NAME
NOEXPAND

RUN <<COPY
echo hello world
echo foo bar
COPY

RUN <<COMMENT
# internal comment
echo hello world
echo foo bar # trailing comment
COMMENT

RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT

COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2

COPY <<EOF /quotes
\"foo\"
'bar'
EOF

COPY <<X <<Y /dest
Y
X
X
Y

RUN <<COMPLEX python3
print('hello world')
COMPLEX

COPY <<file.txt /dest
hello world
file.txt

RUN <<eo'f'
echo foo
eof

RUN <<eo\\'f
echo foo
eo'f

RUN <<'e'o\\'f
echo foo
eo'f

RUN <<'one two'
echo bar
one two

RUN <<$EOF
$EOF

RUN <<  EOF
EOF

RUN <<  EOF  > foo
EOF
\t";

/// `(name, content, expand, chomp, fd)`.
type Doc = (&'static str, &'static str, bool, bool, u64);

#[rustfmt::skip]
const EXPECTED: &[&[Doc]] = &[
    &[], // ENV NAME=me
    &[], // RUN ls
    &[], // USER <<INVALID (USER cannot carry heredocs)
    &[], // INVALID
    &[("EMPTY", "", true, false, 0)],
    &[("EMPTY2", "", true, false, 3)],
    &[], // RUN "<<NOHEREDOC"
    &[("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
    &[("UNINDENT", "\tbaz\n\tquux\n", true, true, 0)],
    &[("UNINDENT2", "\tbaz\n\tquux\n", true, true, 0)],
    &[("EXPAND", "\texpand $NAME\n", true, true, 0)],
    &[("NOEXPAND", "\tdon't expand $NAME\n", false, true, 0)],
    &[("COPY", "echo hello world\necho foo bar\n", true, false, 0)],
    &[("COMMENT", "# internal comment\necho hello world\necho foo bar # trailing comment\n", true, false, 0)],
    &[("MOUNT", "echo hello\n", true, false, 0)],
    &[("FILE1", "content 1\n", true, false, 0), ("FILE2", "content 2\n", true, false, 0)],
    &[("EOF", "\"foo\"\n'bar'\n", true, false, 0)],
    &[("X", "Y\n", true, false, 0), ("Y", "X\n", true, false, 0)],
    &[("COMPLEX", "print('hello world')\n", true, false, 0)],
    &[("file.txt", "hello world\n", true, false, 0)],
    &[("eof", "echo foo\n", false, false, 0)],
    &[("eo'f", "echo foo\n", true, false, 0)],
    &[("eo'f", "echo foo\n", false, false, 0)],
    &[("one two", "echo bar\n", false, false, 0)],
    &[("$EOF", "", true, false, 0)],
    &[("EOF", "", true, false, 0)],
    &[("EOF", "", true, false, 0)],
];

fn docs(h: &[Heredoc]) -> Vec<(&str, &str, bool, bool, u64)> {
    h.iter()
        .map(|d| {
            (
                d.name.as_str(),
                d.content.as_str(),
                d.expand,
                d.chomp,
                d.file_descriptor,
            )
        })
        .collect()
}

#[test]
fn extracts_heredocs() {
    let ast = parse_ast(DOCKERFILE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ast.nodes.len(), EXPECTED.len() + 1);
    for (i, want) in EXPECTED.iter().enumerate() {
        let node = &ast.nodes[i + 1];
        assert_eq!(
            docs(&node.heredocs),
            want.to_vec(),
            "node {} ({})",
            i + 1,
            node.original
        );
    }
}

#[test]
fn json_form_has_no_heredocs() {
    let ast = parse_ast("FROM alpine\nRUN [\"whoami\"]\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ast.nodes.len(), 4);
    assert!(ast.nodes.iter().all(|n| n.heredocs.is_empty()));
}

#[test]
fn heredoc_lines_and_crlf() {
    let src = "FROM a\r\nRUN <<EOF\r\necho hi\r\nEOF\r\nRUN true\r\n";
    let ast = parse_ast(src).unwrap_or_else(|e| panic!("{e}"));
    let run = &ast.nodes[1];
    assert_eq!((run.start_line, run.end_line), (2, 4));
    assert_eq!(run.heredocs[0].content, "echo hi\r\n");
    assert_eq!((ast.nodes[2].start_line, ast.nodes[2].end_line), (5, 5));
}

#[test]
fn onbuild_heredoc() {
    let ast = parse_ast("FROM a\nONBUILD RUN <<EOF\nhi\nEOF\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ast.nodes[1].heredocs.len(), 1);
    assert_eq!(ast.nodes[1].heredocs[0].content, "hi\n");
    assert_eq!(ast.nodes[1].end_line, 4);
}

#[test]
fn heredoc_body_is_not_parsed() {
    // Comments, continuations and directives inside a body are content.
    let src = "FROM a\nRUN <<EOF\n# escape=`\nline \\\n\nEOF\nRUN b\n";
    let ast = parse_ast(src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ast.nodes[1].heredocs[0].content, "# escape=`\nline \\\n\n");
    assert_eq!(ast.escape, '\\');
    assert_eq!(ast.nodes[2].start_line, 7);
}

#[test]
fn unbalanced_quotes_in_line_mean_no_heredoc() {
    let ast = parse_ast("FROM a\nRUN <<'EOF\nEOF\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(ast.nodes[1].heredocs.is_empty());
    assert_eq!(ast.nodes[2].command, "EOF");
}
