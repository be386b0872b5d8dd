//! `http://` and `https://` sources: the daemon downloads one file into a new snapshot
//! (BuildKit's HTTP source: `http.filename`, `http.checksum`, `http.perm`, `http.uid`/`gid`).
//! The daemon's own proxy settings apply to the download.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use nodekit_proto::pb::SourceOp;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::config::limits::ContentLimits;
use crate::solver::cache::keys;
use crate::solver::error::SolveError;
use crate::solver::ops::OpContext;
use crate::solver::result::Ref;
use crate::worker::images::error_chain;

/// One client for every download: connection reuse, and the proxy read from the environment.
static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .user_agent(concat!("nodekitd/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
});

/// What the source's attributes ask of the downloaded file.
struct FileSpec {
    name: Option<String>,
    checksum: Option<String>,
    mode: u32,
    owner: (u32, u32),
}

impl FileSpec {
    fn from_attrs(attrs: &BTreeMap<String, String>) -> Result<FileSpec, SolveError> {
        let number = |key: &str, radix: u32| -> Result<Option<u32>, SolveError> {
            attrs
                .get(key)
                .map(|v| {
                    u32::from_str_radix(v, radix).map_err(|_| {
                        SolveError::InvalidDefinition(format!("invalid {key} attribute {v:?}"))
                    })
                })
                .transpose()
        };
        let name = attrs.get("http.filename").cloned();
        if let Some(bad) = name.as_ref().filter(|n| n.contains('/') || *n == "..") {
            return Err(SolveError::InvalidDefinition(format!(
                "invalid http.filename {bad:?}: a file name, not a path"
            )));
        }
        Ok(FileSpec {
            name,
            checksum: attrs.get("http.checksum").cloned(),
            mode: number("http.perm", 8)?.unwrap_or(0o600),
            owner: (
                number("http.uid", 10)?.unwrap_or(0),
                number("http.gid", 10)?.unwrap_or(0),
            ),
        })
    }
}

pub async fn run(op: &OpContext<'_>, source: &SourceOp) -> Result<Ref, SolveError> {
    let url = source.identifier.as_str();
    let spec = FileSpec::from_attrs(&source.attrs)?;
    let limits = op.solver.limits;
    let response = request(url, limits.download_idle).await?;
    let name = spec
        .name
        .clone()
        .unwrap_or_else(|| response_file_name(url, &response));
    let base = Ref::default();
    let active = op.prepare(&base).await?;
    let written = match op.mount_active(&active) {
        Ok(mount) => {
            let path = mount.path().join(&name);
            let written = write_file(url, response, &path, &spec, limits).await;
            drop(mount);
            written
        }
        Err(error) => Err(error),
    };
    match written {
        Ok(digest) => {
            let attrs = [
                ("filename", name),
                ("mode", format!("{:o}", spec.mode)),
                ("owner", format!("{}:{}", spec.owner.0, spec.owner.1)),
            ];
            let key = keys::content_key("source.http", &digest, &attrs);
            Ok(op.commit(active, &base).await?.keyed(key))
        }
        Err(error) => {
            let _ = op.solver.worker.discard(active).await;
            Err(error)
        }
    }
}

async fn request(url: &str, idle: Option<Duration>) -> Result<reqwest::Response, SolveError> {
    let failed =
        |e: reqwest::Error| SolveError::Other(format!("downloading {url}: {}", error_chain(&e)));
    let response = within(url, idle, CLIENT.get(url).send())
        .await?
        .map_err(failed)?;
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(SolveError::Other(format!(
            "downloading {url}: invalid response status {}",
            response.status().as_u16()
        )))
    }
}

