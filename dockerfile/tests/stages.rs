//! Stages, global ARGs, stage lookup, ONBUILD trigger parsing and the
//! expansion helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit_dockerfile::{parse, parse_instruction, InstructionKind as K, Lexer};

const MULTI: &str = "# syntax=docker/dockerfile:1
ARG BASE=alpine
ARG TAG
FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-3} AS Build
ARG TAG
RUN make \\
    all
COPY --from=0 /a /b

FROM scratch
COPY --from=build /out /
";

#[test]
fn stages_and_global_args() {
    let df = parse(MULTI).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(df.global_args.len(), 2);
    assert_eq!(df.global_args[0].start_line, 2);
    assert!(
        matches!(&df.global_args[0].kind, K::Arg(a) if a[0].key == "BASE" && a[0].default.as_deref() == Some("alpine"))
    );
    assert_eq!(df.stages.len(), 2);
    let build = &df.stages[0];
    assert_eq!(
        (build.name.as_deref(), build.platform.as_deref(), build.line),
        (Some("build"), Some("$BUILDPLATFORM"), 4)
    );
    assert_eq!(build.from.image, "${BASE}:${TAG:-3}");
    assert_eq!(
        build.from.original,
        "FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-3} AS Build"
    );
    let lines: Vec<(usize, usize)> = build
        .instructions
        .iter()
        .map(|i| (i.start_line, i.end_line))
        .collect();
    assert_eq!(lines, [(5, 5), (6, 7), (8, 8)]);
    assert_eq!(build.instructions[1].original, "RUN make     all");
    assert_eq!(build.instructions[1].name(), "RUN");
    let last = &df.stages[1];
    assert_eq!(
        (last.name.as_deref(), last.line, last.instructions.len()),
        (None, 10, 1)
    );
}

#[test]
fn stage_index_by_name_or_number() {
    let df = parse(MULTI).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(df.stage_index("build"), Some(0));
    assert_eq!(df.stage_index("BUILD"), Some(0));
    assert_eq!(df.stage_index("1"), Some(1));
    assert_eq!(df.stage_index("2"), None);
    assert_eq!(df.stage_index("scratch"), None);
}

#[test]
fn expanding_from_with_global_args() {
    let df = parse(MULTI).unwrap_or_else(|e| panic!("{e}"));
    let lex = Lexer::new(df.escape);
    let args = [("BASE", "alpine"), ("BUILDPLATFORM", "linux/amd64")];
    let from = &df.stages[0].from;
    let r = lex
        .process_word_with_matches(&from.image, &args)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.result, "alpine:3");
    assert_eq!(r.unmatched.iter().collect::<Vec<_>>(), ["TAG"]);
    let platform = from.platform.as_deref().unwrap_or_default();
    assert_eq!(
        lex.process_word(platform, &args).as_deref(),
        Ok("linux/amd64")
    );
}

#[test]
fn expand_words_like_upstream() {
    let src = "FROM a\nENV A=$X B=\"q $X\" C='$X'\nCOPY --from=$X --chown=$X:$X --chmod=$EMPTY $X/* /d/$X\nWORKDIR /w/$X\nEXPOSE $X\nRUN echo $X\n";
    let df = parse(src).unwrap_or_else(|e| panic!("{e}"));
    let lex = Lexer::new('\\');
    let env = [("X", "v"), ("EMPTY", "")];
    let mut out = Vec::new();
    for mut inst in df.stages[0].instructions.clone() {
        let expands = inst.expands_words();
        inst.expand_words(|w| lex.process_word(w, &env))
            .unwrap_or_else(|e| panic!("{e}"));
        out.push((expands, inst.kind));
    }
    let K::Env(kvs) = &out[0].1 else { panic!() };
    let values: Vec<&str> = kvs.iter().map(|k| k.value.as_str()).collect();
    assert_eq!(values, ["v", "q v", "$X"]);
    let K::Copy(c) = &out[1].1 else { panic!() };
    assert_eq!(
        (c.from.as_deref(), c.chown.as_deref(), c.chmod.as_deref()),
        (Some("$X"), Some("v:v"), None)
    );
    assert_eq!(
        (c.sources.clone(), c.dest.as_str()),
        (vec!["v/*".to_string()], "/d/v")
    );
    assert!(matches!(&out[2].1, K::Workdir(w) if w == "/w/v"));
    assert!(
        matches!(&out[3].1, K::Expose(p) if p == &["$X"]),
        "EXPOSE uses process_words in the converter"
    );
    assert!(matches!(&out[4].1, K::Run(r) if r.command.shell_command() == Some("echo $X")));
    let flags: Vec<bool> = out.iter().map(|o| o.0).collect();
    assert_eq!(flags, [true, true, true, false, true]);
}

#[test]
fn expand_heredoc_contents() {
    let df = parse("FROM a\nCOPY <<EOF <<'RAW' /d/\nhi \"$X\" \\$X\nEOF\n$X\nRAW\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut inst = df.stages[0].instructions[0].clone();
    let lex = Lexer::for_heredoc();
    inst.expand_contents(|w| lex.process_word(w, &[("X", "1")]))
        .unwrap_or_else(|e| panic!("{e}"));
    let K::Copy(c) = &inst.kind else { panic!() };
    assert_eq!(c.contents[0].data, "hi \"1\" $X\n");
    assert_eq!(c.contents[1].data, "$X\n");
}

#[test]
fn onbuild_trigger_from_image_config() {
    let inst = parse_instruction("COPY --from=build /a /b").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(&inst.kind, K::Copy(c) if c.from.as_deref() == Some("build")));
    assert_eq!(inst.start_line, 1);
    let inst = parse_instruction("RUN <<EOF\necho hi\nEOF").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(&inst.kind, K::Run(r) if r.heredocs[0].content == "echo hi\n"));
    let err = |s: &str| parse_instruction(s).err().map(|e| e.message);
    assert_eq!(err("FROM x").as_deref(), Some("FROM is not a command type"));
    assert_eq!(
        err("RUN a\nRUN b").as_deref(),
        Some("onbuild trigger should be a single expression")
    );
    assert_eq!(err("BOGUS").as_deref(), Some("unknown instruction: BOGUS"));
}
