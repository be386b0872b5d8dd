//! `git://` LLB sources against repositories served on loopback by `git daemon`: tags and
//! branches, a moved branch re-running its dependents while an unmoved one is cached, subdirs,
//! the kept .git, checksums, unreachable remotes. Over the ssh transport, against a real `sshd`
//! on loopback that authorizes only the key of the client's (forwarded) ssh-agent: LLB sources
//! with and without known hosts, a missing agent failing by its id, and Dockerfile `ADD`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use nodekit::build::BuildRequest;
use nodekit::session::SessionServices;
use nodekit_llb_builder::{Git, Mount, State};
use nodekit_proto::moby::buildkit::v1::StatusResponse;
use nodekit_test_support::{free_loopback_addr, TestDaemon};

use crate::helpers::{busybox, definition, image_output, run_build, run_in_image, Agent};

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

/// `repo.git` in `dir`: `f` ("one") and `sub/g` committed on main, tagged `v1` (annotated).
fn make_repo(dir: &Path) {
    let repo = dir.join("repo.git");
    std::fs::create_dir_all(repo.join("sub")).expect("repo dir");
    git(&repo, &["init", "--quiet"]);
    std::fs::write(repo.join("f"), "one\n").expect("write");
    std::fs::write(repo.join("sub/g"), "in-sub\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "one"]);
    git(&repo, &["tag", "-a", "v1", "-m", "v1"]);
}

/// Commits `content` as `f` on main of `repo`; returns the new commit.
fn commit_f(repo: &Path, content: &str) -> String {
    std::fs::write(repo.join("f"), content).expect("write");
    git(repo, &["commit", "--quiet", "-am", content]);
    git(repo, &["rev-parse", "HEAD"])
}

/// Waits until something listens on the loopback `port`.
fn wait_for_port(port: u16, what: &str) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} did not listen on {port}");
}

impl GitServer {
    fn start() -> GitServer {
        let dir = tempfile::tempdir().expect("temp dir");
        make_repo(dir.path());
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
        wait_for_port(port, "git daemon");
        server
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo.git")
    }

    fn url(&self) -> String {
        format!("git://127.0.0.1:{}/repo.git", self.port)
    }

