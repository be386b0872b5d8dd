//! Include, exclude and follow-path filtering on the sending side.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use std::os::unix::fs::symlink;

use common::*;
use nodekit_filesync::SendOptions;

fn populate(env: &Env) {
    for p in [
        "Dockerfile",
        "README.md",
        "docs/guide.md",
        "docs/keep.md",
        "src/main.rs",
        "src/lib.rs",
        "src/app/mod.rs",
        "node_modules/pkg/index.js",
        "build/out.log",
        "keep.log",
        "debug.log",
    ] {
        env.write(p, p);
    }
}

async fn sent_paths(env: &Env, opts: SendOptions) -> Vec<String> {
    let (r, s) = sync_with(opts, env.receive_options()).await;
    s.expect("send");
    r.expect("receive").entries.into_keys().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclude_patterns_with_exceptions() {
    let env = Env::new();
    populate(&env);
    let opts = SendOptions {
        exclude_patterns: [
            "node_modules",
            "**/*.log",
            "!keep.log",
            "docs",
            "!docs/keep.md",
        ]
        .map(String::from)
        .to_vec(),
        ..env.send_options()
    };
    let got = sent_paths(&env, opts).await;
    let want = [
        "Dockerfile",
        "README.md",
        "build",
        "docs",
        "docs/keep.md",
        "keep.log",
        "src",
        "src/app",
        "src/app/mod.rs",
        "src/lib.rs",
        "src/main.rs",
    ];
    assert_eq!(got, want);
    assert!(!env.dest.join("node_modules").exists());
    assert!(!env.dest.join("docs/guide.md").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_patterns_send_parents_only_as_needed() {
    let env = Env::new();
    populate(&env);
    let opts = SendOptions {
        include_patterns: ["src/app", "*.md"].map(String::from).to_vec(),
        exclude_patterns: vec!["README.md".into()],
        ..env.send_options()
    };
    let got = sent_paths(&env, opts).await;
    assert_eq!(got, ["src", "src/app", "src/app/mod.rs"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_paths_include_link_targets() {
    let env = Env::new();
    populate(&env);
    env.write("real/Dockerfile.prod", "FROM scratch");
    symlink("real/Dockerfile.prod", env.src.join("Dockerfile.link")).unwrap();
    let opts = SendOptions {
        follow_paths: ["Dockerfile.link", ".dockerignore"]
            .map(String::from)
            .to_vec(),
        ..env.send_options()
    };
    let got = sent_paths(&env, opts).await;
    assert_eq!(got, ["Dockerfile.link", "real", "real/Dockerfile.prod"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_with_new_excludes_deletes_excluded() {
    let env = Env::new();
    populate(&env);
    sync(&env).await;
    let opts = SendOptions {
        exclude_patterns: vec!["node_modules".into(), "*.log".into()],
        ..env.send_options()
    };
    let (r, s) = sync_with(opts, env.receive_options()).await;
    s.unwrap();
    let summary = r.unwrap();
    assert_eq!(summary.files_transferred, 0);
    assert_eq!(summary.deleted, ["debug.log", "keep.log", "node_modules"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_patterns_fail_both_sides() {
    let env = Env::new();
    populate(&env);
    let opts = SendOptions {
        exclude_patterns: vec!["[".into()],
        ..env.send_options()
    };
    let (r, s) = sync_with(opts, env.receive_options()).await;
    let err = s.unwrap_err().to_string();
    assert!(err.contains("invalid exclude pattern"), "{err}");
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("invalid exclude pattern"));
}

/// A name that is not UTF-8 cannot go over the wire: left out by the patterns, the rest is
/// sent; sent, the sync fails naming it and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_is_not_utf8_is_refused_unless_excluded() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let env = Env::new();
    populate(&env);
    let odd = OsStr::from_bytes(b"junk-\xff\xfe.bin");
    std::fs::write(env.src.join(odd), "x").unwrap();
    std::fs::create_dir(env.src.join("src").join(odd)).unwrap();
    let excluding = SendOptions {
        exclude_patterns: vec!["**/*.bin".into(), "node_modules".into()],
        ..env.send_options()
    };
    let got = sent_paths(&env, excluding).await;
    assert!(got.iter().all(|p| !p.contains("junk")), "{got:?}");
    assert!(got.contains(&"src/main.rs".to_string()), "{got:?}");

    let (_, sent) = sync_with(env.send_options(), env.receive_options()).await;
    let error = sent.unwrap_err().to_string();
    assert!(
        error.contains("junk-")
            && error.contains("not valid UTF-8")
            && error.contains(".dockerignore"),
        "{error}"
    );
}
