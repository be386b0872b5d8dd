//! `git://` LLB sources against repositories served on loopback by `git daemon`: tags and
//! branches, a moved branch re-running its dependents while an unmoved one is cached, subdirs,
//! the kept .git, checksums, unreachable remotes. Over the ssh transport, against a real `sshd`
//! on loopback that authorizes only the key of the client's (forwarded) ssh-agent: LLB sources
//! with and without known hosts, a missing agent failing by its id, and Dockerfile `ADD`. Over
//! smart HTTP, against `git http-backend` behind a server that demands basic auth: the session's
//! token and header secrets, as LLB sources and Dockerfile `ADD`.

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
            locals: crate::helpers::dockerfile_dirs(dir.path()),
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
            locals: crate::helpers::dockerfile_dirs(dir.path()),
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

/// A smart-HTTP git server for [`HttpGitServer`]: `git http-backend` as a CGI behind Python's
/// http.server, answering 401 unless the request carries `Authorization: basic` with the login
/// `x-access-token:<one of the tokens>` (as upstream sends a token secret). It listens on a port
/// of the OS's choosing, which it writes to a file once it serves.
const HTTP_GIT_SERVER: &str = r#"
import base64, os, subprocess, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

root, tokens, port_file = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
backend = os.path.join(
    subprocess.check_output(["git", "--exec-path"], text=True).strip(), "git-http-backend")
