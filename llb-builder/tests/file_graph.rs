//! File, merge and diff ops: action numbering, paths, options.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::{build, caps, digests, file_of, ops, result};
use nodekit_llb_builder::{
    diff, image, local, merge, scratch, Chown, Copy, FileAction, Mkdir, Rm, Symlink, UserRef,
};
use nodekit_proto::pb;
use pb::file_action::Action as Proto;

fn paths(file: &pb::FileOp) -> Vec<(i64, i64, i64)> {
    file.actions
        .iter()
        .map(|a| (a.input, a.secondary_input, a.output))
        .collect()
}

#[test]
fn copy_from_an_action_chain_on_another_state() {
    // Go's example: c := b.Copy(a.WithState(llb.Scratch().Dir("/ced")), "./foo", "./baz").
    let a = FileAction::new(Mkdir::new("./foo", 0o755));
    let b = FileAction::new(Mkdir::new("./bar", 0o755));
    let c = b.then(Copy::new(
        a.with_state(&scratch().dir("/ced")),
        "./foo",
        "./baz",
    ));
    let def = build(&image("busybox").dir("/abc").file(c));
    let (op, _) = result(&def);
    let file = file_of(&op);
    assert_eq!(op.inputs.len(), 1);
    assert_eq!(paths(file), [(0, -1, -1), (-1, -1, -1), (1, 2, 0)]);
    let Some(Proto::Mkdir(bar)) = &file.actions[0].action else {
        panic!("mkdir")
    };
    let Some(Proto::Mkdir(foo)) = &file.actions[1].action else {
        panic!("mkdir")
    };
    let Some(Proto::Copy(copy)) = &file.actions[2].action else {
        panic!("copy")
    };
    assert_eq!(
        (bar.path.as_str(), foo.path.as_str()),
        ("/abc/bar", "/ced/foo")
    );
    assert_eq!(
        (copy.src.as_str(), copy.dest.as_str()),
        ("/ced/foo", "/abc/baz")
    );
}

#[test]
fn copy_options() {
    let src = local("context").dir("/src");
    let copy = Copy::new(&src, "dir/", "out/.")
        .follow_symlinks(true)
        .copy_dir_contents_only(true)
        .attempt_unpack(true)
        .create_dest_path(true)
        .allow_wildcard(true)
        .allow_empty_wildcard(true)
        .always_replace_existing_dest_paths(true)
        .chown(Chown::ids(1, 2))
        .mode_str("u+x")
        .include_patterns(&["*.rs".to_string()])
        .exclude_patterns(&["target".to_string()])
        .exclude_patterns(&["*.o".to_string()])
        .required_paths(&["Cargo.toml".to_string()])
        .created(1_700_000_000_000_000_000);
    let def = build(&scratch().dir("/w").file(copy));
    let (op, _) = result(&def);
    let file = file_of(&op);
    assert_eq!(paths(file), [(-1, 0, 0)]);
    let Some(Proto::Copy(c)) = &file.actions[0].action else {
        panic!("copy")
    };
    let want = pb::FileActionCopy {
        src: "/src/dir".into(),
        dest: "/w/out/.".into(),
        owner: Some(pb::ChownOpt {
            user: Some(pb::UserOpt {
                user: Some(pb::user_opt::User::ById(1)),
            }),
            group: Some(pb::UserOpt {
                user: Some(pb::user_opt::User::ById(2)),
            }),
        }),
        mode: 0,
        follow_symlink: true,
        dir_copy_contents: true,
        attempt_unpack_docker_compatibility: true,
        create_dest_path: true,
        allow_wildcard: true,
        allow_empty_wildcard: true,
        timestamp: 1_700_000_000_000_000_000,
        include_patterns: vec!["*.rs".into()],
        exclude_patterns: vec!["target".into(), "*.o".into()],
        always_replace_existing_dest_paths: true,
        mode_str: "u+x".into(),
        required_paths: vec!["Cargo.toml".into()],
    };
    assert_eq!(c, &want);
    // BuildKit's client never records the copy's own capabilities, only file.base.
    assert_eq!(caps(&def, &digests(&def)[1]), ["file.base"]);
}

