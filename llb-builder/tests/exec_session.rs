//! Exec ops: session mounts (secrets, SSH) and the environment runs get.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use std::collections::BTreeSet;

use common::{build, build_with, caps, digests, exec_of, options, result};
use nodekit_llb_builder::{image, Secret, Ssh};
use nodekit_proto::pb;

#[test]
fn secrets_and_ssh() {
    let run = image("busybox")
        .run(["sh"])
        .secret(
            Secret::file("npmrc", "/root/.npmrc")
                .owner(1, 2)
                .mode(0o440)
                .optional(),
        )
        .secret(Secret::env("token", "TOKEN"))
        .ssh(Ssh::new())
        .ssh(Ssh::new().id("deploy").target("/ssh").optional());
    let def = build(&run.root());
    let (op, _) = result(&def);
    let exec = exec_of(&op);
    let session: Vec<(&str, i32)> = exec.mounts[1..]
        .iter()
        .map(|m| (m.dest.as_str(), m.mount_type))
        .collect();
    let (secret, ssh) = (pb::MountType::Secret as i32, pb::MountType::Ssh as i32);
    assert_eq!(
        session,
        [
            ("/root/.npmrc", secret),
            ("/run/buildkit/ssh_agent.0", ssh),
            ("/ssh", ssh)
        ]
    );
    let opt = exec.mounts[1].secret_opt.as_ref().expect("secret options");
    assert_eq!(
        (opt.id.as_str(), opt.uid, opt.gid, opt.mode, opt.optional),
        ("npmrc", 1, 2, 0o440, true)
    );
    assert_eq!(exec.mounts[1].input, -1);
    assert_eq!(exec.mounts[2].ssh_opt.as_ref().map(|o| o.mode), Some(0o600));
    let env = pb::SecretEnv {
        id: "token".into(),
        name: "TOKEN".into(),
        optional: false,
    };
    assert_eq!(exec.secretenv, [env]);
    let meta = exec.meta.as_ref().expect("meta");
    assert_eq!(meta.env, ["SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"]);
    let op_caps = caps(&def, &digests(&def)[1]);
    for cap in ["exec.mount.secret", "exec.secretenv", "exec.mount.ssh"] {
        assert!(op_caps.iter().any(|c| c == cap), "{cap} in {op_caps:?}");
    }
}

#[test]
fn default_path_when_the_daemon_lacks_the_cap() {
    let state = image("busybox").run(["true"]).root();
    let mut opts = options();
    opts.caps = Some(BTreeSet::from(["exec.meta.base".to_string()]));
    let (op, _) = result(&build_with(&state, &opts));
    let env = &exec_of(&op).meta.as_ref().expect("meta").env;
    assert_eq!(
        env,
        &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    );
    opts.caps = Some(BTreeSet::from(["exec.meta.setsdefaultpath".to_string()]));
    let def = build_with(&state, &opts);
    let (op, _) = result(&def);
    assert!(exec_of(&op).meta.as_ref().expect("meta").env.is_empty());
    assert!(caps(&def, &digests(&def)[1]).contains(&"exec.meta.setsdefaultpath".to_string()));
}
