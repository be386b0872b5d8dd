//! Sources, state settings and platforms.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::{amd64, build, build_with, caps, digests, exec_of, options, result, source_of};
use nodekit_llb_builder::{
    image, local, marshal, scratch, BuildError, Image, Local, LocalDiffer, ResolveMode,
};
use nodekit_proto::pb;

fn arm64(arch: &str, variant: &str) -> pb::Platform {
    pb::Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: variant.into(),
        ..Default::default()
    }
}

#[test]
fn state_settings() {
    let s = scratch().env("A", "1").env("B", "2").env("A", "3");
    assert_eq!(s.env_list(), ["B=2", "A=3"]);
    assert_eq!(s.get_env("A"), Some("3"));
    assert_eq!(s.get_dir(), "/");
    let s = s.dir("a/b").dir("../c").dir("");
    assert_eq!(s.get_dir(), "/a/c");
    assert_eq!(
        s.dir("/abs/../x/").get_dir(),
        "/abs/../x/",
        "absolute dirs are kept as given"
    );
    let s = s
        .user("app")
        .hostname("h")
        .network(pb::NetMode::None)
        .cgroup_parent("cg");
    assert_eq!(
        (s.get_user(), s.get_hostname(), s.get_cgroup_parent()),
        ("app", "h", "cg")
    );
    assert_eq!(s.get_network(), pb::NetMode::None);
    assert_eq!(
        s.platform(arm64("aarch64", "v8")).get_platform(),
        Some(&arm64("arm64", ""))
    );
}

#[test]
fn image_platform_reaches_the_source_and_later_runs() {
    let state = Image::new("alpine:3.20")
        .platform(arm64("aarch64", "v8"))
        .into_state();
    assert_eq!(
        state.get_platform(),
        Some(&arm64("arm64", "")),
        "the state's is normalised"
    );
    let def = build(&state.run(["true"]).root());
    let all = common::ops(&def);
    assert_eq!(
        all[0].platform,
        Some(arm64("aarch64", "v8")),
        "the source's is as given"
    );
    assert_eq!(all[1].platform, Some(arm64("arm64", "")));
    assert_eq!(
        source_of(&all[0]).identifier,
        "docker-image://docker.io/library/alpine:3.20"
    );
    // Without a platform the marshal default applies.
    let (op, _) = result(&build(&image("alpine").run(["true"]).root()));
    assert_eq!(op.platform, Some(amd64()));
    // Run platform overrides and the result takes it.
    let root = image("alpine")
        .run(["true"])
        .platform(arm64("arm64", ""))
        .root();
    assert_eq!(root.get_platform(), Some(&arm64("arm64", "")));
}

#[test]
fn image_options() {
    let digest = format!("sha256:{}", "b".repeat(64));
    let state = Image::new("ghcr.io/org/tool")
        .resolve_mode(ResolveMode::ForcePull)
        .layer_limit(2)
        .checksum(&digest)
        .internal()
        .custom_name("load tool")
        .into_state();
    let def = build(&state);
    let source = source_of(&common::ops(&def)[0]).clone();
    assert_eq!(source.identifier, "docker-image://ghcr.io/org/tool:latest");
    let attrs: Vec<(&str, &str)> = source
        .attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let want = [
        ("image.checksum", digest.as_str()),
        ("image.layerlimit", "2"),
        ("image.recordtype", "internal"),
        ("image.resolvemode", "pull"),
    ];
    assert_eq!(attrs, want);
    let d = &digests(&def)[0];
    let want = [
        "source.image",
        "source.image.checksum",
        "source.image.layerlimit",
        "source.image.resolvemode",
    ];
    assert_eq!(caps(&def, d), want);
    assert_eq!(def.metadata[d].description["llb.customname"], "load tool");
    let prefer = build(
        &Image::new("alpine")
            .resolve_mode(ResolveMode::PreferLocal)
            .into_state(),
    );
    assert_eq!(caps(&prefer, &digests(&prefer)[0]), ["source.image"]);
}

