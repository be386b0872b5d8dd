//! The `apply` dispatcher.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::*;
use nodekit_fileop::{apply, ActionRoots, FileOpError, NumericIdsOnly};
use nodekit_proto::pb::{file_action::Action, FileAction};

fn action(a: Action) -> FileAction {
    FileAction {
        input: 0,
        secondary_input: -1,
        output: 0,
        action: Some(a),
    }
}

#[test]
fn dispatches_every_action() {
    let (src, dst) = (Sandbox::new(), Sandbox::new());
    src.write("s", "S");
    let roots = ActionRoots {
        dest: &dst.root,
        source: Some(&src.root),
    };
    let u = NumericIdsOnly;
    apply(&action(Action::Mkdir(mkdir("/d", 0o755, false))), roots, &u).unwrap();
    apply(
        &action(Action::Mkfile(mkfile("/d/f", 0o644, "F"))),
        roots,
        &u,
    )
    .unwrap();
    apply(&action(Action::Symlink(ln("d/f", "/l"))), roots, &u).unwrap();
    apply(&action(Action::Copy(cp("/s", "/d/"))), roots, &u).unwrap();
    apply(&action(Action::Rm(rm("/d/f", false, false))), roots, &u).unwrap();
    assert_eq!(dst.tree(), ["d/", "d/s", "l"]);
}

#[test]
fn copy_from_scratch_and_missing_action() {
    let dst = Sandbox::new();
    let roots = ActionRoots {
        dest: &dst.root,
        source: None,
    };
    let u = NumericIdsOnly;
    let mut op = cp("/", "/empty");
    op.dir_copy_contents = true;
    apply(&action(Action::Copy(op)), roots, &u).unwrap();
    assert_eq!(dst.tree(), ["empty/"]);
    let e = apply(&action(Action::Copy(cp("/x", "/y"))), roots, &u).unwrap_err();
    assert_eq!(e.to_string(), "lstat /x: no such file or directory");
    let mut none = action(Action::Rm(rm("/x", true, false)));
    none.action = None;
    let e = apply(&none, roots, &u).unwrap_err();
    assert!(matches!(e, FileOpError::Invalid(_)));
}
