//! `git://` sources: the daemon resolves the ref to a commit with `git ls-remote` (the cache key,
//! known before any content is fetched), fetches into a bare clone kept per remote under its
//! root (so later fetches are incremental), and checks the commit out into a new snapshot.
//! The `git` CLI runs with a clean environment: no user or system config, no prompts, the
//! daemon's proxy variables. Auth secrets come from the client's session and reach git only
//! through its environment. Over the ssh transport (`ssh://`, scp-style `user@host:path`), ssh
//! reaches the client's agent (`git.mountsshsock`) through a socket the daemon forwards over the
//! session, and checks the host against `git.knownsshhosts` (not at all without it, as
//! upstream).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use base64::Engine;
use nodekit_llb_builder::is_scp_style;
use nodekit_proto::pb::SourceOp;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::solver::cache::keys;
use crate::solver::error::SolveError;
use crate::solver::ops::exec::{secrets, ssh};
use crate::solver::ops::OpContext;
use crate::solver::result::Ref;

/// Attributes this source understands; any other `git.*` attribute is refused by name.
const KNOWN_ATTRS: &[&str] = &[
    "git.keepgitdir",
    "git.fullurl",
    "git.authtokensecret",
    "git.authheadersecret",
    "git.checksum",
    "git.skipsubmodules",
    "git.mountsshsock",
    "git.knownsshhosts",
];

/// Environment variables of the daemon that git honours for its proxy.
const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

/// One lock per remote: fetches into the same bare clone must not overlap.
static REMOTE_LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// What a git source asks for.
#[derive(Debug, PartialEq)]
struct GitSpec {
    remote: String,
    git_ref: String,
    subdir: String,
    keep_git_dir: bool,
    checksum: Option<String>,
    skip_submodules: bool,
    /// Secret ids of the token and the header (`git.authtokensecret`, `git.authheadersecret`);
    /// none without the attribute, as upstream (its client sets both by default).
    token_secret: Option<String>,
    header_secret: Option<String>,
    /// The client's SSH agent ssh authenticates with (`git.mountsshsock`), if any.
    ssh_agent: Option<String>,
    /// known_hosts lines for ssh (`git.knownsshhosts`); none means no host key checking.
    known_hosts: Option<String>,
}

impl GitSpec {
    fn parse(identifier: &str, attrs: &BTreeMap<String, String>) -> Result<GitSpec, SolveError> {
        let rest = identifier.strip_prefix("git://").unwrap_or(identifier);
        let (path, fragment) = rest.split_once('#').unwrap_or((rest, ""));
        let (git_ref, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
        let remote = match attrs.get("git.fullurl") {
            Some(url) if url.contains("://") => url.clone(),
            Some(url) if is_scp_style(url) => url.clone(),
            Some(url) => format!("https://{url}"),
            None => format!("https://{path}"),
        };
        if let Some(unknown) = attrs
            .keys()
            .find(|k| k.starts_with("git.") && !KNOWN_ATTRS.contains(&k.as_str()))
        {
            return Err(SolveError::Unsupported(format!(
                "git source {identifier}: attribute {unknown} is not supported by nodekitd"
            )));
        }
        let flag = |key: &str| attrs.get(key).is_some_and(|v| v == "true");
        let non_empty = |key: &str| attrs.get(key).filter(|v| !v.is_empty()).cloned();
        Ok(GitSpec {
            remote,
            git_ref: git_ref.to_string(),
            subdir: clean_subdir(subdir)?,
            keep_git_dir: flag("git.keepgitdir"),
            checksum: non_empty("git.checksum"),
            skip_submodules: flag("git.skipsubmodules"),
            token_secret: non_empty("git.authtokensecret"),
            header_secret: non_empty("git.authheadersecret"),
            ssh_agent: non_empty("git.mountsshsock"),
            known_hosts: non_empty("git.knownsshhosts"),
        })
    }

    /// The remote's host with its port, if written (Go's `url.URL.Host`, which upstream names
    /// host-specific secrets by: `GIT_AUTH_TOKEN.example.com:8443`); none for scp-style remotes.
    fn authority(&self) -> Option<&str> {
        let (_, rest) = self.remote.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        (!host.is_empty()).then_some(host)
    }
}

fn clean_subdir(subdir: &str) -> Result<String, SolveError> {
    let parts: Vec<&str> = subdir
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(SolveError::InvalidDefinition(format!(
            "git subdir {subdir:?} leaves the repository"
        )));
    }
    Ok(parts.join("/"))
}

fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.chars().all(|c| c.is_ascii_hexdigit())
}

pub async fn run(op: &OpContext<'_>, source: &SourceOp) -> Result<Ref, SolveError> {
    let spec = GitSpec::parse(&source.identifier, &source.attrs)?;
    let root = op.solver.worker.mount_source_root().join("git");
    // Held until git is done: the agent's socket and the known_hosts file ssh reads.
    let ssh = SshAccess::prepare(op, &spec, &root).await?;
    let mut env = auth_env(op, &spec).await?;
    env.extend(ssh.env());
    let git = Git { env, root };
    let lock = remote_lock(&spec.remote);
    let _guard = lock.lock().await;
    let commit = resolve(&git, &spec).await?;
    let key = cache_key(&spec, &commit);
    let bare = git.bare_clone(&spec, &commit).await?;
    check_sum(&git, &spec, &bare, &commit).await?;
    let checkout = git.checkout(&spec, &bare, &commit).await?;
    let base = Ref::default();
    let active = op.prepare(&base).await?;
    let copied = match op.mount_active(&active) {
        Ok(mount) => {
            let from = checkout.path().join(&spec.subdir);
            let copied = copy_tree(&from, mount.path()).await;
            drop(mount);
            copied
        }
        Err(error) => Err(error),
    };
    if let Err(error) = copied {
        let _ = op.solver.worker.discard(active).await;
        return Err(error);
    }
    Ok(op.commit(active, &base).await?.keyed(key))
}

fn remote_lock(remote: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut locks = REMOTE_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks.entry(remote.to_string()).or_default().clone()
}

/// Commit + keep-git-dir (with the ref) + subdir + skip-submodules, as upstream.
fn cache_key(spec: &GitSpec, commit: &str) -> crate::solver::cache::CacheKey {
    let git_dir = if spec.keep_git_dir {
        format!(".git#{}", spec.git_ref)
    } else {
        String::new()
    };
    let attrs = [
        ("keepgitdir", git_dir),
        ("subdir", spec.subdir.clone()),
        (
            "skipsubmodules",
            if spec.skip_submodules { "1" } else { "" }.to_string(),
        ),
    ];
    keys::content_key("source.git", commit, &attrs)
}

/// The commit the source names: a full-SHA checksum or ref directly, else `git ls-remote`.
async fn resolve(git: &Git, spec: &GitSpec) -> Result<String, SolveError> {
    let commit = match &spec.checksum {
        Some(sum) if is_full_sha(sum) && !spec.keep_git_dir => sum.clone(),
        _ if is_full_sha(&spec.git_ref) => spec.git_ref.clone(),
        _ => ls_remote(git, spec).await?,
    };
    Ok(commit)
}

/// The checksum must prefix the resolved object or, for an annotated tag, its commit.
async fn check_sum(git: &Git, spec: &GitSpec, bare: &Path, sha: &str) -> Result<(), SolveError> {
    let Some(sum) = spec
        .checksum
        .as_ref()
        .filter(|s| !sha.starts_with(s.as_str()))
    else {
        return Ok(());
    };
    let peel = format!("{sha}^{{commit}}");
    let commit = git
        .run(Some(bare), &["rev-parse", "--verify", "--quiet", &peel])
        .await
        .unwrap_or_default();
    let commit = commit.trim();
    if commit.starts_with(sum.as_str()) {
        return Ok(());
    }
    Err(SolveError::Other(format!(
        "expected checksum to match {sum}, got {} for {}#{}",
        if commit.is_empty() { sha } else { commit },
        spec.remote,
        spec.git_ref
    )))
}

async fn ls_remote(git: &Git, spec: &GitSpec) -> Result<String, SolveError> {
    let wanted = if spec.git_ref.is_empty() {
        "HEAD"
    } else {
        spec.git_ref.as_str()
    };
    let out = git
        .run(None, &["ls-remote", "--", &spec.remote, wanted])
        .await
        .map_err(|e| {
            let e = auth_hint(spec, e);
            SolveError::Other(format!("resolving {}#{wanted}: {e}", spec.remote))
        })?;
    pick_ref(&out, wanted).ok_or_else(|| {
        SolveError::Other(format!(
            "repository {} does not contain ref {wanted}",
            spec.remote
        ))
    })
}

