//! Registry credentials, asked for per registry host when a pull starts: first from the build's
//! client (the session's Auth service, which buildctl answers from the user's docker config),
//! then from a docker config file of nodekitd's own (for builds whose client has none, e.g. a
//! Kubernetes `dockerconfigjson` Secret). Nothing is kept beyond the pull.

use std::path::Path;

use futures::future::BoxFuture;
use nodekit_oci::docker_config::from_docker_config;
pub use nodekit_oci::docker_config::Credentials;

/// What a lookup found, and where: the words an authorization error uses.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub credentials: Option<Credentials>,
    /// `the client`, `nodekitd's docker config /etc/...`.
    pub from: String,
}

/// Where the credentials of a build come from (the daemon's side: the client's session).
pub trait CredentialSource: Send + Sync {
    /// Credentials for `host` (`127.0.0.1:5000`, `registry-1.docker.io`), if the source has any.
    fn credentials<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Option<Credentials>>;
}

/// A build with no client to ask (a cache heal, a test).
pub struct NoClient;

impl CredentialSource for NoClient {
    fn credentials<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Option<Credentials>> {
        Box::pin(async { None })
    }
}

/// The host name credentials are asked and stored under: Docker Hub's API host for its names.
pub fn auth_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// The client's credentials for `host`, else those of nodekitd's docker config `file`.
pub async fn lookup(client: &dyn CredentialSource, file: Option<&Path>, host: &str) -> Found {
    if let Some(credentials) = client.credentials(host).await {
        return Found {
            credentials: Some(credentials),
            from: "the client".into(),
        };
    }
    let Some(file) = file else {
        return Found {
            credentials: None,
            from: format!("no credentials for {host} were sent by the client"),
        };
    };
    match from_docker_config(file, host) {
        Ok(Some(credentials)) => Found {
            credentials: Some(credentials),
            from: format!("nodekitd's docker config {}", file.display()),
        },
        Ok(None) => Found {
            credentials: None,
            from: format!(
                "no credentials for {host} were sent by the client, and nodekitd's docker config {} has none",
                file.display()
            ),
        },
        Err(reason) => {
            tracing::warn!("cannot use nodekitd's docker config {}: {reason}", file.display());
            Found {
                credentials: None,
                from: format!(
                    "no credentials for {host} were sent by the client, and nodekitd's docker config {} cannot be read: {reason}",
                    file.display()
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[tokio::test]
    async fn the_client_comes_first_and_a_miss_names_both_places() {
        let file = config(r#"{"auths": {"r.example": {"auth": "YWxpY2U6czNjcmV0"}}}"#);
        let found = lookup(&NoClient, Some(file.path()), "r.example").await;
        assert_eq!(found.credentials.unwrap().username, "alice");
        let missed = lookup(&NoClient, Some(file.path()), "other.example").await;
        assert!(missed.credentials.is_none());
        assert!(
            missed
                .from
                .starts_with("no credentials for other.example were sent by the client, and"),
            "{}",
            missed.from
        );
        let missed = lookup(&NoClient, None, "other.example").await;
        assert_eq!(
            missed.from,
            "no credentials for other.example were sent by the client"
        );
    }
}
