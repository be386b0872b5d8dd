//! Exec ops: mounts, outputs, inputs, session mounts, settings and capabilities.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::{build, caps, digests, exec_of, ops, result};
use nodekit_llb_builder::{
    image, local, scratch, BuildError, CacheSharing, Mount, NetMode, SecurityMode,
};
use nodekit_proto::pb;

#[test]
fn mounts_are_sorted_and_outputs_numbered() {
    let src = local("context");
    let exec = image("busybox")
        .run(["sh", "-c", "make"])
        .mount("/z", Mount::scratch())
        .mount("/b", Mount::bind(&src).readonly().selector("/sub"))
        .mount("/c", Mount::cache("gocache", CacheSharing::Locked))
        .mount("/t", Mount::tmpfs(1 << 20))
        .mount("/n", Mount::bind(&src).no_output())
        .finish();
    let def = build(&exec.get_mount("/z").expect("writable mount"));
    let (op, index) = result(&def);
    assert_eq!(index, 1, "/z is the second output, after the root");
    let mounts = &exec_of(&op).mounts;
    let dests: Vec<&str> = mounts.iter().map(|m| m.dest.as_str()).collect();
    assert_eq!(dests, ["/", "/b", "/c", "/n", "/t", "/z"]);
    let outputs: Vec<i64> = mounts.iter().map(|m| m.output).collect();
    assert_eq!(outputs, [0, -1, -1, -1, -1, 1]);
    let inputs: Vec<i64> = mounts.iter().map(|m| m.input).collect();
    assert_eq!(
        inputs,
        [0, 1, -1, 1, -1, -1],
        "the local source is one input, used twice"
    );
    assert_eq!(op.inputs.len(), 2);
    assert_eq!(mounts[1].selector, "/sub");
    assert!(mounts[1].readonly);
    let cache = mounts[2].cache_opt.as_ref().expect("cache options");
    assert_eq!(
        (cache.id.as_str(), cache.sharing),
        ("gocache", pb::CacheSharingOpt::Locked as i32)
    );
    assert_eq!(mounts[4].tmpfs_opt, Some(pb::TmpfsOpt { size: 1 << 20 }));
    let want = [
        "exec.meta.base",
        "exec.mount.bind",
        "exec.mount.cache",
        "exec.mount.cache.sharing",
        "exec.mount.selector",
        "exec.mount.tmpfs",
        "exec.mount.tmpfs.size",
    ];
    assert_eq!(caps(&def, &digests(&def)[2]), want);
}

#[test]
fn mount_results() {
    let src = local("context");
    let exec = image("busybox")
        .run(["true"])
        .mount("/ro", Mount::bind(&src).readonly())
        .mount("/tmp", Mount::tmpfs(0))
        .mount("/cache", Mount::cache("c", CacheSharing::Shared))
        .finish();
    let ro = exec
        .get_mount("/ro")
        .expect("read-only mount gives its source");
    assert_eq!(digests(&build(&ro)), digests(&build(&src)));
    assert!(exec.get_mount("/tmp").is_none());
    assert!(exec.get_mount("/cache").is_none());
    assert!(exec.get_mount("/nowhere").is_none());
}

#[test]
fn inputs_are_visited_in_mount_order() {
    let a = local("a");
    let b = local("b");
    let root = image("busybox")
        .run(["true"])
        .mount("/y", Mount::bind(&a))
        .mount("/x", Mount::bind(&b))
        .root();
    let def = build(&root);
    let all = ops(&def);
    let ids: Vec<String> = all[..3]
        .iter()
        .map(|o| common::source_of(o).identifier.clone())
        .collect();
    assert_eq!(ids[0], "docker-image://docker.io/library/busybox:latest");
    assert_eq!(ids[1..], ["local://b", "local://a"], "/x sorts before /y");
}

#[test]
fn process_settings() {
    let base = image("busybox")
        .env("A", "1")
        .env("B", "2")
        .env("A", "3")
        .dir("/app")
        .user("nobody");
    let root = base
        .run(["env"])
        .dir("sub")
        .env("C", "4")
        .hostname("box")
        .network(NetMode::Host)
        .security(SecurityMode::Insecure)
        .add_extra_host("db", "::ffff:10.0.0.2".parse().expect("ip"))
        .add_ulimit("nofile", 1024, 2048)
        .valid_exit_codes(&[0, 1])
        .proxy_env(pb::ProxyEnv {
            http_proxy: "http://proxy".into(),
            ..Default::default()
        })
        .root();
    assert_eq!(root.get_env("C"), None, "run settings stay with the run");
    assert_eq!(root.get_dir(), "/app");
    let def = build(&root);
    let (op, _) = result(&def);
    let exec = exec_of(&op);
    let meta = exec.meta.as_ref().expect("meta");
    assert_eq!(meta.env, ["B=2", "A=3", "C=4"]);
    assert_eq!(
        (meta.cwd.as_str(), meta.user.as_str()),
        ("/app/sub", "nobody")
    );
    assert_eq!(meta.hostname, "box");
    assert_eq!(
        meta.extra_hosts,
        [pb::HostIp {
            host: "db".into(),
            ip: "10.0.0.2".into()
        }]
    );
    assert_eq!(meta.valid_exit_codes, [0, 1]);
    assert!(meta.remove_mount_stubs_recursive);
    assert_eq!(exec.network, NetMode::Host as i32);
    assert_eq!(exec.security, SecurityMode::Insecure as i32);
    let op_caps = caps(&def, &digests(&def)[1]);
    let want = [
        "exec.meta.network",
        "exec.meta.security",
        "exec.meta.proxyenv",
        "exec.meta.ulimit",
        "exec.validexitcode",
    ];
    for cap in want {
        assert!(op_caps.iter().any(|c| c == cap), "{cap} in {op_caps:?}");
    }
}

#[test]
fn shlex_and_state_args() {
    let def = build(
        &image("busybox")
            .run_shlex(r#"sh -c "echo 'hi there'""#)
            .root(),
    );
    let (op, _) = result(&def);
    let args = &exec_of(&op).meta.as_ref().expect("meta").args;
    assert_eq!(args, &["sh", "-c", "echo 'hi there'"]);
    let from_state = image("busybox")
        .args(["a", "b"])
        .run(Vec::<String>::new())
        .root();
    let (op, _) = result(&build(&from_state));
    assert_eq!(exec_of(&op).meta.as_ref().expect("meta").args, ["a", "b"]);
}

#[test]
fn run_errors_surface_at_marshal() {
    let no_args = image("busybox").run(Vec::<String>::new()).root();
    assert_eq!(
        nodekit_llb_builder::marshal(&no_args).err(),
        Some(BuildError::NoArgs)
    );
    let bad = image("busybox").run_shlex("echo 'open").root();
    let err = nodekit_llb_builder::marshal(&bad).err();
    assert!(matches!(err, Some(BuildError::Shlex { .. })), "{err:?}");
}

#[test]
fn readonly_rootfs_keeps_the_base() {
    let base = image("busybox");
    let out = scratch();
    let exec = base
        .run(["true"])
        .readonly_rootfs()
        .mount("/out", Mount::bind(&out))
        .finish();
    assert_eq!(digests(&build(&exec.root())), digests(&build(&base)));
    let def = build(&exec.get_mount("/out").expect("output mount"));
    let (op, index) = result(&def);
    assert_eq!(index, 0);
    let root = &exec_of(&op).mounts[0];
    assert!(root.readonly);
    assert_eq!((root.input, root.output), (0, -1));
}