/// Streams the body into `path`, checks its digest (returned), then sets mode, owner and mtime (from
/// Last-Modified, as upstream does, so that the layer is the same for the same content). A body
/// longer than `[limits] maxDownloadBytes` fails the step as soon as it passes it, one that
/// sends nothing for `downloadIdleTimeout` when that has passed.
async fn write_file(
    url: &str,
    response: reqwest::Response,
    path: &Path,
    spec: &FileSpec,
    limits: ContentLimits,
) -> Result<String, SolveError> {
    let limit = limits.download_bytes;
    if let Some(limit) = limit.filter(|l| response.content_length().is_some_and(|n| n > *l)) {
        return Err(too_long(url, limit));
    }
    let io = |what: &str, e: std::io::Error| SolveError::Other(format!("{what} {url}: {e}"));
    let modified = last_modified(&response);
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| io("saving", e))?;
    let mut hasher = Sha256::new();
    let mut body = response.bytes_stream();
    let mut received: u64 = 0;
    while let Some(chunk) = within(url, limits.download_idle, body.next()).await? {
        let chunk = chunk
            .map_err(|e| SolveError::Other(format!("downloading {url}: {}", error_chain(&e))))?;
        received = received.saturating_add(chunk.len() as u64);
        if let Some(limit) = limit.filter(|l| received > *l) {
            return Err(too_long(url, limit));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(|e| io("saving", e))?;
    }
    file.flush().await.map_err(|e| io("saving", e))?;
    let got = format!("sha256:{}", hex::encode(hasher.finalize()));
    if let Some(expected) = spec.checksum.as_ref().filter(|e| **e != got) {
        return Err(SolveError::Other(format!(
            "digest mismatch for {url}: got {got}, expected {expected}"
        )));
    }
    let file = file.into_std().await;
    file.set_permissions(std::fs::Permissions::from_mode(spec.mode))
        .map_err(|e| io("setting the mode of", e))?;
    chown(path, Some(spec.owner.0), Some(spec.owner.1)).map_err(|e| io("chowning", e))?;
    if let Some(time) = modified {
        file.set_modified(time)
            .map_err(|e| io("setting the time of", e))?;
    }
    Ok(got)
}

/// Waits for `step` at most `idle` (`[limits] downloadIdleTimeout`; `None`: as long as it takes).
async fn within<T>(
    url: &str,
    idle: Option<Duration>,
    step: impl Future<Output = T>,
) -> Result<T, SolveError> {
    let Some(idle) = idle else {
        return Ok(step.await);
    };
    tokio::time::timeout(idle, step).await.map_err(|_| {
        SolveError::Other(format!(
            "downloading {url}: the server sent nothing for {idle:?} \
             ([limits] downloadIdleTimeout)"
        ))
    })
}

fn too_long(url: &str, limit: u64) -> SolveError {
    SolveError::Other(format!(
        "downloading {url}: the body is longer than the limit of {limit} bytes \
         ([limits] maxDownloadBytes)"
    ))
}

fn last_modified(response: &reqwest::Response) -> Option<SystemTime> {
    let value = response.headers().get(reqwest::header::LAST_MODIFIED)?;
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

/// The file's name when the source names none: Content-Disposition's, else the URL path's
/// last element, else `index` (upstream's rule).
fn response_file_name(url: &str, response: &reqwest::Response) -> String {
    let disposition = response
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(disposition_file_name);
    disposition.unwrap_or_else(|| url_path_base(url))
}

fn disposition_file_name(value: &str) -> Option<String> {
    let param = value
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("filename="))?;
    let name = param.trim_matches('"');
    let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

fn url_path_base(url: &str) -> String {
    let path = reqwest::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(base) if !base.is_empty() && base != "." => base.to_string(),
        _ => "index".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_content_disposition_then_the_url() {
        let name = disposition_file_name("attachment; filename=\"report.csv\"");
        assert_eq!(name.as_deref(), Some("report.csv"));
        assert_eq!(
            disposition_file_name("attachment; filename=../x").as_deref(),
            Some("x")
        );
        assert_eq!(disposition_file_name("inline"), None);
        assert_eq!(url_path_base("http://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(url_path_base("http://h/"), "index");
        assert_eq!(url_path_base("http://h"), "index");
    }

    #[test]
    fn attributes_give_mode_owner_and_refuse_paths_as_names() {
        let attrs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let spec = FileSpec::from_attrs(&attrs(&[("http.perm", "0644"), ("http.uid", "7")]));
        let spec = spec.expect("valid attributes");
        assert_eq!((spec.mode, spec.owner), (0o644, (7, 0)));
        assert_eq!(
            FileSpec::from_attrs(&attrs(&[])).map(|s| s.mode).ok(),
            Some(0o600)
        );
        assert!(FileSpec::from_attrs(&attrs(&[("http.filename", "../x")])).is_err());
        assert!(FileSpec::from_attrs(&attrs(&[("http.perm", "rw")])).is_err());
    }
}
