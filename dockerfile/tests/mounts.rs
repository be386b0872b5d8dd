//! `RUN --mount` resolution: keys, defaults, validation and expansion.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit_dockerfile::{parse, InstructionKind, Lexer, Mount, MountSpec, MountType, ShareMode};

fn resolve(raw: &str) -> Result<Mount, String> {
    MountSpec { raw: raw.into() }
        .resolve_literal()
        .map_err(|e| e.message)
}

fn ok(raw: &str) -> Mount {
    resolve(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
}

#[test]
fn defaults_and_keys() {
    let m = ok("target=/src");
    assert_eq!(
        (m.mount_type, m.read_only, m.target.as_deref()),
        (MountType::Bind, true, Some("/src"))
    );
    let m = ok("type=bind,from=build,source=/out,dst=/in,rw");
    assert_eq!(
        (
            m.from.as_deref(),
            m.source.as_deref(),
            m.target.as_deref(),
            m.read_only
        ),
        (Some("build"), Some("/out"), Some("/in"), false)
    );
    let m =
        ok("type=cache,target=/root/.cache,id=go,sharing=locked,mode=0755,uid=1000,gid=1000,ro");
    assert_eq!(
        (m.cache_id.as_deref(), m.sharing, m.read_only),
        (Some("go"), Some(ShareMode::Locked), true)
    );
    assert_eq!(
        (m.mode, m.uid, m.gid),
        (Some(0o755), Some(1000), Some(1000))
    );
    assert!(
        !ok("type=cache,target=/c").read_only,
        "cache defaults to read-write"
    );
    let m = ok("type=tmpfs,destination=/t,size=64m");
    assert_eq!((m.size_limit, m.read_only), (Some(64 << 20), false));
    let m = ok("type=secret,id=tok,env=TOKEN,required");
    assert_eq!(
        (
            m.cache_id.as_deref(),
            m.env.as_deref(),
            m.required,
            m.read_only
        ),
        (Some("tok"), Some("TOKEN"), true, true)
    );
    let m = ok("type=secret,src=/run/s,target=/s,required=false,readonly=false");
    assert_eq!(
        (m.source.as_deref(), m.required, m.read_only),
        (Some("/run/s"), false, false)
    );
    let m = ok("TYPE=SSH,ID=default,Required=true");
    assert_eq!(
        (m.mount_type, m.cache_id.as_deref(), m.required),
        (MountType::Ssh, Some("default"), true)
    );
    let m = ok("type=secret,id=x,env=");
    assert_eq!(
        (m.env.as_deref(), m.source, m.target),
        (Some(""), None, None)
    );
    let m = ok("type=bind,\"source=a,b\",target=/x");
    assert_eq!(m.source.as_deref(), Some("a,b"));
}

#[test]
fn validation_errors() {
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("type=cahce", "unsupported mount type \"cahce\" (did you mean cache?)"),
        ("type=volume", "unsupported mount type \"volume\""),
        ("target=/x,foo=bar", "unexpected key 'foo' in 'foo=bar' (did you mean from?)"),
        ("target=/x,zzzz=bar", "unexpected key 'zzzz' in 'zzzz=bar'"),
        ("target=/x,targt=/y", "unexpected key 'targt' in 'targt=/y' (did you mean target?)"),
        ("target=/x,nonsense", "invalid field 'nonsense' must be a key=value pair"),
        ("target=/x,required", "unexpected key 'required' for mount type 'bind'"),
        ("type=cache,required=true", "unexpected key 'required' for mount type 'cache'"),
        ("target=/x,size=1m", "unexpected key 'size' for mount type 'bind'"),
        ("type=tmpfs,size=lots", "invalid value for size: lots"),
        ("target=/x,mode=0644", "mode not allowed for \"bind\" type mounts"),
        ("type=tmpfs,uid=1", "uid not allowed for \"tmpfs\" type mounts"),
        ("target=/x,gid=1", "gid not allowed for \"bind\" type mounts"),
        ("type=cache,mode=999", "invalid value 999 for mode"),
        ("type=cache,uid=-1", "invalid value -1 for uid"),
        ("type=cache,gid=x", "invalid value x for gid"),
        ("target=/x,ro=maybe", "invalid value for ro: maybe"),
        ("target=/x,rw=2", "invalid value for rw: 2"),
        ("type=cache,sharing=all", "unsupported sharing value \"all\""),
        ("type=secret,id=a,from=b", "secret mount should not have a from"),
        ("type=secret,id=a,sharing=shared", "secret mount should not define sharing"),
        ("type=secret", "invalid secret mount. one of source, target required"),
        ("type=secret,source=a,id=b", "both source and id can't be set"),
        ("target=/x,sharing=private", "invalid cache sharing set for bind mount"),
        ("", "failed to parse csv mounts: EOF"),
    ];
    for (raw, msg) in cases {
        assert_eq!(resolve(raw).err().as_deref(), Some(*msg), "{raw}");
    }
}

#[test]
fn values_are_expanded_before_validation() {
    let lex = Lexer::new('\\');
    let env = [("T", "cache"), ("DIR", "/root/.cache"), ("ID", "")];
    let spec = MountSpec {
        raw: "type=$T,target=${DIR}/go,id=${ID}".into(),
    };
    let m = spec
        .resolve(|w| lex.process_word(w, &env))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (m.mount_type, m.target.as_deref(), m.cache_id),
        (MountType::Cache, Some("/root/.cache/go"), None)
    );
    let bad = MountSpec {
        raw: "type=$X".into(),
    };
    let err = bad
        .resolve(|w| lex.process_word(w, &env))
        .err()
        .map(|e| e.message);
    assert_eq!(err.as_deref(), Some("unsupported mount type \"\""));
    let failing = MountSpec {
        raw: "target=${X:?needed}".into(),
    };
    let err = failing
        .resolve(|w| lex.process_word(w, &env))
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(err.ends_with("X: needed"), "{err}");
}

#[test]
fn from_value_without_expansion() {
    let spec = |raw: &str| MountSpec { raw: raw.into() };
    assert_eq!(
        spec("type=$T,from=build,target=/x").from_value().as_deref(),
        Some("build")
    );
    assert_eq!(spec("FROM=a,from=b").from_value().as_deref(), Some("b"));
    assert_eq!(spec("from=,target=/x").from_value(), None);
    assert_eq!(spec("target=/x").from_value(), None);
}

#[test]
fn resolve_mounts_of_run() {
    let df = parse("FROM a\nRUN --mount=type=secret,id=$S,target=/s --mount=type=ssh cat /s\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let InstructionKind::Run(run) = &df.stages[0].instructions[0].kind else {
        panic!()
    };
    let lex = Lexer::new(df.escape);
    let mounts = run
        .resolve_mounts(|w| lex.process_word(w, &[("S", "tok")]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[0].cache_id.as_deref(), Some("tok"));
    assert_eq!(
        (mounts[1].mount_type, mounts[1].read_only),
        (MountType::Ssh, true)
    );
}