/// From ls-remote's lines: `refs/<ref>`, then `refs/heads/<ref>`, then the tag (peeled first).
fn pick_ref(listing: &str, wanted: &str) -> Option<String> {
    let refs: HashMap<&str, &str> = listing
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(sha, name)| (name, sha))
        .collect();
    let tag = format!("refs/tags/{wanted}");
    [
        wanted.to_string(),
        format!("refs/{wanted}"),
        format!("refs/heads/{wanted}"),
        format!("{tag}^{{}}"),
        tag,
    ]
    .iter()
    .find_map(|name| refs.get(name.as_str()).map(|s| s.to_string()))
}

/// Authorization for http(s) remotes from the session's secrets, the first found of
/// `<header>.<host>`, `<token>.<host>`, `<header>`, `<token>`; none found means no auth, silently
/// (as upstream: a public repository needs none; a server that wants it refuses the fetch).
/// Given to git in its environment, never on disk nor on its command line.
async fn auth_env(op: &OpContext<'_>, spec: &GitSpec) -> Result<Vec<(String, String)>, SolveError> {
    if !spec.remote.starts_with("http") {
        return Ok(Vec::new());
    }
    for (id, is_token) in auth_secret_ids(spec) {
        let Some(value) = secrets::fetch(op, &id, true).await? else {
            continue;
        };
        // Trimmed (unlike upstream): a secret file's final newline would break the header.
        let value = String::from_utf8_lossy(&value).trim().to_string();
        return Ok(extra_header_env(
            &spec.remote,
            &auth_header(&value, is_token),
        ));
    }
    Ok(Vec::new())
}

/// git's error, with which secrets authenticate when an http(s) remote asked for credentials
/// (git's own words name neither: it only could not prompt for a username).
fn auth_hint(spec: &GitSpec, error: String) -> String {
    let wants_auth = ["could not read Username", "Authentication failed"]
        .iter()
        .any(|words| error.contains(words));
    let ids: Vec<String> = auth_secret_ids(spec)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if !wants_auth || ids.is_empty() || !spec.remote.starts_with("http") {
        return error;
    }
    format!(
        "{error} (the remote requires authentication; the build's secrets {} are missing or refused)",
        ids.join(", ")
    )
}

/// The secret ids to try, in upstream's order, each with whether it holds a token.
fn auth_secret_ids(spec: &GitSpec) -> Vec<(String, bool)> {
    let header = spec.header_secret.as_deref();
    let token = spec.token_secret.as_deref();
    let mut ids = Vec::new();
    if let Some(host) = spec.authority() {
        ids.extend(header.map(|id| (format!("{id}.{host}"), false)));
        ids.extend(token.map(|id| (format!("{id}.{host}"), true)));
    }
    ids.extend(header.map(|id| (id.to_string(), false)));
    ids.extend(token.map(|id| (id.to_string(), true)));
    ids
}

/// The `Authorization` value: a token as GitHub's basic `x-access-token` login, a header secret
/// as it is.
fn auth_header(value: &str, is_token: bool) -> String {
    if is_token {
        let login = format!("x-access-token:{value}");
        let basic = base64::engine::general_purpose::STANDARD.encode(login);
        format!("basic {basic}")
    } else {
        value.to_string()
    }
}

/// `http.<scope>.extraheader` as git's environment config: sent only to the remote itself (not
/// to submodules elsewhere), or to all of github.com for a github.com remote (as upstream).
fn extra_header_env(remote: &str, authorization: &str) -> Vec<(String, String)> {
    let scope = ["https://github.com/", "https://www.github.com/"]
        .into_iter()
        .find(|prefix| remote.starts_with(prefix))
        .unwrap_or(remote);
    vec![
        ("GIT_CONFIG_COUNT".into(), "1".into()),
        (
            "GIT_CONFIG_KEY_0".into(),
            format!("http.{scope}.extraheader"),
        ),
        (
            "GIT_CONFIG_VALUE_0".into(),
            format!("Authorization: {authorization}"),
        ),
    ]
}

/// What ssh needs to reach a remote: the forwarded agent and the hosts it trusts.
struct SshAccess {
    agent: Option<ssh::Forwarded>,
    known_hosts: Option<tempfile::NamedTempFile>,
}

