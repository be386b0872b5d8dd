//! Hostile build contexts, sent by the nodekit client through the session as buildctl sends
//! them: names with newlines, quotes, glob characters and 255 bytes; paths as long as the
//! kernel takes; a name that is not UTF-8; a `.dockerignore` of pathological patterns; many
//! entries. Each builds with the files as they are, or fails naming the cause, and the daemon
//! goes on serving. The long run (a million entries) is `bash bench/hostile-context.sh`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nodekit::build::BuildRequest;
use nodekit_test_support::{number_from_env, TestDaemon, TestEnv};

use crate::helpers::{context_locals, files_under, logs, run_build};

/// The most bytes of a path the kernel takes (PATH_MAX, with its NUL).
const PATH_MAX: usize = 4096;
/// The most bytes of one name.
const NAME_MAX: usize = 255;

/// A Dockerfile build of `context` (its Dockerfile included) exported to the client's `dest`
/// (none: not exported); a build that hangs fails the test.
async fn build_context(
    daemon: &TestDaemon,
    context: &Path,
    dest: Option<&Path>,
) -> (Result<(), String>, String) {
    let exporters = dest
        .map(|dest| {
            let attrs = BTreeMap::from([("dest".to_string(), dest.display().to_string())]);
            vec![("local".to_string(), attrs)]
        })
        .unwrap_or_default();
    let request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        services: context_locals(context),
        exporters,
        ..Default::default()
    };
    let build = run_build(daemon, request);
    let (result, updates) = tokio::time::timeout(Duration::from_secs(600), build)
        .await
        .expect("the build ends within 10 minutes");
    (result.map(drop), logs(&updates))
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Every file under `root` by relative path, with its content.
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(root)
        .into_iter()
        .map(|rel| {
            let content = std::fs::read(root.join(&rel)).unwrap();
            (rel, content)
        })
        .collect()
}

/// A relative path under `root` whose absolute form is `length` bytes: directories of
/// `NAME_MAX` bytes, then a file taking the rest.
fn path_of_length(root: &Path, length: usize) -> PathBuf {
    let mut left = length - root.as_os_str().len() - 1;
    let mut rel = PathBuf::new();
    let mut level = 0;
    while left > NAME_MAX + 1 + 10 {
        rel.push(format!("{level:0>width$}", width = NAME_MAX));
        left -= NAME_MAX + 1;
        level += 1;
    }
    rel.push("f".repeat(left));
    assert_eq!(root.join(&rel).as_os_str().len(), length);
    rel
}

/// Names that a shell, a glob or a line-based protocol would get wrong, and a path of 3,800
/// bytes, arrive byte for byte (exported back to the client and compared).
#[tokio::test]
async fn odd_names_and_long_paths_arrive_as_they_are() {
    let daemon = TestDaemon::start("hostile-context-names").await;
    let dir = tempfile::tempdir().unwrap();
    let (context, dest) = (dir.path().join("ctx"), dir.path().join("out"));
    write(&context.join("Dockerfile"), b"FROM scratch\nCOPY . /\n");
    let names = [
        "new\nline",
        "tab\there",
        " leading space",
        "trailing space ",
        "back\\slash",
        "quote\"s",
        "'single'",
        "*star",
        "?mark",
        "[brackets]",
        "!bang",
        "#hash",
        "..dots",
        "%2Fescaped",
        "ünïcödé",
        "🦀",
    ];
    for name in names {
        write(&context.join("odd").join(name), name.as_bytes());
    }
    write(&context.join("x".repeat(NAME_MAX)), b"a name of 255 bytes");
    let long = path_of_length(&context, 3_800);
    write(&context.join(&long), b"at the end of a long path");

    let (result, _) = build_context(&daemon, &context, Some(&dest)).await;
    result.expect("the context builds");
    let (sent, received) = (files(&context), files(&dest));
    assert_eq!(sent.len(), names.len() + 3);
    assert_eq!(sent, received);
}

/// A path as long as the kernel takes on the client (4,095 bytes) is longer than it takes
/// under the daemon's snapshot directory: the build fails naming the path (or, on a daemon
/// whose directories are short enough, builds), and the daemon goes on serving.
#[tokio::test]
async fn the_longest_path_fails_by_name_or_arrives_and_the_daemon_goes_on() {
    let daemon = TestDaemon::start("hostile-context-path-max").await;
    let dir = tempfile::tempdir().unwrap();
    let (context, dest) = (dir.path().join("ctx"), dir.path().join("out"));
    write(&context.join("Dockerfile"), b"FROM scratch\nCOPY . /\n");
    let long = path_of_length(&context, PATH_MAX - 1);
    write(&context.join(&long), b"at the end of the longest path");

    match build_context(&daemon, &context, Some(&dest)).await.0 {
        Ok(()) => assert_eq!(files(&context), files(&dest)),
        Err(error) => {
            eprintln!("the longest path: {error}");
            let last = long.file_name().unwrap().to_string_lossy();
            assert!(
                error.contains("File name too long") && error.contains(&*last),
                "{error}"
            );
        }
    }
    std::fs::remove_dir_all(context.join(long.components().next().unwrap())).unwrap();
    build_context(&daemon, &context, None)
        .await
        .0
        .expect("the next build");
}

