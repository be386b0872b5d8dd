//! The OCI distribution API over reqwest: manifests and blobs pulled here, pushed in `push`,
//! every request through one path that answers the registry's authorization challenge as Docker's clients do (basic credentials, or a
//! bearer token from the realm the challenge names). Hand-written rather than oci-client's
//! because a node's registries need what that client cannot do: present a client certificate
//! (`keypair`), and refuse a bad CA instead of falling back to a default client.

use std::path::PathBuf;

use base64::Engine;
use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::credentials::Credentials;

mod push;

/// How one registry endpoint is reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    pub plain_http: bool,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Extra CA certificates (PEM files).
    pub ca: Vec<PathBuf>,
    /// A client certificate and its key (PEM files), for registries that ask for one.
    pub keypair: Option<(PathBuf, PathBuf)>,
}

/// Why a request failed, in the terms a build error needs.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// 401 after the challenge was answered (or could not be).
    #[error("unauthorized (401)")]
    Unauthorized,
    #[error("{0} not found (404)")]
    NotFound(String),
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error("{0}")]
    Transport(String),
    #[error("{0}")]
    Setup(String),
}

/// One registry host, with the authorization it has earned so far.
pub struct Distribution {
    http: reqwest::Client,
    base: String,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<HeaderValue>>,
}

impl Distribution {
    pub fn new(
        host: &str,
        transport: &Transport,
        credentials: Option<Credentials>,
    ) -> Result<Distribution, DistributionError> {
        let scheme = if transport.plain_http {
            "http"
        } else {
            "https"
        };
        Ok(Distribution {
            http: http_client(transport)?,
            base: format!("{scheme}://{host}"),
            credentials,
            authorization: Mutex::new(None),
        })
    }

    /// A manifest or index by tag or digest, as the registry has it.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
        accept: &str,
    ) -> Result<Vec<u8>, DistributionError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let response = self.get(&url, repository, Some(accept)).await?;
        Ok(read_body(response).await?.to_vec())
    }

    /// A whole blob (a config).
    pub async fn blob(&self, repository: &str, digest: &str) -> Result<Vec<u8>, DistributionError> {
        let response = self.blob_response(repository, digest).await?;
        Ok(read_body(response).await?.to_vec())
    }

    /// A blob as it arrives (a layer).
    pub async fn blob_stream(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, DistributionError>>, DistributionError> {
        let response = self.blob_response(repository, digest).await?;
        Ok(response.bytes_stream().map_err(transport))
    }

    async fn blob_response(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Response, DistributionError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        self.get(&url, repository, None).await
    }

    /// GET with the authorization earned so far; a 401 is answered once.
    async fn get(
        &self,
        url: &str,
        repository: &str,
        accept: Option<&str>,
    ) -> Result<Response, DistributionError> {
        let call = Call {
            accept,
            ..Call::new(Method::GET, url)
        };
        let response = self.request(&call, repository, Access::Pull).await?;
        checked(url, response).await
    }

    /// Sends `call` with the authorization earned so far; a 401 is answered once (with the
    /// challenge's scope and what `access` needs of the repository) and the call sent again. The
    /// response's status is the caller's to read.
    async fn request(
        &self,
        call: &Call<'_>,
        repository: &str,
        access: Access<'_>,
    ) -> Result<Response, DistributionError> {
        let response = self.send(call).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or(DistributionError::Unauthorized)?;
        let answer = self.answer(&challenge, repository, access).await?;
        *self.authorization.lock().await = Some(answer);
        let response = self.send(call).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(DistributionError::Unauthorized);
        }
        Ok(response)
    }

    async fn send(&self, call: &Call<'_>) -> Result<Response, DistributionError> {
        let mut request = self.authorized(call.method.clone(), &call.url).await;
        if let Some(accept) = call.accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(content_type) = call.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        request.send().await.map_err(transport)
    }

    /// A request builder carrying the authorization earned so far (for a streamed body, which
    /// cannot be sent twice: earn it with an earlier call first).
    async fn authorized(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match self.authorization.lock().await.clone() {
            Some(authorization) => request.header(AUTHORIZATION, authorization),
            None => request,
        }
    }

    /// The Authorization header a challenge asks for.
    async fn answer(
        &self,
        challenge: &str,
        repository: &str,
        access: Access<'_>,
    ) -> Result<HeaderValue, DistributionError> {
        match parse_challenge(challenge) {
            Some(Challenge::Basic) => {
                let credentials = self
                    .credentials
                    .as_ref()
                    .ok_or(DistributionError::Unauthorized)?;
                header(&format!("Basic {}", basic(credentials)))
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scopes = token_scopes(scope.as_deref(), access.scopes(repository));
                let token = self.token(&realm, service.as_deref(), &scopes).await?;
                header(&format!("Bearer {token}"))
            }
            None => Err(DistributionError::Unauthorized),
        }
    }

    /// A bearer token from the realm, asked with the credentials when there are any (Docker
    /// Hub gives anonymous tokens for public images); an identity token (`docker login` through
    /// OAuth: a secret without a user name) is exchanged as OAuth's refresh token.
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, DistributionError> {
        if let Some(refresh) = self
            .credentials
            .as_ref()
            .filter(|c| c.username.is_empty() && !c.secret.is_empty())
        {
            return self
                .oauth_token(realm, service, &scopes.join(" "), &refresh.secret)
                .await;
        }
        let mut query: Vec<(&str, &str)> = scopes.iter().map(|s| ("scope", s.as_str())).collect();
        if let Some(service) = service {
            query.push(("service", service));
        }
        let url = reqwest::Url::parse_with_params(realm, &query)
            .map_err(|e| DistributionError::Transport(format!("token realm {realm:?}: {e}")))?;
        let mut request = self.http.get(url);
        if let Some(credentials) = &self.credentials {
            request = request.basic_auth(&credentials.username, Some(&credentials.secret));
        }
        let response = request.send().await.map_err(transport)?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(DistributionError::Unauthorized);
        }
        token_of(realm, response).await
    }

    /// OAuth's refresh-token grant, as Docker's clients use an identity token.
    async fn oauth_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        refresh_token: &str,
    ) -> Result<String, DistributionError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("service", service.unwrap_or_default()),
            ("scope", scope),
            ("client_id", "nodekit"),
        ];
        let body = reqwest::Url::parse_with_params("http://form.invalid/", &form)
            .map(|url| url.query().unwrap_or_default().to_string())
            .map_err(|e| DistributionError::Transport(e.to_string()))?;
        let response = self
            .http
            .post(realm)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        if matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST
        ) {
            return Err(DistributionError::Unauthorized);
        }
        token_of(realm, response).await
    }
}