impl SshAccess {
    /// The client's agent, required once the source names one (upstream's error when the
    /// client does not forward it), and the source's known hosts in a file of their own.
    async fn prepare(
        op: &OpContext<'_>,
        spec: &GitSpec,
        root: &Path,
    ) -> Result<SshAccess, SolveError> {
        let agent = match &spec.ssh_agent {
            Some(id) => ssh::forward(op, &agent_socket(id)).await?,
            None => None,
        };
        let known_hosts = match &spec.known_hosts {
            Some(hosts) => Some(write_known_hosts(root, hosts).await?),
            None => None,
        };
        Ok(SshAccess { agent, known_hosts })
    }

    /// `GIT_SSH_COMMAND` (always set, as upstream: no user or system ssh config; the known hosts
    /// if given, else no host key checking) and `SSH_AUTH_SOCK` if an agent is forwarded.
    /// BatchMode: ssh never asks (a daemon started from a terminal would have it wait there).
    fn env(&self) -> Vec<(String, String)> {
        let mut command = "ssh -F /dev/null -o BatchMode=yes".to_string();
        match &self.known_hosts {
            Some(file) => {
                let path = shell_quote(&file.path().to_string_lossy());
                command.push_str(&format!(" -o UserKnownHostsFile={path}"));
            }
            // Nothing is learned either: no known_hosts written under the daemon's root.
            None => {
                command.push_str(" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null")
            }
        }
        let mut env = vec![("GIT_SSH_COMMAND".to_string(), command)];
        if let Some(agent) = &self.agent {
            let socket = agent.socket().to_string_lossy().into_owned();
            env.push(("SSH_AUTH_SOCK".to_string(), socket));
        }
        env
    }
}

/// The agent's socket for the daemon's own ssh: its user only (upstream's mode 0700).
fn agent_socket(id: &str) -> ssh::SocketOptions {
    ssh::SocketOptions {
        id: id.to_string(),
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        mode: 0o700,
        optional: false,
    }
}

async fn write_known_hosts(
    root: &Path,
    hosts: &str,
) -> Result<tempfile::NamedTempFile, SolveError> {
    let failed = |e: std::io::Error| SolveError::Other(format!("writing git.knownsshhosts: {e}"));
    let dir = root.join("tmp");
    tokio::fs::create_dir_all(&dir).await.map_err(failed)?;
    let mut file = tempfile::NamedTempFile::new_in(&dir).map_err(failed)?;
    std::io::Write::write_all(&mut file, hosts.as_bytes()).map_err(failed)?;
    Ok(file)
}

/// `s` as one word for the shell git runs `GIT_SSH_COMMAND` with.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The git CLI with a clean environment.
struct Git {
    /// Auth and ssh settings, on top of the clean environment.
    env: Vec<(String, String)>,
    root: PathBuf,
}

impl Git {
    async fn run(&self, dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("git");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.root)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .kill_on_drop(true)
            .args(args);
        for var in PROXY_VARS {
            if let Some(value) = std::env::var_os(var) {
                cmd.env(var, value);
            }
        }
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        let out = cmd
            .output()
            .await
            .map_err(|e| format!("running git: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(format!("git {}: {}", args[0], stderr.trim()))
        }
    }

    /// The bare clone of the remote, holding `commit` under `refs/nodekit/<commit>`.
    async fn bare_clone(&self, spec: &GitSpec, commit: &str) -> Result<PathBuf, SolveError> {
        let name = hex::encode(Sha256::digest(spec.remote.as_bytes()));
        let bare = self.root.join("remotes").join(name);
        let failed = |e: String| {
            let e = auth_hint(spec, e);
            SolveError::Other(format!("fetching {}: {e}", spec.remote))
        };
        if !bare.join("HEAD").exists() {
            tokio::fs::create_dir_all(&bare)
                .await
                .map_err(|e| failed(e.to_string()))?;
            self.run(Some(&bare), &["init", "--bare", "--quiet"])
                .await
                .map_err(failed)?;
        }
        let have = format!("{commit}^{{commit}}");
        if self
            .run(Some(&bare), &["cat-file", "-e", &have])
            .await
            .is_err()
        {
            self.fetch(&bare, spec, commit).await.map_err(failed)?;
        }
        let local_ref = format!("refs/nodekit/{commit}");
        self.run(Some(&bare), &["update-ref", &local_ref, commit])
            .await
            .map_err(failed)?;
        Ok(bare)
    }

