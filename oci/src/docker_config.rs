//! Docker config files (`~/.docker/config.json`, a Kubernetes `.dockerconfigjson`): the registry
//! credentials they hold, by registry host. Credential helpers (`credsStore`) are not run.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde::Deserialize;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct DockerAuth {
    auth: String,
    username: String,
    password: String,
    identitytoken: String,
}

/// The entry for `host` in a docker config file (`config.json` or a Kubernetes
/// `.dockerconfigjson`): keyed by host, `https://host`, or for Docker Hub its v1 index URL.
pub fn from_docker_config(file: &Path, host: &str) -> Result<Option<Credentials>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let hub = host == "registry-1.docker.io";
    let entry = config.auths.iter().find(|(key, _)| {
        let bare = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        bare == host || (hub && (bare == "index.docker.io/v1" || bare == "docker.io"))
    });
    let Some((_, auth)) = entry else {
        return Ok(None);
    };
    decode(auth).map(Some)
}

fn decode(auth: &DockerAuth) -> Result<Credentials, String> {
    if !auth.identitytoken.is_empty() {
        // As buildctl hands it over: no user name, the token as the secret (OAuth's refresh
        // token, exchanged at the registry's token realm).
        return Ok(Credentials {
            username: String::new(),
            secret: auth.identitytoken.clone(),
        });
    }
    if !auth.username.is_empty() {
        return Ok(Credentials {
            username: auth.username.clone(),
            secret: auth.password.clone(),
        });
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.auth.trim())
        .map_err(|e| format!("invalid auth field: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "auth field is not UTF-8".to_string())?;
    let (username, secret) = text
        .split_once(':')
        .ok_or("auth field is not user:password")?;
    Ok(Credentials {
        username: username.into(),
        secret: secret.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "nodekit-docker-config-{}-{}.json",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn docker_config_entries_are_found_by_host() {
        // "alice:s3cret" and "bob:pw" in base64.
        let file = config(
            r#"{"auths": {"127.0.0.1:5443": {"auth": "YWxpY2U6czNjcmV0"},
                "https://index.docker.io/v1/": {"auth": "Ym9iOnB3"},
                "https://ghcr.io": {"username": "carol", "password": "tok"}}}"#,
        );
        let found = |host| from_docker_config(&file, host).unwrap();
        assert_eq!(found("127.0.0.1:5443").unwrap().secret, "s3cret");
        assert_eq!(found("registry-1.docker.io").unwrap().username, "bob");
        assert_eq!(found("ghcr.io").unwrap().username, "carol");
        assert_eq!(found("quay.io"), None);
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn identity_tokens_come_without_a_user_and_bad_entries_say_why() {
        let file = config(
            r#"{"auths": {"r.example": {"identitytoken": "x"}, "s.example": {"auth": "!!"}}}"#,
        );
        let identity = from_docker_config(&file, "r.example").unwrap().unwrap();
        assert_eq!(
            (identity.username.as_str(), identity.secret.as_str()),
            ("", "x")
        );
        assert!(from_docker_config(&file, "s.example")
            .unwrap_err()
            .contains("auth field"));
        std::fs::remove_file(file).unwrap();
    }
}
