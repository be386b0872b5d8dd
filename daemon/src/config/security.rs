//! Who may connect: TLS files for tcp listeners (`--tlscert`, `--tlskey`, `--tlscacert`,
//! `[grpc.tls]`) and the owner of unix sockets (`--group`, `[grpc] uid`/`gid`).

use std::path::PathBuf;

use super::ConfigError;

/// The files of the tcp listeners' TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// With a CA, clients must present a certificate it signed (mutual TLS).
    pub ca: Option<PathBuf>,
}

/// The owner of the unix sockets; `None` keeps the process's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketOwner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// How the listeners are secured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerSecurity {
    pub tls: Option<TlsFiles>,
    pub socket_owner: SocketOwner,
}

/// TLS from flags and the file, as buildkitd: each flag wins over its key; no certificate and no
/// key turn TLS off. Unlike buildkitd, a CA without a certificate is refused rather than
/// dropped, since it asks for client certificates nobody would check.
pub fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
) -> Result<Option<TlsFiles>, ConfigError> {
    let invalid = |reason: &str| ConfigError::Tls(reason.to_string());
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key, ca })),
        (None, None) if ca.is_some() => Err(invalid(
            "--tlscacert ([grpc.tls] ca) needs --tlscert and --tlskey ([grpc.tls] cert and key)",
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(invalid(
            "--tlscert ([grpc.tls] cert) is set but --tlskey ([grpc.tls] key) is not",
        )),
        (None, Some(_)) => Err(invalid(
            "--tlskey ([grpc.tls] key) is set but --tlscert ([grpc.tls] cert) is not",
        )),
    }
}

/// `--group`: a group name or a numeric gid.
pub fn group_id(group: &str) -> Result<u32, ConfigError> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(found)) => Ok(found.gid.as_raw()),
        Ok(None) => Err(ConfigError::Group {
            group: group.into(),
            reason: "no such group".into(),
        }),
        Err(e) => Err(ConfigError::Group {
            group: group.into(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_needs_a_certificate_and_its_key() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(tls_files(None, None, None).unwrap(), None);
        let files = tls_files(p("c"), p("k"), p("ca")).unwrap().unwrap();
        assert_eq!(files.ca, p("ca"));
        for (cert, key, ca, named) in [
            (p("c"), None, None, "--tlskey"),
            (None, p("k"), None, "--tlscert"),
            (None, None, p("ca"), "--tlscacert"),
        ] {
            let error = tls_files(cert, key, ca).unwrap_err().to_string();
            assert!(error.contains(named), "{error}");
        }
    }

    #[test]
    fn groups_are_names_or_numbers() {
        assert_eq!(group_id("1234").unwrap(), 1234);
        assert_eq!(group_id("root").unwrap(), 0);
        let error = group_id("no-such-group-here").unwrap_err().to_string();
        assert!(error.contains("no-such-group-here"), "{error}");
    }
}