    /// Fetches the ref (or the commit, when the source names a SHA) with its tags.
    async fn fetch(&self, bare: &Path, spec: &GitSpec, commit: &str) -> Result<(), String> {
        let base = ["fetch", "--quiet", "--force", "--tags", "--", &spec.remote];
        let wanted = if spec.git_ref.is_empty() || is_full_sha(&spec.git_ref) {
            commit.to_string()
        } else {
            spec.git_ref.clone()
        };
        let args: Vec<&str> = base.iter().copied().chain([wanted.as_str()]).collect();
        if self.run(Some(bare), &args).await.is_ok() {
            return Ok(());
        }
        // Servers that refuse a SHA want: all branches and tags.
        let all = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];
        let args: Vec<&str> = base.iter().copied().chain(all).collect();
        self.run(Some(bare), &args).await.map(|_| ())
    }

    /// A work tree of `commit` (with submodules unless skipped) in a temporary directory.
    async fn checkout(
        &self,
        spec: &GitSpec,
        bare: &Path,
        commit: &str,
    ) -> Result<tempfile::TempDir, SolveError> {
        let failed = |e: String| SolveError::Other(format!("checking out {}: {e}", spec.remote));
        let tmp_root = self.root.join("tmp");
        tokio::fs::create_dir_all(&tmp_root)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let dir = tempfile::tempdir_in(&tmp_root).map_err(|e| failed(e.to_string()))?;
        let work = dir.path();
        let bare_str = bare.to_string_lossy();
        let local_ref = format!("refs/nodekit/{commit}");
        let steps: [&[&str]; 4] = [
            &["init", "--quiet"],
            &["remote", "add", "origin", &spec.remote],
            &["fetch", "--quiet", "--no-tags", "--", &bare_str, &local_ref],
            &["checkout", "--quiet", "--detach", commit],
        ];
        for args in steps {
            self.run(Some(work), args).await.map_err(failed)?;
        }
        if !spec.skip_submodules && work.join(".gitmodules").exists() {
            let args = ["submodule", "update", "--init", "--recursive", "--depth=1"];
            self.run(Some(work), &args).await.map_err(failed)?;
        }
        if spec.keep_git_dir {
            self.keep_ref(work, bare, spec, commit)
                .await
                .map_err(failed)?;
        } else {
            tokio::fs::remove_dir_all(work.join(".git"))
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        Ok(dir)
    }

    /// With the .git kept, a branch ref is checked out as that branch (as upstream); a tag (known
    /// to the bare clone, which fetched with tags) stays a detached HEAD.
    async fn keep_ref(
        &self,
        work: &Path,
        bare: &Path,
        spec: &GitSpec,
        commit: &str,
    ) -> Result<(), String> {
        if spec.git_ref.is_empty() || is_full_sha(&spec.git_ref) {
            return Ok(());
        }
        let branch = spec.git_ref.trim_start_matches("refs/heads/");
        if branch.starts_with("refs/") || branch.starts_with("tags/") {
            return Ok(());
        }
        let tags = format!("refs/tags/{branch}");
        if self
            .run(Some(bare), &["show-ref", "--verify", "--quiet", &tags])
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.run(Some(work), &["checkout", "--quiet", "-B", branch, commit])
            .await
            .map(|_| ())
    }
}