#[test]
fn rm_symlink_and_named_owners() {
    let actions = FileAction::new(Rm::new("old/*").allow_not_found(true).allow_wildcard(true))
        .then(Symlink::new("../target", "link").chown(Chown::parse("app")))
        .then(
            Mkdir::new("/d", 0o4755)
                .parents(true)
                .chown(Chown::parse("root:42")),
        );
    let def = build(&image("busybox").dir("/x").file(actions));
    let (op, _) = result(&def);
    let file = file_of(&op);
    assert_eq!(paths(file), [(0, -1, -1), (1, -1, -1), (2, -1, 0)]);
    let Some(Proto::Rm(rm)) = &file.actions[0].action else {
        panic!("rm")
    };
    assert_eq!(
        (rm.path.as_str(), rm.allow_not_found, rm.allow_wildcard),
        ("/x/old/*", true, true)
    );
    let Some(Proto::Symlink(link)) = &file.actions[1].action else {
        panic!("symlink")
    };
    assert_eq!(
        (link.oldpath.as_str(), link.newpath.as_str()),
        ("../target", "link")
    );
    let named = pb::user_opt::User::ByName(pb::NamedUserOpt {
        name: "app".into(),
        input: 0,
    });
    let owner = link
        .owner
        .as_ref()
        .and_then(|o| o.user.as_ref())
        .and_then(|u| u.user.clone());
    assert_eq!(owner, Some(named));
    let Some(Proto::Mkdir(dir)) = &file.actions[2].action else {
        panic!("mkdir")
    };
    assert_eq!(
        (dir.mode, dir.make_parents, dir.timestamp),
        (0o755, true, -1)
    );
    assert_eq!(Chown::parse("root:42"), Chown::ids(0, 42));
    assert_eq!(
        Chown::parse("a:b:c").group,
        Some(UserRef::Name("b:c".into()))
    );
}

#[test]
fn merge_and_diff() {
    let base = image("busybox");
    let a = base.file(Mkdir::new("/a", 0o755));
    let b = base.file(Mkdir::new("/b", 0o755));
    let merged = merge(&[base.clone(), scratch(), diff(&base, &a), diff(&base, &b)]);
    let def = build(&merged);
    let (op, _) = result(&def);
    let Some(pb::op::Op::Merge(m)) = &op.op else {
        panic!("merge")
    };
    let indexes: Vec<i64> = m.inputs.iter().map(|i| i.input).collect();
    assert_eq!(indexes, [0, 1, 2]);
    assert_eq!(op.platform, None);
    let diff_digest = &op.inputs[1].digest;
    let diff_op = &ops(&def)[digests(&def)
        .iter()
        .position(|d| d == diff_digest)
        .expect("diff")];
    let Some(pb::op::Op::Diff(d)) = &diff_op.op else {
        panic!("diff")
    };
    assert_eq!(
        (d.lower.map(|l| l.input), d.upper.map(|u| u.input)),
        (Some(0), Some(1))
    );
    assert_eq!(caps(&def, diff_digest), ["diffop"]);
    assert_eq!(
        caps(&def, &digests(&def)[digests(&def).len() - 2]),
        ["mergeop"]
    );
}

#[test]
fn merge_and_diff_shortcuts() {
    let base = image("busybox");
    assert!(merge(&[scratch(), scratch()]).is_scratch());
    assert_eq!(
        digests(&build(&merge(&[scratch(), base.clone()]))),
        digests(&build(&base))
    );
    assert_eq!(
        digests(&build(&diff(&scratch(), &base))),
        digests(&build(&base))
    );
    assert!(diff(&scratch(), &scratch()).is_scratch());
    let to_scratch = build(&diff(&base, &scratch()));
    let Some(pb::op::Op::Diff(d)) = &result(&to_scratch).0.op else {
        panic!("diff")
    };
    assert_eq!(d.upper.map(|u| u.input), Some(-1));
}

#[test]
fn equal_ops_are_written_once_but_merge_keeps_each_input() {
    let merged = merge(&[image("busybox"), image("busybox")]);
    let def = build(&merged);
    assert_eq!(def.def.len(), 3, "image, merge, terminal");
    let (op, _) = result(&def);
    assert_eq!(op.inputs.len(), 2);
    assert_eq!(op.inputs[0], op.inputs[1]);
}
