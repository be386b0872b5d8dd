//! Git sources: a repository checked out by the daemon (BuildKit's `llb.Git`).

use std::collections::BTreeMap;

use crate::options::OpOptions;
use crate::source::SourceNode;
use crate::state::State;

const MOUNT_SSH_SOCK: &str = "git.mountsshsock";
const KNOWN_SSH_HOSTS: &str = "git.knownsshhosts";
/// The secret ids the daemon authenticates http(s) remotes with, by default (upstream's
/// `llb.Git`): the daemon itself uses none for a source without them.
const DEFAULT_AUTH_SECRETS: [(&str, &str); 2] = [
    ("git.authtokensecret", "GIT_AUTH_TOKEN"),
    ("git.authheadersecret", "GIT_AUTH_HEADER"),
];

/// The checkout of `remote` at `git_ref` (optionally a `subdir` of it), with `git.*` attributes.
#[derive(Debug, Clone)]
pub struct Git {
    identifier: String,
    attrs: BTreeMap<String, String>,
    ssh: bool,
    opts: OpOptions,
}

impl Git {
    /// `remote` is the full URL (`git.fullurl`); `fragment` is `ref[:subdir]` (may be empty).
    /// A remote reached over ssh (`ssh://…`, `user@host:path`) authenticates with the client's
    /// `default` SSH agent unless [`Git::mount_ssh_sock`] names another, as upstream; an
    /// http(s) one with the session's `GIT_AUTH_TOKEN` or `GIT_AUTH_HEADER` secret, if any
    /// (an empty [`Git::attr`] value turns either off).
    pub fn new(remote: &str, fragment: &str) -> Git {
        let ssh = is_ssh_transport(remote);
        let mut identifier = format!("git://{}", identifier_path(remote, ssh));
        if !fragment.is_empty() {
            identifier = format!("{identifier}#{fragment}");
        }
        let mut attrs = BTreeMap::from([("git.fullurl".to_string(), remote.to_string())]);
        attrs.extend(
            DEFAULT_AUTH_SECRETS
                .iter()
                .map(|(key, id)| (key.to_string(), id.to_string())),
        );
        if ssh {
            attrs.insert(MOUNT_SSH_SOCK.to_string(), "default".to_string());
        }
        Git {
            identifier,
            attrs,
            ssh,
            opts: OpOptions::default(),
        }
    }

    /// Sets a `git.*` attribute (`git.keepgitdir`, `git.checksum`, `git.authtokensecret`, …).
    pub fn attr(mut self, key: &str, value: &str) -> Git {
        self.attrs.insert(key.to_string(), value.to_string());
        self
    }

    /// The client's SSH agent (its `--ssh` id) ssh authenticates with (ssh remotes only).
    pub fn mount_ssh_sock(self, id: &str) -> Git {
        if self.ssh {
            self.attr(MOUNT_SSH_SOCK, id)
        } else {
            self
        }
    }

    /// Adds a known_hosts line the daemon's ssh checks the remote's host key against (ssh
    /// remotes only); without any the daemon checks no host key, as upstream.
    pub fn known_ssh_hosts(mut self, line: &str) -> Git {
        if !self.ssh {
            return self;
        }
        let hosts = self.attrs.entry(KNOWN_SSH_HOSTS.to_string()).or_default();
        hosts.push_str(line.trim_end_matches('\n'));
        hosts.push('\n');
        self
    }

    /// The source as a state.
    pub fn into_state(self) -> State {
        let mut caps = vec!["source.git", "source.git.fullurl"];
        if self.ssh {
            caps.extend(["source.git.knownsshhosts", "source.git.mountsshsock"]);
        }
        SourceNode::new(self.identifier, self.attrs, caps).into_state(self.opts)
    }
}

/// `ssh://…` or scp-style `user@host:path` (upstream's pattern: a user of letters, digits, `-`
/// and `_`; a host of letters, digits, `-` and `.`).
pub fn is_ssh_transport(remote: &str) -> bool {
    if let Some((scheme, _)) = remote.split_once("://") {
        return scheme.eq_ignore_ascii_case("ssh");
    }
    is_scp_style(remote)
}

/// `user@host:path`, an ssh remote without a scheme.
pub fn is_scp_style(remote: &str) -> bool {
    !remote.contains("://") && scp_parts(remote).is_some()
}

/// The host and path of an scp-style remote.
fn scp_parts(remote: &str) -> Option<(&str, &str)> {
    let (user_host, path) = remote.split_once(':')?;
    let (user, host) = user_host.split_once('@')?;
    let word = |s: &str, extra: char| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == extra)
    };
    (word(user, '_') && word(host, '.')).then_some((host, path))
}

/// The identifier's `host/path`: an ssh remote's without its user (upstream builds the same
/// identifier for a repository over https and over ssh); others' as they are after the scheme.
fn identifier_path(remote: &str, ssh: bool) -> String {
    if ssh {
        if let Some((host, path)) = scp_parts(remote) {
            return format!("{host}/{}", path.trim_start_matches('/'));
        }
    }
    let bare = remote.split_once("://").map_or(remote, |(_, rest)| rest);
    match bare.split_once('/') {
        Some((authority, path)) if ssh => {
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{host}/{path}")
        }
        _ => bare.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_transports_are_recognised() {
        for ssh in [
            "ssh://git@h:2222/r.git",
            "SSH://h/r",
            "git@github.com:a/b.git",
        ] {
            assert!(is_ssh_transport(ssh), "{ssh}");
        }
        for other in [
            "https://h/r.git",
            "git://h/r",
            "github.com/a/b",
            "host:path",
            "a/b@h:x",
        ] {
            assert!(!is_ssh_transport(other), "{other}");
        }
    }

    #[test]
    fn ssh_remotes_forward_the_default_agent_and_drop_the_user_from_the_identifier() {
        let git = Git::new("git@github.com:a/b.git", "v1");
        assert_eq!(git.identifier, "git://github.com/a/b.git#v1");
        assert_eq!(git.attrs[MOUNT_SSH_SOCK], "default");
        let git = Git::new("ssh://git@127.0.0.1:2222/srv/r.git", "")
            .mount_ssh_sock("deploy")
            .known_ssh_hosts("[127.0.0.1]:2222 ssh-ed25519 AAAA\n")
            .known_ssh_hosts("other ssh-rsa BBBB");
        assert_eq!(git.identifier, "git://127.0.0.1:2222/srv/r.git");
        assert_eq!(git.attrs[MOUNT_SSH_SOCK], "deploy");
        assert_eq!(
            git.attrs[KNOWN_SSH_HOSTS],
            "[127.0.0.1]:2222 ssh-ed25519 AAAA\nother ssh-rsa BBBB\n"
        );
        let https = Git::new("https://h/r.git", "").mount_ssh_sock("x");
        assert!(!https.attrs.contains_key(MOUNT_SSH_SOCK));
        assert_eq!(https.attrs["git.authtokensecret"], "GIT_AUTH_TOKEN");
        assert_eq!(https.attrs["git.authheadersecret"], "GIT_AUTH_HEADER");
        assert_eq!(https.identifier, "git://h/r.git");
    }
}