    /// Commits `content` as `f` on main; returns the new commit.
    fn commit(&self, content: &str) -> String {
        commit_f(&self.repo(), content)
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
    build_with(daemon, state, image, SessionServices::default()).await
}

/// A build whose session serves `services` (an SSH agent, say).
async fn build_with(
    daemon: &TestDaemon,
    state: &State,
    image: &str,
    services: SessionServices,
) -> (Result<(), String>, Vec<StatusResponse>) {
    let request = BuildRequest {
        definition: Some(definition(state)),
        exporters: image_output(image),
        services,
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
async fn unreachable_remotes_fail_clearly_and_the_daemon_keeps_serving() {
    let daemon = TestDaemon::start("git-unreachable").await;
    let url = format!("git://{}/nowhere.git", free_loopback_addr());
    let gone = Git::new(&url, "main").into_state();
    let err = build(&daemon, &reading(&gone, "gone"), "nodekit.test/git:gone")
        .await
        .0
        .expect_err("no server");
    assert!(err.contains(&url), "{err}");

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

/// How many running sshd use /run/sshd (its privilege separation directory), and whether the
/// tests made it: the last one out removes only what the tests made.
static PRIVSEP: std::sync::Mutex<(usize, bool)> = std::sync::Mutex::new((0, false));
const PRIVSEP_DIR: &str = "/run/sshd";

struct PrivsepDir;

impl PrivsepDir {
    fn acquire() -> PrivsepDir {
        let mut users = PRIVSEP.lock().unwrap_or_else(|e| e.into_inner());
        if users.0 == 0 && !Path::new(PRIVSEP_DIR).exists() {
            std::fs::create_dir(PRIVSEP_DIR).expect("sshd's privilege separation directory");
            users.1 = true;
        }
        users.0 += 1;
        PrivsepDir
    }
}

impl Drop for PrivsepDir {
    fn drop(&mut self) {
        let mut users = PRIVSEP.lock().unwrap_or_else(|e| e.into_inner());
        users.0 -= 1;
        if users.0 == 0 && users.1 {
            let _ = std::fs::remove_dir(PRIVSEP_DIR);
            users.1 = false;
        }
    }
}

/// `repo.git` under a temp dir served over ssh by a real sshd (its own config, host key and
/// authorized_keys) on a loopback port, stopped by PID when dropped.
struct SshServer {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    _privsep: PrivsepDir,
}

impl SshServer {
    /// Authorizes only `authorized_key` (an authorized_keys line).
    fn start(authorized_key: &str) -> SshServer {
        let dir = tempfile::tempdir().expect("temp dir");
        make_repo(dir.path());
        let host_key = dir.path().join("host_key");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .status()
            .expect("ssh-keygen runs");
        assert!(made.success());
        std::fs::write(dir.path().join("authorized_keys"), authorized_key).expect("write");
        let port = free_loopback_addr().port();
        let config = dir.path().join("sshd_config");
        std::fs::write(&config, sshd_config(dir.path(), port)).expect("write");
        let privsep = PrivsepDir::acquire();
        // sshd re-executes itself, so by its absolute path; -D keeps it in the foreground (the
        // child killed by PID), its log goes to a file, its output nowhere.
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-f"])
            .arg(&config)
            .arg("-E")
            .arg(dir.path().join("sshd.log"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sshd starts (package openssh-server)");
        let server = SshServer {
            dir,
            child,
            port,
            _privsep: privsep,
        };
        wait_for_port(port, "sshd");
        server
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo.git")
    }

    fn url(&self) -> String {
        format!(
            "ssh://root@127.0.0.1:{}{}",
            self.port,
            self.repo().display()
        )
    }

    /// The known_hosts line of the server's host key (`[127.0.0.1]:PORT TYPE KEY`).
    fn known_hosts(&self) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("host_key.pub")).expect("read");
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        format!("[127.0.0.1]:{} {}", self.port, key.join(" "))
    }

    /// sshd's log so far, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Only public-key logins with the test's files; no PAM, no ownership checks on the temp dir.
fn sshd_config(dir: &Path, port: u16) -> String {
    format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\n\
         AuthorizedKeysFile {dir}/authorized_keys\nPidFile none\nUsePAM no\nStrictModes no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
        dir = dir.display()
    )
}

fn with_agent(agent: &Agent) -> SessionServices {
    SessionServices {
        ssh_agents: std::collections::BTreeMap::from([(
            "default".to_string(),
            agent.socket.clone(),
        )]),
        ..Default::default()
    }
}

/// LLB git sources over ssh: authenticated by the client's forwarded agent (`git.mountsshsock`
/// is `default` for an ssh remote), the host key checked against `git.knownsshhosts`; a wrong
/// host key and a client without the agent fail clearly.
#[tokio::test]
async fn ssh_sources_use_the_client_s_agent_and_the_known_hosts() {
    let agent = Agent::start("nodekit-git-ssh");
    let server = SshServer::start(&agent.public_key());
    let daemon = TestDaemon::start("git-ssh").await;
    let tag = Git::new(&server.url(), "v1")
        .known_ssh_hosts(&server.known_hosts())
        .into_state();
    let (built, _) = build_with(
        &daemon,
        &reading(&tag, "ssh-tag"),
        "nodekit.test/git:ssh-tag",
        with_agent(&agent),
    )
    .await;
    built.unwrap_or_else(|e| panic!("{e}\nsshd log:\n{}", server.log()));
    assert_eq!(
        run_in_image("nodekit.test/git:ssh-tag", &["cat", "/out/f"]),
        "one\n"
    );

    // A host key other than the server's (the agent's key, posing as one).
    let public = agent.public_key();
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    let wrong = format!("[127.0.0.1]:{} {}", server.port, key.join(" "));
    let spoofed = Git::new(&server.url(), "main")
        .known_ssh_hosts(&wrong)
        .into_state();
    let image = "nodekit.test/git:ssh-spoofed";
    let err = build_with(
        &daemon,
        &reading(&spoofed, "spoofed"),
        image,
        with_agent(&agent),
    )
    .await
    .0
    .expect_err("an unknown host key fails");
    assert!(err.contains("Host key verification failed"), "{err}");

    let branch = Git::new(&server.url(), "main").into_state();
    let image = "nodekit.test/git:ssh-no-agent";
    let err = build(&daemon, &reading(&branch, "no-agent"), image)
        .await
        .0
        .expect_err("no agent, no fetch");
    assert!(
        err.contains(r#"no SSH key "default" forwarded from the client"#),
        "{err}"
    );
    daemon.stop().await;
}

/// Dockerfile `ADD ssh://…#ref` authenticates with the client's `default` agent, as upstream's
/// (which gives no known hosts from a Dockerfile's ADD here: no host key checking); a moved
/// branch re-runs the step that reads it, an unmoved one leaves it cached.
#[tokio::test]
async fn a_dockerfile_adds_a_repository_over_ssh() {
    use std::collections::BTreeMap;

    let agent = Agent::start("nodekit-git-ssh-add");
    let server = SshServer::start(&agent.public_key());
    let daemon = TestDaemon::start("git-ssh-add").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dockerfile = format!(
        "ARG BASE\nFROM ${{BASE}}\nADD {url}#v1:sub /tagged/\nADD {url}#main /branch\nRUN cat /branch/f > /read-from-branch\n",
        url = server.url()
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write");
    let request = || BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: BTreeMap::from([(
            "build-arg:BASE".to_string(),
            nodekit_test_support::TestEnv::get().local_image.clone(),
        )]),
        services: SessionServices {
            locals: BTreeMap::from([
                ("context".to_string(), dir.path().to_path_buf()),
                ("dockerfile".to_string(), dir.path().to_path_buf()),
            ]),
            ..with_agent(&agent)
        },
        exporters: image_output("nodekit.test/git:ssh-add"),
        ..Default::default()
    };
    let (built, _) = run_build(&daemon, request()).await;
    built.unwrap_or_else(|e| panic!("{e}\nsshd log:\n{}", server.log()));
    let read = |cmd: &str| run_in_image("nodekit.test/git:ssh-add", &["sh", "-c", cmd]);
    assert_eq!(read("cat /tagged/g"), "in-sub\n");
    assert_eq!(read("cat /read-from-branch"), "one\n");

    let run_cached = |updates: &[StatusResponse]| {
        updates
            .iter()
            .flat_map(|u| u.vertexes.iter())
            .filter(|v| v.name.contains("RUN cat /branch/f") && v.completed.is_some())
            .all(|v| v.cached)
    };
    let (again, updates) = run_build(&daemon, request()).await;
    again.unwrap();
    assert!(
        run_cached(&updates),
        "an unmoved branch leaves the step cached"
    );
    commit_f(&server.repo(), "two\n");
    let (moved, updates) = run_build(&daemon, request()).await;
    moved.unwrap();
    assert!(!run_cached(&updates), "a moved branch re-runs the step");
    assert_eq!(read("cat /read-from-branch"), "two\n");
    daemon.stop().await;
}