/// A name that is not UTF-8 cannot travel (BuildKit's paths are UTF-8 strings): sent, the
/// build fails naming it and what to do; left out by `.dockerignore`, the context builds.
#[tokio::test]
async fn a_name_that_is_not_utf8_fails_by_name_unless_ignored() {
    use std::os::unix::ffi::OsStrExt;

    let daemon = TestDaemon::start("hostile-context-utf8").await;
    let context = tempfile::tempdir().unwrap();
    write(
        &context.path().join("Dockerfile"),
        b"FROM scratch\nCOPY . /\n",
    );
    let odd = std::ffi::OsStr::from_bytes(b"cache-\xff.bin");
    write(&context.path().join("sub").join(odd), b"x");

    let (result, _) = build_context(&daemon, context.path(), None).await;
    let error = result.expect_err("the name cannot be sent");
    assert!(
        error.contains("cache-") && error.contains("not valid UTF-8"),
        "{error}"
    );
    write(&context.path().join(".dockerignore"), b"**/*.bin\n");
    let (result, _) = build_context(&daemon, context.path(), None).await;
    result.expect("the name is ignored");
}

/// Patterns that backtracking matchers take exponential time on, hundreds of them, one of
/// 4,000 bytes, with exceptions: the context builds with exactly what they select, in time
/// proportional to patterns times paths. A malformed pattern fails naming it, and the
/// daemon goes on serving.
#[tokio::test]
async fn a_pathological_dockerignore_selects_what_it_says() {
    let daemon = TestDaemon::start("hostile-context-ignore").await;
    let dir = tempfile::tempdir().unwrap();
    let (context, dest) = (dir.path().join("ctx"), dir.path().join("out"));
    write(&context.join("Dockerfile"), b"FROM scratch\nCOPY . /\n");
    let deep = "a/".repeat(10);
    for i in 0..200 {
        write(
            &context.join(format!("{deep}{}{i}.txt", "a".repeat(50))),
            b"kept",
        );
        write(
            &context.join(format!("{deep}{}{i}.b", "a".repeat(50))),
            b"ignored",
        );
    }
    write(&context.join("keep/me.b"), b"an exception");
    let mut ignore = String::new();
    for i in 0..250 {
        ignore.push_str(&format!(
            "**/**/**/**/**/**/**/**/**/**/no{i}*a*a*a*a*a*a*a*a*c\n"
        ));
        ignore.push_str(&format!(
            "{}*a*a*a*a*a*a*a*a*a*a*a*a*c{i}\n",
            "*a".repeat(2)
        ));
    }
    ignore.push_str(&format!("{}x\n", "*a".repeat(2_000)));
    ignore.push_str("**/*.b\n!keep/*.b\n");
    write(&context.join(".dockerignore"), ignore.as_bytes());

    let started = Instant::now();
    let (result, _) = build_context(&daemon, &context, Some(&dest)).await;
    result.expect("the context builds");
    eprintln!(
        "a .dockerignore of {} patterns over 400 deep files: built in {:.1?}",
        ignore.lines().count(),
        started.elapsed()
    );
    let received = files(&dest);
    assert_eq!(received.values().filter(|c| *c == b"kept").count(), 200);
    assert!(!received.values().any(|c| c == b"ignored"));
    assert_eq!(received[Path::new("keep/me.b")], b"an exception");

    write(&context.join(".dockerignore"), b"ok\n[unclosed\n");
    let (result, _) = build_context(&daemon, &context, None).await;
    let error = result.expect_err("a malformed pattern");
    assert!(error.contains("[unclosed"), "{error}");
    let (result, _) = build_context(&daemon, &context, None).await;
    assert!(result.is_err(), "still malformed");
    std::fs::remove_file(context.join(".dockerignore")).unwrap();
    build_context(&daemon, &context, None)
        .await
        .0
        .expect("the next build");
}

/// How many entries `many_entries_arrive` sends (`NODEKIT_CONTEXT_ENTRIES`, the bench's
/// million; 20,000 in the suite).
fn entry_count() -> usize {
    number_from_env("NODEKIT_CONTEXT_ENTRIES", 20_000)
}

/// A context of many small files in directories of a thousand: every file arrives (counted
/// by a step that mounts the context).
#[tokio::test]
async fn many_entries_arrive() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("hostile-context-many").await;
    let context = tempfile::tempdir().unwrap();
    let count = entry_count();
    let dockerfile = format!(
        "FROM {}\nRUN --mount=type=bind,target=/ctx echo \"files: $(find /ctx -type f | wc -l)\"\n",
        env.local_image
    );
    write(&context.path().join("Dockerfile"), dockerfile.as_bytes());
    for i in 0..count {
        let dir = context.path().join(format!("d{}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("f{i}")), b"").unwrap();
    }
    let started = Instant::now();
    let (result, logs) = build_context(&daemon, context.path(), None).await;
    result.expect("the context builds");
    eprintln!(
        "a context of {count} files: built in {:.1?}",
        started.elapsed()
    );
    // The Dockerfile is a file of the context too.
    assert!(logs.contains(&format!("files: {}", count + 1)), "{logs}");
}