/// What a request needs of a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access<'a> {
    Pull,
    Push,
    /// Push, and pull of the repository a blob is mounted from.
    Mount {
        from: &'a str,
    },
}

impl Access<'_> {
    /// The token scopes the access needs of `repository`.
    fn scopes(self, repository: &str) -> Vec<String> {
        match self {
            Access::Pull => vec![format!("repository:{repository}:pull")],
            Access::Push => vec![format!("repository:{repository}:pull,push")],
            Access::Mount { from } => vec![
                format!("repository:{repository}:pull,push"),
                format!("repository:{from}:pull"),
            ],
        }
    }
}

/// The scopes to ask a token for: the challenge's (space-separated), then those of the access
/// it lacks, as containerd asks (a registry's challenge may name less than a push needs).
fn token_scopes(challenge: Option<&str>, needed: Vec<String>) -> Vec<String> {
    let mut scopes: Vec<String> = challenge
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for scope in needed {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes
}

/// A request that can be sent again after a challenge was answered.
struct Call<'a> {
    method: Method,
    url: String,
    accept: Option<&'a str>,
    content_type: Option<&'a str>,
    body: Option<Bytes>,
}

impl Call<'_> {
    fn new(method: Method, url: &str) -> Self {
        Call {
            method,
            url: url.to_string(),
            accept: None,
            content_type: None,
            body: None,
        }
    }
}

/// The token of a token server's answer (`token`, or OAuth's `access_token`).
async fn token_of(realm: &str, response: Response) -> Result<String, DistributionError> {
    let body = read_body(checked(realm, response).await?).await?;
    let token: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| DistributionError::Transport(format!("token from {realm}: {e}")))?;
    token
        .token
        .or(token.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DistributionError::Transport(format!("{realm} answered no token")))
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

fn http_client(transport: &Transport) -> Result<reqwest::Client, DistributionError> {
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| DistributionError::Setup(format!("cannot read {}: {e}", path.display())))
    };
    let mut builder = reqwest::Client::builder().danger_accept_invalid_certs(transport.insecure);
    for path in &transport.ca {
        let certs = reqwest::Certificate::from_pem_bundle(&read(path)?).map_err(|e| {
            DistributionError::Setup(format!("CA certificate {}: {e}", path.display()))
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    if let Some((cert, key)) = &transport.keypair {
        let mut pem = read(cert)?;
        pem.push(b'\n');
        pem.extend(read(key)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            DistributionError::Setup(format!(
                "client certificate {} with key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| DistributionError::Setup(error_chain(&e)))
}

async fn checked(url: &str, response: Response) -> Result<Response, DistributionError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::NOT_FOUND {
        return Err(DistributionError::NotFound(url.to_string()));
    }
    let body = response.text().await.unwrap_or_default();
    Err(DistributionError::Status {
        url: url.to_string(),
        status,
        body: body.chars().take(300).collect(),
    })
}

async fn read_body(response: Response) -> Result<Bytes, DistributionError> {
    response.bytes().await.map_err(transport)
}

fn transport(error: reqwest::Error) -> DistributionError {
    DistributionError::Transport(error_chain(&error))
}

/// An error with its causes: a TLS failure sits several sources below "error sending request".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let part = inner.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        cause = inner.source();
    }
    text
}

fn basic(credentials: &Credentials) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.secret))
}

fn header(value: &str) -> Result<HeaderValue, DistributionError> {
    HeaderValue::from_str(value)
        .map_err(|_| DistributionError::Transport("credentials are not a valid header".into()))
}

