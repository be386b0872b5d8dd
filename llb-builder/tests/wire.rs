//! Exact op bytes: each expected op is spelled out field by field with a protobuf writer that
//! does not use prost, following how BuildKit's Go client fills the messages (`client/llb`)
//! and how Go's encoder writes them (fields in number order, zero values left out, negative
//! ints as ten-byte varints, map entries sorted by key, `constraints` always present).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::wire::{bytes, cat, constraints, digest, input, int, map_entry, platform, string};
use common::{build, caps};
use nodekit_llb_builder::{image, local, scratch, Chown, Copy, FileAction, Local, Mkdir, Mkfile};

const BUSYBOX: &str = "docker-image://docker.io/library/busybox:latest";

fn busybox_op() -> Vec<u8> {
    let source = string(1, BUSYBOX);
    cat(&[bytes(3, &source), platform("amd64", "linux"), constraints()])
}

#[test]
fn image_source_bytes_and_digest() {
    let def = build(&image("busybox"));
    let op = busybox_op();
    let terminal = input(1, &digest(&op), 0);
    assert_eq!(def.def, vec![op.clone(), terminal.clone()]);
    assert_eq!(caps(&def, &digest(&op)), ["source.image"]);
    assert_eq!(caps(&def, &digest(&terminal)), ["constraints", "platform"]);
    // The same image spelled differently is the same op.
    let again = build(&image("docker.io/library/busybox:latest"));
    assert_eq!(again.def, def.def);
}

#[test]
fn exec_bytes() {
    let def = build(&image("busybox").run(["/bin/true"]).root());
    let meta = cat(&[string(1, "/bin/true"), string(3, "/"), int(11, 1)]);
    // The root mount: input 0, output 0 and type BIND are zero values, left out.
    let root = string(3, "/");
    let exec = cat(&[bytes(1, &meta), bytes(2, &root)]);
    let img = digest(&busybox_op());
    let op = cat(&[
        input(1, &img, 0),
        bytes(2, &exec),
        platform("amd64", "linux"),
        constraints(),
    ]);
    assert_eq!(def.def[1], op);
    assert_eq!(
        caps(&def, &digest(&op)),
        ["exec.meta.base", "exec.mount.bind"]
    );
}

#[test]
fn mkdir_on_scratch_bytes() {
    let def = build(&scratch().file(Mkdir::new("/foo", 0o755)));
    let mkdir = cat(&[string(1, "/foo"), int(2, 0o755), int(5, -1)]);
    // input and secondaryInput -1 (scratch, none); output 0 (the last action) left out.
    let action = cat(&[int(1, -1), int(2, -1), bytes(6, &mkdir)]);
    let op = cat(&[bytes(4, &bytes(2, &action)), constraints()]);
    assert_eq!(def.def[0], op);
    assert_eq!(caps(&def, &digest(&op)), ["file.base"]);
}

#[test]
fn chained_actions_bytes() {
    let actions = FileAction::new(Mkdir::new("a", 0o700)).then(Mkfile::new("a/b", 0o644, "hi"));
    let def = build(&image("busybox").dir("/w").file(actions));
    let mkdir = cat(&[string(1, "/w/a"), int(2, 0o700), int(5, -1)]);
    let mkfile = cat(&[
        string(1, "/w/a/b"),
        int(2, 0o644),
        bytes(3, b"hi"),
        int(5, -1),
    ]);
    // Action 0 reads input 0 and has no output; action 1 reads index 1 (= 1 input + action 0).
    let first = cat(&[int(2, -1), int(3, -1), bytes(6, &mkdir)]);
    let second = cat(&[int(1, 1), int(2, -1), bytes(5, &mkfile)]);
    let file = cat(&[bytes(2, &first), bytes(2, &second)]);
    let img = digest(&busybox_op());
    let op = cat(&[input(1, &img, 0), bytes(4, &file), constraints()]);
    assert_eq!(def.def[1], op);
}

#[test]
fn copy_bytes() {
    let src = local("context");
    let copy = Copy::new(&src, "src", "/app/").chown(Chown::parse("1000:staff"));
    let def = build(&image("busybox").file(copy));
    let local_op = cat(&[bytes(3, &string(1, "local://context")), constraints()]);
    assert_eq!(
        def.def[1], local_op,
        "the copy's target comes first, then its source"
    );
    let user = bytes(1, &int(2, 1000));
    let group = bytes(2, &bytes(1, &cat(&[string(1, "staff")])));
    let owner = cat(&[user, group]);
    let copy = cat(&[
        string(1, "/src"),
        string(2, "/app/"),
        bytes(3, &owner),
        int(4, -1),
        int(11, -1),
    ]);
    let action = cat(&[int(2, 1), bytes(4, &copy)]);
    let (img, loc) = (digest(&busybox_op()), digest(&local_op));
    let inputs = cat(&[input(1, &img, 0), input(1, &loc, 0)]);
    let op = cat(&[inputs, bytes(4, &bytes(2, &action)), constraints()]);
    assert_eq!(def.def[2], op);
}

#[test]
fn local_attrs_bytes() {
    let patterns = ["*.go".to_string(), "!vendor".to_string()];
    let state = Local::new("context")
        .session_id("s1")
        .include_patterns(&patterns)
        .exclude_patterns(&["a<b".to_string()])
        .shared_key_hint("ctx")
        .into_state();
    let def = build(&state);
    let attrs = cat(&[
        map_entry(2, "local.excludepatterns", r#"["a\u003cb"]"#),
        map_entry(2, "local.includepattern", r#"["*.go","!vendor"]"#),
        map_entry(2, "local.session", "s1"),
        map_entry(2, "local.sharedkeyhint", "ctx"),
    ]);
    let source = cat(&[string(1, "local://context"), attrs]);
    let op = cat(&[bytes(3, &source), constraints()]);
    assert_eq!(def.def[0], op);
    let want = [
        "source.local",
        "source.local.excludepatterns",
        "source.local.includepatterns",
        "source.local.sessionid",
        "source.local.sharedkeyhint",
    ];
    assert_eq!(caps(&def, &digest(&op)), want);
}

#[test]
fn busybox_digest_is_pinned() {
    // `llb.Image("docker.io/library/busybox:latest")` marshalled for linux/amd64, written out
    // by hand (0x1a source, 0x52 platform, 0x5a empty constraints) and hashed outside Rust.
    let hex =
        "1a310a2f646f636b65722d696d6167653a2f2f646f636b65722e696f2f6c6962726172792f62757379626f\
               783a6c6174657374520e0a05616d64363412056c696e75785a00";
    let def = build(&image("docker.io/library/busybox:latest"));
    assert_eq!(hex::encode(&def.def[0]), hex);
    let want = "sha256:08a03f3ffe5fba421a6403c31e153425ced631d108868f30e04985f99d69326e";
    assert_eq!(common::digests(&def)[0], want);
}
