//! `git://` LLB sources against repositories served on loopback by `git daemon`: tags and
//! branches, a moved branch re-running its dependents while an unmoved one is cached, subdirs,
//! the kept .git, checksums, unreachable remotes and the refused ssh transport.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use nodekit::build::BuildRequest;
use nodekit_llb_builder::{Git, Mount, State};
use nodekit_proto::moby::buildkit::v1::StatusResponse;
use nodekit_test_support::{free_loopback_addr, TestDaemon};

use crate::helpers::{busybox, definition, image_output, run_build, run_in_image};

/// Runs git in `dir` with no user config; returns its stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository `repo.git` under a temp dir served by `git daemon` on a loopback port.
struct GitServer {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

impl GitServer {
    fn start() -> GitServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().join("repo.git");
        std::fs::create_dir_all(repo.join("sub")).expect("repo dir");
        git(&repo, &["init", "--quiet"]);
        std::fs::write(repo.join("f"), "one\n").expect("write");
        std::fs::write(repo.join("sub/g"), "in-sub\n").expect("write");
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "--quiet", "-m", "one"]);
        git(&repo, &["tag", "-a", "v1", "-m", "v1"]);
        let port = free_loopback_addr().port();
        // git-daemon itself, not `git daemon`: `git` would run it as a child of its own, which
        // killing `git` leaves running (holding the test's output open, so the run never ends).
        let exec_path = git(dir.path(), &["--exec-path"]);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", dir.path().display()))
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon starts");
        let server = GitServer { dir, child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("git daemon did not listen on {port}");
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo.git")
    }

    fn url(&self) -> String {
        format!("git://127.0.0.1:{}/repo.git", self.port)
    }

    /// Commits `content` as `f` on main; returns the new commit.
    fn commit(&self, content: &str) -> String {
        std::fs::write(self.repo().join("f"), content).expect("write");
        git(&self.repo(), &["commit", "--quiet", "-am", content]);
        git(&self.repo(), &["rev-parse", "HEAD"])
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A step that copies the checkout mounted at /src into /out of a busybox image.
fn reading(source: &State, marker: &str) -> State {
    let script = format!("cp -a /src /out; echo {marker} > /out/.marker");
    busybox()
        .run(["sh", "-c", script.as_str()])
        .mount("/src", Mount::bind(source).readonly())
        .root()
}

async fn build(
    daemon: &TestDaemon,
    state: &State,
    image: &str,
) -> (Result<(), String>, Vec<StatusResponse>) {
    let request = BuildRequest {
        definition: Some(definition(state)),
        exporters: image_output(image),
        ..Default::default()
    };
    let (result, updates) = run_build(daemon, request).await;
    (result.map(|_| ()), updates)
}

/// Whether the step running `cp -a /src` was reported cached.
fn step_cached(updates: &[StatusResponse]) -> bool {
    let steps: Vec<_> = updates
        .iter()
        .flat_map(|u| u.vertexes.iter())
        .filter(|v| v.name.contains("cp -a /src") && v.completed.is_some())
        .collect();
    assert!(!steps.is_empty(), "the step is reported");
    steps.iter().all(|v| v.cached)
}

#[tokio::test]
async fn tags_and_branches_are_checked_out_and_a_moved_branch_reruns_its_dependents() {
    let server = GitServer::start();
    let daemon = TestDaemon::start("git-branch").await;
    let tag = Git::new(&server.url(), "v1").into_state();
    build(&daemon, &reading(&tag, "tag"), "nodekit.test/git:tag")
        .await
        .0
        .unwrap();
    assert_eq!(
        run_in_image("nodekit.test/git:tag", &["cat", "/out/f"]),
        "one\n"
    );
    let no_git = run_in_image(
        "nodekit.test/git:tag",
        &["sh", "-c", "test -e /out/.git && echo git || echo none"],
    );
    assert_eq!(no_git, "none\n", "the .git directory is dropped by default");

    let branch = || reading(&Git::new(&server.url(), "main").into_state(), "branch");
    let (first, updates) = build(&daemon, &branch(), "nodekit.test/git:main").await;
    first.unwrap();
    assert!(!step_cached(&updates));
    let (again, updates) = build(&daemon, &branch(), "nodekit.test/git:main").await;
    again.unwrap();
    assert!(
        step_cached(&updates),
        "an unmoved branch leaves its dependents cached"
    );

    server.commit("two\n");
    let (moved, updates) = build(&daemon, &branch(), "nodekit.test/git:main").await;
    moved.unwrap();
    assert!(
        !step_cached(&updates),
        "a moved branch re-runs its dependents"
    );
    assert_eq!(
        run_in_image("nodekit.test/git:main", &["cat", "/out/f"]),
        "two\n"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn subdirs_the_kept_git_dir_and_checksums() {
    let server = GitServer::start();
    let daemon = TestDaemon::start("git-subdir").await;
    let commit = git(&server.repo(), &["rev-parse", "HEAD"]);
    let sub = Git::new(&server.url(), "v1:sub").into_state();
    build(&daemon, &reading(&sub, "sub"), "nodekit.test/git:sub")
        .await
        .0
        .unwrap();
    assert_eq!(
        run_in_image("nodekit.test/git:sub", &["cat", "/out/g"]),
        "in-sub\n"
    );

    let kept = Git::new(&server.url(), "v1")
        .attr("git.keepgitdir", "true")
        .into_state();
    build(&daemon, &reading(&kept, "kept"), "nodekit.test/git:kept")
        .await
        .0
        .unwrap();
    let head = run_in_image("nodekit.test/git:kept", &["cat", "/out/.git/HEAD"]);
    assert_eq!(head.trim(), commit, "the kept .git is at the tag's commit");

    let matching = Git::new(&server.url(), "v1")
        .attr("git.checksum", &commit[..12])
        .into_state();
    build(&daemon, &reading(&matching, "sum"), "nodekit.test/git:sum")
        .await
        .0
        .unwrap();
    let wrong = "0123456789abcdef0123456789abcdef01234567";
    let mismatching = Git::new(&server.url(), "v1")
        .attr("git.checksum", wrong)
        .attr("git.keepgitdir", "true")
        .into_state();
    let err = build(
        &daemon,
        &reading(&mismatching, "bad"),
        "nodekit.test/git:bad",
    )
    .await
    .0
    .expect_err("a wrong checksum fails");
    assert!(err.contains(wrong) && err.contains(&commit), "{err}");
    daemon.stop().await;
}

#[tokio::test]
async fn unreachable_remotes_and_ssh_fail_clearly_and_the_daemon_keeps_serving() {
    let daemon = TestDaemon::start("git-unreachable").await;
    let url = format!("git://{}/nowhere.git", free_loopback_addr());
    let gone = Git::new(&url, "main").into_state();
    let err = build(&daemon, &reading(&gone, "gone"), "nodekit.test/git:gone")
        .await
        .0
        .expect_err("no server");
    assert!(err.contains(&url), "{err}");

    let ssh = Git::new("git@127.0.0.1:repo.git", "main").into_state();
    let err = build(&daemon, &reading(&ssh, "ssh"), "nodekit.test/git:ssh")
        .await
        .0
        .expect_err("ssh is refused");
    assert!(err.contains("ssh"), "{err}");

    let server = GitServer::start();
    let tag = Git::new(&server.url(), "v1").into_state();
    build(&daemon, &reading(&tag, "after"), "nodekit.test/git:after")
        .await
        .0
        .unwrap();
    daemon.stop().await;
}

/// `ADD <git repository> <dest>` in a Dockerfile: by tag with a subdir, by branch with the
/// `.git` kept (query form), a moved branch re-running the step that reads it; and the same
/// repository as a named context.
#[tokio::test]
async fn a_dockerfile_adds_a_repository_by_tag_and_by_branch() {
    use std::collections::BTreeMap;

    let server = GitServer::start();
    let daemon = TestDaemon::start("git-dockerfile-add").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dockerfile = format!(
        "ARG BASE\nFROM ${{BASE}}\nADD {url}#v1:sub /tagged/\nADD --keep-git-dir=true {url}?branch=main /branch\nRUN cat /branch/f > /read-from-branch\nCOPY --from=repo f /from-context\n",
        url = server.url()
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write");
    let request = || BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: BTreeMap::from([
            (
                "build-arg:BASE".to_string(),
                nodekit_test_support::TestEnv::get().local_image.clone(),
            ),
            // A named context from the same repository (buildx --build-context repo=URL#v1).
            ("context:repo".to_string(), format!("{}#v1", server.url())),
        ]),
        services: nodekit::session::SessionServices {
            locals: BTreeMap::from([
                ("context".to_string(), dir.path().to_path_buf()),
                ("dockerfile".to_string(), dir.path().to_path_buf()),
            ]),
            ..Default::default()
        },
        exporters: image_output("nodekit.test/git:add"),
        ..Default::default()
    };
    let (built, _) = run_build(&daemon, request()).await;
    built.unwrap();
    let read = |cmd: &str| run_in_image("nodekit.test/git:add", &["sh", "-c", cmd]);
    assert_eq!(read("cat /tagged/g"), "in-sub\n");
    assert_eq!(read("cat /read-from-branch"), "one\n");
    assert_eq!(read("test -d /branch/.git && echo kept"), "kept\n");
    assert_eq!(read("cat /from-context"), "one\n");

    let (again, updates) = run_build(&daemon, request()).await;
    again.unwrap();
    let run_cached = |updates: &[StatusResponse]| {
        updates
            .iter()
            .flat_map(|u| u.vertexes.iter())
            .filter(|v| v.name.contains("RUN cat /branch/f") && v.completed.is_some())
            .all(|v| v.cached)
    };
    assert!(
        run_cached(&updates),
        "an unmoved branch leaves the step cached"
    );
    server.commit("two\n");
    let (moved, updates) = run_build(&daemon, request()).await;
    moved.unwrap();
    assert!(!run_cached(&updates), "a moved branch re-runs the step");
    assert_eq!(read("cat /read-from-branch"), "two\n");
    daemon.stop().await;
}
