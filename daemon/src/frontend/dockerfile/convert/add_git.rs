//! `ADD <git repository> <dest>`: the repository checked out by the daemon (a `git://` source)
//! and its files copied to the destination, as upstream's Dockerfile frontend does. The forms
//! are upstream's (`dfgitutil`): `https://host/repo.git#ref:subdir`, `git://…`, `ssh://…`,
//! `git@host:repo.git`, and the query keys `ref`, `tag`, `branch`, `subdir`,
//! `checksum`/`commit`, `keep-git-dir`.

use nodekit_dockerfile::AddInstruction;
use nodekit_llb_builder::Git;

/// A Git source of ADD, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitRef {
    pub remote: String,
    pub reference: String,
    pub subdir: String,
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
}

/// Whether `source` names a Git repository (upstream's rules: a scheme of git, ssh, or http(s)
/// with a path ending `.git`, or the scp form `user@host:path`).
pub fn is_git_source(source: &str) -> bool {
    if source.starts_with("git://") || source.starts_with("ssh://") {
        return true;
    }
    if source.starts_with("http://") || source.starts_with("https://") {
        let path = source.split(['#', '?']).next().unwrap_or(source);
        return path.trim_end_matches('/').ends_with(".git");
    }
    nodekit_llb_builder::is_scp_style(source)
}

impl GitRef {
    pub fn parse(source: &str) -> Result<GitRef, String> {
        let (rest, fragment) = match source.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (source, None),
        };
        let (remote, query) = match rest.split_once('?') {
            Some((remote, query)) => (remote, Some(query)),
            None => (rest, None),
        };
        let mut git = GitRef {
            remote: remote.to_string(),
            reference: String::new(),
            subdir: String::new(),
            checksum: None,
            keep_git_dir: None,
        };
        if let Some(fragment) = fragment {
            let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
            git.reference = reference.to_string();
            git.subdir = subdir.to_string();
        }
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            git.apply_query(pair, fragment.is_some())?;
        }
        Ok(git)
    }

    fn apply_query(&mut self, pair: &str, has_fragment: bool) -> Result<(), String> {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let clash = |what: &str| format!("{what} is given both in the fragment and as {key}=");
        match key {
            "ref" | "tag" | "branch" => {
                if has_fragment && !self.reference.is_empty() {
                    return Err(clash("the ref"));
                }
                self.reference = value.to_string();
            }
            "subdir" => {
                if has_fragment && !self.subdir.is_empty() {
                    return Err(clash("the subdir"));
                }
                self.subdir = value.to_string();
            }
            "checksum" | "commit" => self.checksum = Some(value.to_string()),
            "keep-git-dir" => {
                let keep = value
                    .parse::<bool>()
                    .map_err(|_| format!("invalid keep-git-dir value {value:?}"))?;
                self.keep_git_dir = Some(keep);
            }
            other => return Err(format!("unexpected query parameter {other:?}")),
        }
        Ok(())
    }

    /// The full URL git fetches (an scp-style remote as it is).
    fn full_url(&self) -> String {
        self.remote.clone()
    }

    /// The checkout as a source state, with the instruction's `--keep-git-dir` and
    /// `--checksum` (a query's values win when the flag is absent).
    pub fn state(&self, add: &AddInstruction) -> nodekit_llb_builder::State {
        self.state_with(add.keep_git_dir, add.checksum.as_deref())
    }

    /// The checkout as a source state; `keep_git_dir` and `checksum` override the query's.
    pub fn state_with(
        &self,
        keep_git_dir: Option<bool>,
        checksum: Option<&str>,
    ) -> nodekit_llb_builder::State {
        let fragment = match (self.reference.as_str(), self.subdir.as_str()) {
            ("", "") => String::new(),
            (reference, "") => reference.to_string(),
            (reference, subdir) => format!("{reference}:{subdir}"),
        };
        let mut git = Git::new(&self.full_url(), &fragment);
        if keep_git_dir.or(self.keep_git_dir).unwrap_or(false) {
            git = git.attr("git.keepgitdir", "true");
        }
        if let Some(checksum) = checksum.or(self.checksum.as_deref()) {
            git = git.attr("git.checksum", checksum);
        }
        git.into_state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_sources_are_told_apart_from_other_urls_and_paths() {
        for git in [
            "https://example.com/repo.git",
            "https://example.com/repo.git#v1:sub",
            "git://example.com/repo",
            "ssh://git@example.com/repo",
            "git@example.com:team/repo.git",
        ] {
            assert!(is_git_source(git), "{git}");
        }
        for other in [
            "https://example.com/file.tar.gz",
            "./repo.git",
            "../x",
            "github.com/team/repo",
            "dir/file",
        ] {
            assert!(!is_git_source(other), "{other}");
        }
    }

    #[test]
    fn fragments_and_queries_give_ref_subdir_and_options() {
        let git = GitRef::parse("https://example.com/repo.git#v1:docs").unwrap();
        assert_eq!(
            (git.reference.as_str(), git.subdir.as_str()),
            ("v1", "docs")
        );
        let git = GitRef::parse(
            "https://example.com/repo.git?tag=v2&subdir=src&keep-git-dir=true&commit=abc",
        )
        .unwrap();
        assert_eq!(git.remote, "https://example.com/repo.git");
        assert_eq!((git.reference.as_str(), git.subdir.as_str()), ("v2", "src"));
        assert_eq!(git.keep_git_dir, Some(true));
        assert_eq!(git.checksum.as_deref(), Some("abc"));
        assert!(GitRef::parse("https://example.com/repo.git?nosuch=1").is_err());
        assert!(GitRef::parse("https://example.com/repo.git?ref=a#b").is_err());
    }

    /// As upstream's `llb.Git`: an ssh remote authenticates with the client's `default` agent.
    #[test]
    fn ssh_sources_forward_the_default_agent() {
        use prost::Message;
        for source in [
            "ssh://git@127.0.0.1:2222/srv/repo.git#v1",
            "git@example.com:team/repo.git#v1",
        ] {
            let git = GitRef::parse(source).unwrap();
            let definition = nodekit_llb_builder::marshal(&git.state_with(None, None)).unwrap();
            let sources: Vec<_> = definition
                .def
                .iter()
                .filter_map(|op| nodekit_proto::pb::Op::decode(op.as_ref()).ok())
                .filter_map(|op| match op.op {
                    Some(nodekit_proto::pb::op::Op::Source(source)) => Some(source),
                    _ => None,
                })
                .collect();
            assert_eq!(sources.len(), 1, "{source}");
            let attrs = &sources[0].attrs;
            assert_eq!(
                attrs.get("git.mountsshsock").map(String::as_str),
                Some("default")
            );
            assert!(
                !attrs.contains_key("git.knownsshhosts"),
                "no known hosts from a Dockerfile"
            );
            let caps = definition.metadata.values().flat_map(|m| m.caps.keys());
            assert!(caps.into_iter().any(|c| c == "source.git.mountsshsock"));
        }
    }
}