/// Copies the work tree (or its subdir) into the snapshot, keeping modes and links.
async fn copy_tree(from: &Path, to: &Path) -> Result<(), SolveError> {
    if !from.is_dir() {
        return Err(SolveError::Other(format!(
            "git subdir {} is not a directory in the checkout",
            from.display()
        )));
    }
    let mut source = from.as_os_str().to_owned();
    source.push("/.");
    let out = Command::new("cp")
        .arg("-a")
        .arg(source)
        .arg(to)
        .output()
        .await
        .map_err(|e| SolveError::Other(format!("copying the checkout: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SolveError::Other(format!(
            "copying the checkout: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn identifiers_give_remote_ref_and_subdir() {
        let spec = GitSpec::parse("git://github.com/a/b.git#v1:docs/./x", &attrs(&[]));
        let spec = spec.expect("valid");
        assert_eq!(spec.remote, "https://github.com/a/b.git");
        assert_eq!(
            (spec.git_ref.as_str(), spec.subdir.as_str()),
            ("v1", "docs/x")
        );
        let full = attrs(&[("git.fullurl", "git://127.0.0.1:9/r.git")]);
        let spec = GitSpec::parse("git://127.0.0.1:9/r.git", &full).expect("valid");
        assert_eq!(spec.remote, "git://127.0.0.1:9/r.git");
    }

    #[test]
    fn ssh_remotes_keep_their_transport_and_agent() {
        let scp = attrs(&[
            ("git.fullurl", "git@github.com:a/b.git"),
            ("git.mountsshsock", "deploy"),
            ("git.knownsshhosts", "github.com ssh-ed25519 AAAA\n"),
        ]);
        let spec = GitSpec::parse("git://github.com/a/b.git", &scp).expect("scp-style");
        assert_eq!(spec.remote, "git@github.com:a/b.git");
        assert_eq!(spec.ssh_agent.as_deref(), Some("deploy"));
        assert!(spec.known_hosts.is_some());
        let url = attrs(&[("git.fullurl", "ssh://git@h:2222/a.git")]);
        let spec = GitSpec::parse("git://h:2222/a.git", &url).expect("ssh url");
        assert_eq!(spec.remote, "ssh://git@h:2222/a.git");
        assert_eq!((spec.ssh_agent, spec.known_hosts), (None, None));
    }

    #[test]
    fn ssh_checks_hosts_only_when_known_hosts_are_given() {
        let none = SshAccess {
            agent: None,
            known_hosts: None,
        };
        let env = none.env();
        assert_eq!(env.len(), 1, "no agent, no SSH_AUTH_SOCK");
        assert!(env[0].1.contains("StrictHostKeyChecking=no"), "{env:?}");
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let path = file.path().to_string_lossy().into_owned();
        let known = SshAccess {
            agent: None,
            known_hosts: Some(file),
        };
        let command = known.env().remove(0).1;
        assert!(
            command.contains(&format!("UserKnownHostsFile='{path}'")),
            "{command}"
        );
        assert!(!command.contains("StrictHostKeyChecking"), "{command}");
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }

    #[test]
    fn unknown_attrs_and_escaping_subdirs_are_refused() {
        let unknown = attrs(&[("git.mtime", "checkout")]);
        let err = GitSpec::parse("git://h/a.git", &unknown).expect_err("unknown");
        assert!(err.to_string().contains("git.mtime"), "{err}");
        assert!(GitSpec::parse("git://h/a.git#main:../x", &attrs(&[])).is_err());
    }

    #[test]
    fn auth_secrets_are_named_by_host_and_port_headers_first() {
        let named = attrs(&[
            ("git.fullurl", "https://u:p@git.example:8443/a.git"),
            ("git.authtokensecret", "TOKEN"),
            ("git.authheadersecret", "HEADER"),
        ]);
        let spec = GitSpec::parse("git://git.example:8443/a.git", &named).expect("valid");
        let ids: Vec<_> = auth_secret_ids(&spec)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(
            ids,
            [
                "HEADER.git.example:8443",
                "TOKEN.git.example:8443",
                "HEADER",
                "TOKEN"
            ]
        );
        let unnamed = GitSpec::parse("git://git.example/a.git", &attrs(&[])).expect("valid");
        assert!(
            auth_secret_ids(&unnamed).is_empty(),
            "no attributes, no auth"
        );
        assert_eq!(
            auth_header("t", true),
            format!(
                "basic {}",
                base64::engine::general_purpose::STANDARD.encode("x-access-token:t")
            )
        );
        assert_eq!(auth_header("bearer x", false), "bearer x");
        let env = extra_header_env("https://github.com/a/b.git", "x");
        assert_eq!(env[1].1, "http.https://github.com/.extraheader");
        let env = extra_header_env("http://127.0.0.1:1/r.git", "x");
        assert_eq!(env[1].1, "http.http://127.0.0.1:1/r.git.extraheader");
        assert_eq!(env[2].1, "Authorization: x");
    }

    #[test]
    fn refs_prefer_exact_then_heads_then_peeled_tags() {
        let listing = "aaa\trefs/heads/v1\nbbb\trefs/tags/v1\nccc\trefs/tags/v1^{}\n";
        assert_eq!(pick_ref(listing, "v1").as_deref(), Some("aaa"));
        let listing = "bbb\trefs/tags/v1\nccc\trefs/tags/v1^{}\n";
        assert_eq!(pick_ref(listing, "v1").as_deref(), Some("ccc"));
        assert_eq!(pick_ref("ddd\tHEAD\n", "HEAD").as_deref(), Some("ddd"));
        assert_eq!(pick_ref("", "main"), None);
    }
}