#[test]
fn invalid_sources_fail_at_marshal() {
    let err = marshal(&image("Not/Valid")).err();
    assert!(
        matches!(err, Some(BuildError::InvalidImageRef { .. })),
        "{err:?}"
    );
    let err = marshal(&image("Not/Valid").run(["true"]).root()).err();
    assert!(
        matches!(err, Some(BuildError::InvalidImageRef { .. })),
        "{err:?}"
    );
    assert_eq!(
        marshal(&local("")).err(),
        Some(BuildError::EmptySourceIdentifier)
    );
    assert_eq!(marshal(&scratch()), Ok(pb::Definition::default()));
}

#[test]
fn local_options_and_unique_id() {
    let state = Local::new("ctx")
        .follow_paths(&["Dockerfile".to_string()])
        .differ(LocalDiffer::None, true)
        .metadata_only_transfer(&["*.go".to_string()])
        .into_state();
    let mut opts = options();
    opts.local_unique_id = Some("u1".into());
    let def = build_with(&state, &opts);
    let source = source_of(&common::ops(&def)[0]).clone();
    let keys: Vec<&str> = source.attrs.keys().map(String::as_str).collect();
    let want = [
        "local.differ",
        "local.followpaths",
        "local.metadatatransfer",
        "local.metadatatransferexclude",
        "local.unique",
    ];
    assert_eq!(keys, want);
    assert_eq!(source.attrs["local.unique"], "u1");
    let want = [
        "source.local",
        "source.local.differ",
        "source.local.followpaths",
        "source.local.metadatatransfer",
        "source.local.unique",
    ];
    assert_eq!(caps(&def, &digests(&def)[0]), want);
    // A session id means no unique id; a source's own unique id wins over the marshal one.
    let with_session = build_with(&Local::new("ctx").session_id("s").into_state(), &opts);
    assert!(!source_of(&common::ops(&with_session)[0])
        .attrs
        .contains_key("local.unique"));
    let own = build_with(&Local::new("ctx").unique_id("mine").into_state(), &opts);
    assert_eq!(
        source_of(&common::ops(&own)[0]).attrs["local.unique"],
        "mine"
    );
    let none = build(&local("ctx"));
    assert!(source_of(&common::ops(&none)[0]).attrs.is_empty());
}

#[test]
fn generic_sources_drop_empty_attrs() {
    let attrs = [
        ("http.filename".to_string(), "f".to_string()),
        ("http.perm".to_string(), String::new()),
    ];
    let state = nodekit_llb_builder::source(
        "https://example.com/f",
        &attrs.into_iter().collect(),
        &["source.http"],
    );
    let def = build(&state);
    let source = source_of(&common::ops(&def)[0]).clone();
    assert_eq!(source.attrs.len(), 1);
    assert_eq!(
        common::ops(&def)[0].platform,
        None,
        "only image sources carry a platform"
    );
    assert_eq!(caps(&def, &digests(&def)[0]), ["source.http"]);
}

#[test]
fn exec_platform_comes_from_the_state() {
    let state = image("busybox")
        .platform(arm64("arm", ""))
        .run(["true"])
        .root();
    let (op, _) = result(&build(&state));
    assert_eq!(op.platform, Some(arm64("arm", "v7")));
    let exec = exec_of(&op);
    assert_eq!(exec.meta.as_ref().map(|m| m.cwd.as_str()), Some("/"));
}

#[test]
fn states_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<nodekit_llb_builder::State>();
    send_sync::<nodekit_llb_builder::Run>();
    send_sync::<nodekit_llb_builder::ExecState>();
    send_sync::<nodekit_llb_builder::FileAction>();
    let state = image("busybox").run(["true"]).root();
    let handle = std::thread::spawn(move || marshal(&state).map(|d| d.def.len()));
    assert_eq!(handle.join().ok().and_then(Result::ok), Some(3));
}
