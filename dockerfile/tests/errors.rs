//! Every parse/validation error with its line number.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit_dockerfile::parse;

/// `(dockerfile, line, message)`.
#[rustfmt::skip]
const CASES: &[(&str, usize, &str)] = &[
    // Unknown instructions (with upstream's suggestion).
    ("FROM a\nFOO bar\n", 2, "unknown instruction: FOO (did you mean FROM?)"),
    ("FROM a\n\nfoo bar\n", 3, "unknown instruction: foo (did you mean from?)"),
    ("FROM a\nXYZZY bar\n", 2, "unknown instruction: XYZZY"),
    ("FROM a\nRUNN x\n", 2, "unknown instruction: RUNN (did you mean RUN?)"),
    ("FROM a\ncopyy a b\n", 2, "unknown instruction: copyy (did you mean copy?)"),
    // Structure.
    ("RUN x\nFROM a\n", 1, "no build stage in current context"),
    ("ARG A\nENV B=1\n", 2, "no build stage in current context"),
    ("FROM a\nRUN <<EOF\nline\n", 2, "unterminated heredoc"),
    ("FROM a\nCOPY <<A <<B /x\nA\n", 2, "unterminated heredoc"),
    ("FROM a\nRUN \\\n  --foo=1 \\\n  x\n", 2, "unknown flag: --foo"),
    // Flags.
    ("FROM a\nCOPY --foo a b\n", 2, "unknown flag: --foo (did you mean from?)"),
    ("FROM a\nCOPY --xyzzy a b\n", 2, "unknown flag: --xyzzy"),
    ("FROM a\nCOPY --chwon=1 a b\n", 2, "unknown flag: --chwon (did you mean chown?)"),
    ("FROM a\nCOPY --chown a b\n", 2, "missing a value on flag: --chown"),
    ("FROM a\nCOPY --link= a b\n", 2, "missing a value on flag: --link"),
    ("FROM a\nCOPY --link=maybe a b\n", 2, "expecting boolean value for flag --link, not: maybe"),
    ("FROM a\nCOPY --from=a --from=b x y\n", 2, "duplicate flag specified: --from"),
    ("FROM a\nADD --from=x a b\n", 2, "unknown flag: --from"),
    ("FROM a\nMAINTAINER --boo joe@example.com\n", 2, "unknown flag: --boo"),
    ("FROM a\nCMD --doit [\"a\"]\n", 2, "unknown flag: --doit"),
    ("FROM a\nENV --x=1 A=b\n", 2, "unknown flag: --x"),
    ("FROM --platfrom=x a\n", 1, "unknown flag: --platfrom (did you mean platform?)"),
    // FROM.
    ("FROM\n", 1, "FROM requires either one or three arguments"),
    ("FROM a b\n", 1, "FROM requires either one or three arguments"),
    ("FROM a AS\n", 1, "FROM requires either one or three arguments"),
    ("FROM a FOR b\n", 1, "FROM requires either one or three arguments"),
    ("FROM a AS 1st\n", 1, "invalid name for build stage: \"1st\", name can't start with a number or contain symbols"),
    ("FROM a AS b/c\n", 1, "invalid name for build stage: \"b/c\", name can't start with a number or contain symbols"),
    // ENV / LABEL / ARG.
    ("FROM a\nENV PATH\n", 2, "ENV must have two arguments"),
    ("FROM a\nLABEL x\n", 2, "LABEL must have two arguments"),
    ("FROM a\nENV a=1 b\n", 2, "Syntax error - can't find = in \"b\". Must be of the form: name=value"),
    ("FROM a\nENV =x\n", 2, "ENV names can not be blank"),
    ("FROM a\nLABEL =x\n", 2, "LABEL names can not be blank"),
    ("FROM a\nENV\n", 2, "ENV requires at least one argument"),
    ("FROM a\nLABEL\n", 2, "LABEL requires at least one argument"),
    ("ARG\nFROM a\n", 1, "ARG requires at least one argument"),
    ("FROM a\nARG =x\n", 2, "ARG names can not be blank"),
    // Exactly one argument.
    ("FROM a\nMAINTAINER\n", 2, "MAINTAINER requires exactly one argument"),
    ("FROM a\nWORKDIR\n", 2, "WORKDIR requires exactly one argument"),
    ("FROM a\nUSER\n", 2, "USER requires exactly one argument"),
    ("FROM a\nSTOPSIGNAL\n", 2, "STOPSIGNAL requires exactly one argument"),
    // At least one argument.
    ("FROM a\nEXPOSE\n", 2, "EXPOSE requires at least one argument"),
    ("FROM a\nVOLUME\n", 2, "VOLUME requires at least one argument"),
    ("FROM a\nVOLUME [\"/a\", \" \"]\n", 2, "VOLUME specified can not be an empty string"),
    ("FROM a\nHEALTHCHECK\n", 2, "HEALTHCHECK requires at least one argument"),
    ("FROM a\nONBUILD\n", 2, "ONBUILD requires at least one argument"),
    ("FROM a\nSHELL []\n", 2, "SHELL requires at least one argument"),
    ("FROM a\nSHELL powershell -command\n", 2, "SHELL requires the arguments to be in JSON form"),
    // ADD / COPY.
    ("FROM a\nCOPY\n", 2, "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
    ("FROM a\nADD x\n", 2, "ADD requires at least two arguments, but only one was provided. Destination could not be determined"),
    ("COPY\t\n\t\tquux \\\n      bar\n", 1, "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
    ("FROM a\nCOPY /foo <<EOF\nEOF\n", 2, "COPY cannot accept a heredoc as a destination"),
    ("FROM a\nCOPY [\"a\", 1]\n", 2, "when using JSON array syntax, arrays must be comprised of strings only"),
    // ONBUILD.
    ("FROM a\nONBUILD ONBUILD RUN touch foobar\n", 2, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD FROM scratch\n", 2, "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD maintainer me\n", 2, "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD --x RUN a\n", 2, "unknown flag: --x"),
    ("FROM a\nONBUILD ENV x\n", 2, "ENV must have two arguments"),
    // HEALTHCHECK.
    ("FROM a\nHEALTHCHECK NONE x\n", 2, "HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK CONNECT TCP 7000\n", 2, "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"),
    ("FROM a\nHEALTHCHECK CMD\n", 2, "Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK CMD []\n", 2, "Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK --interval=50ns CMD x\n", 2, "Interval \"interval\" cannot be less than 1ms"),
    ("FROM a\nHEALTHCHECK --timeout=-1s CMD x\n", 2, "Interval \"timeout\" cannot be less than 1ms"),
    ("FROM a\nHEALTHCHECK --start-period=5 CMD x\n", 2, "time: missing unit in duration \"5\""),
    ("FROM a\nHEALTHCHECK --interval=abc CMD x\n", 2, "time: invalid duration \"abc\""),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", 2, "--retries cannot be negative (-1)"),
    ("FROM a\nHEALTHCHECK --retries=x CMD x\n", 2, "strconv.ParseInt: parsing \"x\": invalid syntax"),
    ("FROM a\nHEALTHCHECK --bogus CMD x\n", 2, "unknown flag: --bogus"),
    // RUN.
    ("FROM a\nRUN --network=bridge x\n", 2, "invalid network mode \"bridge\""),
    ("FROM a\nRUN --network= x\n", 2, "invalid network mode \"\""),
    ("FROM a\nRUN --security=privileged x\n", 2, "security \"privileged\" is not valid"),
    ("FROM a\nRUN --mount=from=$STAGE,target=/x x\n", 2, "'from' doesn't support variable expansion, define alias stage instead"),
    ("FROM a\nRUN --mount= x\n", 2, "failed to parse csv mounts: EOF"),
    ("FROM a\nRUN --mount=a\\\"b x\n", 2, "failed to parse csv mounts: parse error on line 1, column 2: bare \" in non-quoted-field"),
    ("FROM a\nRUN --device=a,b x\n", 2, "invalid field 'b' must be a key=value pair"),
    ("FROM a\nRUN [\"a\", null]\n", 2, "when using JSON array syntax, arrays must be comprised of strings only"),
];

#[test]
fn errors_with_lines() {
    let mut failures = Vec::new();
    for (src, line, message) in CASES {
        match parse(src) {
            Ok(_) => failures.push(format!("{src:?}: parsed without error")),
            Err(e) if (e.line, e.message.as_str()) != (*line, *message) => {
                failures.push(format!("{src:?}: got {}:{}", e.line, e.message));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn display_and_precedence() {
    let e = parse("FROM a\nFOO\nRUN <<EOF\n")
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("Dockerfile:3: unterminated heredoc"),
        "syntax errors come first"
    );
    let e = parse("RUN --foo x\n").err().map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("Dockerfile:1: unknown flag: --foo"),
        "instruction errors before stage check"
    );
}

#[test]
fn lenient_where_upstream_is() {
    for src in [
        "FROM a\nRUN --mount=type=bogus,foo=bar x\n", // mounts are validated after expansion
        "FROM a\nRUN --mount=from=stage$,target=/x x\n", // trailing $ is allowed
        "FROM a\nRUN x \\\n\n  y\n",                  // empty continuation line: warning only
        "FROM a\nSTOPSIGNAL --nope KILL\n",
        "FROM a\nARG --nope x\n",
        "FROM a\nHEALTHCHECK --nope NONE\n",
        "FROM a\nONBUILD NOPE x\n", // trigger validated in the child build
        "ARG X\n",                  // no stages: converter decides
        "FROM a\nCOPY \"a b\" c\n", // quotes handled by expansion
    ] {
        assert!(parse(src).is_ok(), "{src:?}: {:?}", parse(src).err());
    }
}

#[test]
fn hostile_input_is_an_error_not_a_crash() {
    let deep = format!("FROM a\n{}RUN x\n", "ONBUILD ".repeat(5000));
    let e = parse(&deep).err().map(|e| (e.line, e.message));
    assert_eq!(
        e,
        Some((
            2,
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()
        ))
    );
    let nested = format!("{}x{}", "${A:-".repeat(5000), "}".repeat(5000));
    let lex = nodekit_dockerfile::Lexer::new('\\');
    let err = lex
        .process_word(&nested, &nodekit_dockerfile::EmptyEnv)
        .err()
        .map(|e| e.message);
    assert!(err.is_some_and(|m| m.ends_with("variable substitution nested too deeply")));
    let ok = format!("{}x{}", "${A:-".repeat(50), "}".repeat(50));
    assert_eq!(
        lex.process_word(&ok, &nodekit_dockerfile::EmptyEnv)
            .as_deref(),
        Ok("x")
    );
}