#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// `Basic realm="x"` or `Bearer realm="https://auth",service="registry",scope="repository:a:pull"`.
fn parse_challenge(text: &str) -> Option<Challenge> {
    let (scheme, params) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = challenge_params(params);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `key="value",key=value` pairs; quoted values may hold commas.
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (
                    quoted[..end].to_string(),
                    quoted.get(end + 1..).unwrap_or(""),
                )
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        params.push((key, value));
        rest = remainder.trim_start().trim_start_matches(',');
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode as Code};
    use axum::routing::get;

    /// A registry whose manifests need a bearer token, and the token server it names: the
    /// token is given only for alice's password.
    async fn token_registry() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let realm = format!("http://{host}/token");
        let manifests = move |headers: HeaderMap| {
            let realm = realm.clone();
            async move {
                let authorized = headers
                    .get("authorization")
                    .is_some_and(|v| v == "Bearer t0ken");
                if authorized {
                    return (Code::OK, HeaderMap::new(), "{\"schemaVersion\":2}");
                }
                let mut challenge = HeaderMap::new();
                let value = format!(
                    "Bearer realm=\"{realm}\",service=\"test\",scope=\"repository:team/app:pull\""
                );
                challenge.insert("www-authenticate", value.parse().unwrap());
                (Code::UNAUTHORIZED, challenge, "")
            }
        };
        let token = |headers: HeaderMap, uri: axum::http::Uri| async move {
            let query = uri.query().unwrap_or_default().to_string();
            let alice = format!(
                "Basic {}",
                basic(&Credentials {
                    username: "alice".into(),
                    secret: "pw".into(),
                })
            );
            let scoped = query.contains("scope=repository%3Ateam%2Fapp%3Apull")
                && query.contains("service=test");
            match headers.get("authorization") {
                Some(v) if v == alice.as_str() && scoped => (Code::OK, "{\"token\":\"t0ken\"}"),
                _ => (Code::UNAUTHORIZED, ""),
            }
        };
        let refresh = |body: String| async move {
            let granted = body.contains("grant_type=refresh_token")
                && body.contains("refresh_token=id-t0ken")
                && body.contains("scope=repository%3Ateam%2Fapp%3Apull");
            if granted {
                (Code::OK, "{\"access_token\":\"t0ken\"}")
            } else {
                (Code::UNAUTHORIZED, "")
            }
        };
        let app = axum::Router::new()
            .route("/v2/team/app/manifests/{tag}", get(manifests))
            .route("/token", get(token).post(refresh));
        tokio::spawn(async move { axum::serve(listener, app).await });
        host
    }

    #[tokio::test]
    async fn a_bearer_challenge_is_answered_with_a_token_from_its_realm() {
        let host = token_registry().await;
        let plain = Transport {
            plain_http: true,
            ..Default::default()
        };
        let alice = Credentials {
            username: "alice".into(),
            secret: "pw".into(),
        };
        let registry = Distribution::new(&host, &plain, Some(alice)).unwrap();
        let manifest = registry
            .manifest("team/app", "1", "application/json")
            .await
            .unwrap();
        assert_eq!(manifest, b"{\"schemaVersion\":2}");

        // An identity token: no user name, the secret is OAuth's refresh token.
        let identity = Credentials {
            username: String::new(),
            secret: "id-t0ken".into(),
        };
        let registry = Distribution::new(&host, &plain, Some(identity)).unwrap();
        let manifest = registry.manifest("team/app", "1", "application/json").await;
        assert_eq!(manifest.unwrap(), b"{\"schemaVersion\":2}");

        let anonymous = Distribution::new(&host, &plain, None).unwrap();
        let refused = anonymous
            .manifest("team/app", "1", "application/json")
            .await;
        assert!(
            matches!(refused, Err(DistributionError::Unauthorized)),
            "{refused:?}"
        );
    }

    #[test]
    fn a_token_is_asked_for_the_challenges_scopes_and_what_the_access_needs() {
        let mount = Access::Mount { from: "team/base" }.scopes("team/app");
        assert_eq!(
            token_scopes(Some("repository:team/app:pull"), mount),
            [
                "repository:team/app:pull",
                "repository:team/app:pull,push",
                "repository:team/base:pull",
            ]
        );
        let both = "repository:team/app:pull,push repository:team/base:pull";
        let mount = Access::Mount { from: "team/base" }.scopes("team/app");
        assert_eq!(
            token_scopes(Some(both), mount),
            ["repository:team/app:pull,push", "repository:team/base:pull"]
        );
        assert_eq!(
            token_scopes(None, Access::Push.scopes("a")),
            ["repository:a:pull,push"]
        );
        assert_eq!(
            token_scopes(Some("repository:a:pull"), Access::Pull.scopes("a")),
            ["repository:a:pull"]
        );
    }

    #[test]
    fn challenges_are_read_as_docker_clients_read_them() {
        assert_eq!(
            parse_challenge("Basic realm=\"Registry Realm\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/busybox:pull,push\""
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge("bearer realm=https://r/token"),
            Some(Challenge::Bearer {
                realm: "https://r/token".into(),
                service: None,
                scope: None,
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=\"x\""), None);
    }
}