logins = {base64.b64encode(("x-access-token:" + t).encode()).decode() for t in tokens}

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def authorized(self):
        scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "basic" and credentials.strip() in logins

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    return data
                data += chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def serve(self):
        if not self.authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        data = self.body()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(data)), "REMOTE_ADDR": "127.0.0.1",
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        out = subprocess.run([backend], input=data, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        if not rest and b"\n\n" in out:
            head, _, rest = out.partition(b"\n\n")
        headers = [line.split(":", 1) for line in head.decode().splitlines() if ":" in line]
        status = next((v.strip() for k, v in headers if k.lower() == "status"), "200 OK")
        self.send_response(int(status.split()[0]))
        for k, v in headers:
            if k.lower() != "status":
                self.send_header(k, v.strip())
        self.end_headers()
        self.wfile.write(rest)

    do_GET = serve
    do_POST = serve

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
"#;

/// `repo.git` under a temp dir served over smart HTTP (see [`HTTP_GIT_SERVER`]) on a loopback
/// port, requiring one of `tokens`; python3 runs directly (stdio null) and is stopped by PID.
struct HttpGitServer {
    /// Holds the repository and the script until the server is stopped.
    _dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

impl HttpGitServer {
    fn start(tokens: &[&str]) -> HttpGitServer {
        let dir = tempfile::tempdir().expect("temp dir");
        make_repo(dir.path());
        let script = dir.path().join("server.py");
        std::fs::write(&script, HTTP_GIT_SERVER).expect("write");
        let port_file = dir.path().join("port");
        let child = Command::new("python3")
            .arg(&script)
            .arg(dir.path())
            .arg(tokens.join(","))
            .arg(&port_file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut server = HttpGitServer {
            _dir: dir,
            child,
            port: 0,
        };
        for _ in 0..200 {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                server.port = port.trim().parse().expect("a port");
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the HTTP git server did not start");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/repo.git", self.port)
    }
}

impl Drop for HttpGitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn with_secrets(secrets: &[(&str, &str)]) -> SessionServices {
    SessionServices {
        secrets: secrets
            .iter()
            .map(|(id, value)| (id.to_string(), value.as_bytes().to_vec()))
            .collect(),
        ..Default::default()
    }
}

/// The files under `dirs` that hold `needle` (grep, run off the test's runtime).
async fn files_holding(dirs: Vec<PathBuf>, needle: &str) -> String {
    let out = tokio::process::Command::new("grep")
        .args(["-r", "-l", "-a", "-F", "-D", "skip", "-e", needle, "--"])
        .args(dirs.iter().filter(|d| d.exists()))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("grep runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// LLB git sources over authenticated smart HTTP: the session's `GIT_AUTH_TOKEN` sent as
/// upstream sends it; without it a clear failure naming the remote; the host-specific secret
/// (`<id>.<host>:<port>`) before the generic one and the header secret before the token; a
/// different token leaving the dependent step cached; the token in neither the image (nor its
/// kept .git) nor the daemon's files.
#[tokio::test]
async fn http_sources_authenticate_with_the_session_s_secrets() {
    let (token, other) = ("nodekit-git-token-7f3a9c", "nodekit-git-token-other-51e2");
    let server = HttpGitServer::start(&[token, other]);
    let daemon = TestDaemon::start("git-http-auth").await;
    let source = || {
        let git = Git::new(&server.url(), "v1").attr("git.keepgitdir", "true");
        reading(&git.into_state(), "http")
    };
    let image = "nodekit.test/git:http-auth";
    let (built, updates) = build_with(
        &daemon,
        &source(),
        image,
        with_secrets(&[("GIT_AUTH_TOKEN", token)]),
    )
    .await;
    built.unwrap();
    assert!(!step_cached(&updates));
    assert_eq!(run_in_image(image, &["cat", "/out/f"]), "one\n");

    let err = build(&daemon, &source(), "nodekit.test/git:http-noauth")
        .await
        .0
        .expect_err("the server wants auth");
    assert!(err.contains(&server.url()), "{err}");
    assert!(err.contains("requires authentication"), "{err}");
    assert!(err.contains("GIT_AUTH_TOKEN"), "{err}");
    let wrong = with_secrets(&[("GIT_AUTH_TOKEN", "wrong")]);
    let err = build_with(&daemon, &source(), "nodekit.test/git:http-wrong", wrong)
        .await
        .0
        .expect_err("the server refuses a wrong token");
    assert!(err.contains("requires authentication"), "{err}");

    let host_token = format!("GIT_AUTH_TOKEN.127.0.0.1:{}", server.port);
    let login = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("x-access-token:{token}"),
    );
    let header = format!("basic {login}");
    for secrets in [
        vec![("GIT_AUTH_TOKEN", other)],
        vec![("GIT_AUTH_TOKEN", "wrong"), (host_token.as_str(), other)],
        vec![("GIT_AUTH_TOKEN", "wrong"), ("GIT_AUTH_HEADER", &header)],
    ] {
        let (built, updates) = build_with(&daemon, &source(), image, with_secrets(&secrets)).await;
        built.unwrap_or_else(|e| panic!("{secrets:?}: {e}"));
        assert!(
            step_cached(&updates),
            "{secrets:?}: the token is no part of the key"
        );
    }

    let find = format!("find / -xdev -type f -exec grep -l -e {token} -e {other} {{}} +; true");
    assert_eq!(run_in_image(image, &["sh", "-c", &find]), "");
    let dirs = vec![
        daemon.root.clone(),
        nodekit_test_support::TestEnv::get().mount_source_root("git-http-auth"),
    ];
    for needle in [token, other, login.as_str()] {
        assert_eq!(files_holding(dirs.clone(), needle).await, "", "{needle}");
    }
    daemon.stop().await;
}

/// Dockerfile `ADD http://…/repo.git#tag` authenticates with the build's `GIT_AUTH_TOKEN`
/// secret (`--secret id=GIT_AUTH_TOKEN`), as upstream's, whose ADD names it by default.
#[tokio::test]
async fn a_dockerfile_adds_a_repository_over_authenticated_http() {
    use std::collections::BTreeMap;

    let token = "nodekit-git-add-token-93bd";
    let server = HttpGitServer::start(&[token]);
    let daemon = TestDaemon::start("git-http-add").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dockerfile = format!(
        "ARG BASE\nFROM ${{BASE}}\nADD {url}#v1:sub /tagged/\n",
        url = server.url()
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write");
    let request = |secrets: &[(&str, &str)]| BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: BTreeMap::from([(
            "build-arg:BASE".to_string(),
            nodekit_test_support::TestEnv::get().local_image.clone(),
        )]),
        services: SessionServices {
            locals: crate::helpers::dockerfile_dirs(dir.path()),
            ..with_secrets(secrets)
        },
        exporters: image_output("nodekit.test/git:http-add"),
        ..Default::default()
    };
    let (refused, _) = run_build(&daemon, request(&[])).await;
    let err = refused.expect_err("the server wants auth");
    assert!(err.contains(&server.url()), "{err}");
    assert!(err.contains("requires authentication"), "{err}");
    let (built, _) = run_build(&daemon, request(&[("GIT_AUTH_TOKEN", token)])).await;
    built.unwrap();
    assert_eq!(
        run_in_image("nodekit.test/git:http-add", &["cat", "/tagged/g"]),
        "in-sub\n"
    );
    daemon.stop().await;
}
