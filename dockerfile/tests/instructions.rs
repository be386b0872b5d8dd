//! Typed instructions and their flags.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit_dockerfile::{parse, ArgDef, InstructionKind as K, KeyValue};

/// Parses `FROM base` + `line` and returns the instruction's kind.
fn one(line: &str) -> K {
    let df = parse(&format!("FROM base\n{line}\n")).unwrap_or_else(|e| panic!("{line}: {e}"));
    df.stages[0].instructions[0].kind.clone()
}

fn kv(key: &str, value: &str, legacy: bool) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
        legacy,
    }
}

#[test]
fn env_label_arg() {
    assert_eq!(one("ENV A b c"), K::Env(vec![kv("A", "b c", true)]));
    assert_eq!(
        one("ENV A=1 B=\"x y\" C=a\\ b"),
        K::Env(vec![
            kv("A", "1", false),
            kv("B", "\"x y\"", false),
            kv("C", "a\\ b", false)
        ])
    );
    assert_eq!(
        one("LABEL maintainer Someone <a@b>"),
        K::Label(vec![kv("maintainer", "Someone <a@b>", true)])
    );
    assert_eq!(
        one("LABEL \"com.x\"=\"v 1\" k="),
        K::Label(vec![kv("\"com.x\"", "\"v 1\"", false), kv("k", "", false)])
    );
    let arg = |k: &str, d: Option<&str>| ArgDef {
        key: k.into(),
        default: d.map(String::from),
    };
    assert_eq!(
        one("ARG a b=2 c= d=\"x y\""),
        K::Arg(vec![
            arg("a", None),
            arg("b", Some("2")),
            arg("c", Some("")),
            arg("d", Some("\"x y\""))
        ])
    );
    assert_eq!(
        one("ARG --ignored a").name(),
        "ARG",
        "upstream does not validate ARG flags"
    );
}

#[test]
fn add_flags() {
    let K::Add(a) = one("ADD --chown=1:2 --chmod=755 --link --keep-git-dir=false --checksum=sha256:abc --unpack=true --exclude=*.md --exclude=x a b /dst/") else { panic!() };
    assert_eq!(
        (a.sources, a.dest),
        (vec!["a".into(), "b".into()], "/dst/".to_string())
    );
    assert_eq!(
        (
            a.chown.as_deref(),
            a.chmod.as_deref(),
            a.checksum.as_deref()
        ),
        (Some("1:2"), Some("755"), Some("sha256:abc"))
    );
    assert_eq!(
        (a.link, a.keep_git_dir, a.unpack),
        (true, Some(false), Some(true))
    );
    assert_eq!(a.excludes, ["*.md", "x"]);
    let K::Add(a) = one("ADD [\"a b\", \"/c d\"]") else {
        panic!()
    };
    assert_eq!(
        (a.sources, a.dest, a.keep_git_dir, a.unpack, a.link),
        (vec!["a b".into()], "/c d".into(), None, None, false)
    );
    let K::Add(a) = one("ADD --chown= a b") else {
        panic!()
    };
    assert_eq!(a.chown, None);
}

#[test]
fn copy_flags() {
    let K::Copy(c) = one("COPY --from=build --chown=$UID --chmod=0644 --link=true --parents --exclude=a --exclude=b x /y") else { panic!() };
    assert_eq!(
        (c.from.as_deref(), c.chown.as_deref(), c.chmod.as_deref()),
        (Some("build"), Some("$UID"), Some("0644"))
    );
    assert_eq!(
        (c.link, c.parents, c.excludes),
        (true, true, vec!["a".to_string(), "b".to_string()])
    );
    let K::Copy(c) = one("COPY -- --weird /y") else {
        panic!()
    };
    assert_eq!((c.sources, c.from), (vec!["--weird".to_string()], None));
    let K::Copy(c) = one("COPY --from= x y") else {
        panic!()
    };
    assert_eq!(c.from, None);
}

#[test]
fn copy_heredoc_sources() {
    let df = parse("FROM a\nCOPY <<EOF1 <<-EOF2 foo.txt /bar\nfirst\nEOF1\n\tsecond $X\n\tEOF2\nCOPY <<'Q' /q\n$Y\nQ\n").unwrap_or_else(|e| panic!("{e}"));
    let K::Copy(c) = &df.stages[0].instructions[0].kind else {
        panic!()
    };
    assert_eq!(c.sources, ["foo.txt"]);
    let got: Vec<(&str, &str, bool)> = c
        .contents
        .iter()
        .map(|s| (s.path.as_str(), s.data.as_str(), s.expand))
        .collect();
    assert_eq!(
        got,
        [("EOF1", "first\n", true), ("EOF2", "second $X\n", true)]
    );
    let K::Copy(c) = &df.stages[0].instructions[1].kind else {
        panic!()
    };
    assert_eq!(
        (c.contents[0].data.as_str(), c.contents[0].expand),
        ("$Y\n", false)
    );
    assert_eq!(df.stages[0].instructions[1].start_line, 7);
}

#[test]
fn simple_instructions() {
    assert_eq!(
        one("EXPOSE 8080/tcp 443 $PORT"),
        K::Expose(vec!["$PORT".into(), "443".into(), "8080/tcp".into()])
    );
    assert_eq!(
        one("VOLUME [\"/a\", \" /b \"]"),
        K::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        one("VOLUME /a /b"),
        K::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(one("USER app:app"), K::User("app:app".into()));
    assert_eq!(
        one("USER a b"),
        K::User("a b".into()),
        "whole rest is one argument"
    );
    assert_eq!(one("WORKDIR /srv/$APP"), K::Workdir("/srv/$APP".into()));
    assert_eq!(one("STOPSIGNAL SIGKILL"), K::StopSignal("SIGKILL".into()));
    assert_eq!(
        one("STOPSIGNAL --x SIGKILL"),
        K::StopSignal("SIGKILL".into()),
        "flags unchecked upstream"
    );
    assert_eq!(
        one("MAINTAINER Jane <j@x>"),
        K::Maintainer("Jane <j@x>".into())
    );
}
