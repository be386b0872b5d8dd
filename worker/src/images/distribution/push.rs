//! The push side of the distribution API: a blob is looked for first (HEAD), mounted from
//! another repository of the same registry when one is known to have it, else uploaded in one
//! streamed PUT after the POST that opens the upload (which earns the authorization: a
//! streamed body cannot be sent again after a challenge); a manifest is PUT by tag or digest.

use bytes::Bytes;
use futures::Stream;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};

use super::{checked, transport, Access, Call, Distribution, DistributionError};

impl Distribution {
    /// The size of blob `digest` in `repository`, or None when it does not have it.
    pub async fn blob_exists(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<u64>, DistributionError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self
            .request(&Call::new(Method::HEAD, &url), repository, Access::Push)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = checked(&url, response).await?;
        Ok(Some(content_length(&response)))
    }

    /// Mounts blob `digest` from repository `from` of the same registry; false when the
    /// registry would not (202: the upload it opened instead is cancelled).
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &str,
        from: &str,
    ) -> Result<bool, DistributionError> {
        let url = format!(
            "{}/v2/{repository}/blobs/uploads/?mount={digest}&from={from}",
            self.base
        );
        let access = Access::Mount { from };
        let response = self
            .request(&Call::new(Method::POST, &url), repository, access)
            .await?;
        let response = checked(&url, response).await?;
        if response.status() == StatusCode::CREATED {
            return Ok(true);
        }
        if let Some(location) = location(&response) {
            self.cancel_upload(&upload_url(&self.base, location, None))
                .await;
        }
        Ok(false)
    }

    /// Cancels an upload session, as a courtesy: the registry expires it anyway.
    async fn cancel_upload(&self, url: &str) {
        let cancelled = self.authorized(Method::DELETE, url).await.send().await;
        if let Err(error) = cancelled {
            tracing::debug!(upload = %url, "cancelling the upload failed: {error}");
        }
    }

    /// Uploads blob `digest` of `size` bytes from `data`, streamed.
    pub async fn upload_blob<S>(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        data: S,
    ) -> Result<(), DistributionError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let opened = self
            .request(&Call::new(Method::POST, &url), repository, Access::Push)
            .await?;
        let opened = checked(&url, opened).await?;
        let location = location(&opened)
            .ok_or_else(|| DistributionError::Transport(format!("{url}: no upload location")))?;
        let put_url = upload_url(&self.base, location, Some(digest));
        let response = self
            .authorized(Method::PUT, &put_url)
            .await
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(data))
            .send()
            .await
            .map_err(transport)?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(DistributionError::Unauthorized);
        }
        checked(&put_url, response).await.map(drop)
    }

    /// The digest `repository` has under `reference` (a tag or digest), if any (the
    /// registry's Docker-Content-Digest).
    pub async fn manifest_exists(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, DistributionError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let accept = nodekit_oci::MANIFEST_ACCEPT.join(", ");
        let call = Call {
            accept: Some(&accept),
            ..Call::new(Method::HEAD, &url)
        };
        let response = self.request(&call, repository, Access::Push).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = checked(&url, response).await?;
        Ok(content_digest(&response))
    }

    /// Puts a manifest (or index) under `reference` (a tag or its digest); returns its digest
    /// as the registry names it (Docker-Content-Digest), else as computed from `bytes`.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String, DistributionError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let digest = nodekit_oci::sha256_digest(&bytes);
        let call = Call {
            content_type: Some(media_type),
            body: Some(Bytes::from(bytes)),
            ..Call::new(Method::PUT, &url)
        };
        let response = self.request(&call, repository, Access::Push).await?;
        let response = checked(&url, response).await?;
        Ok(content_digest(&response).unwrap_or(digest))
    }
}

fn location(response: &Response) -> Option<&str> {
    response.headers().get(LOCATION)?.to_str().ok()
}

fn content_digest(response: &Response) -> Option<String> {
    let value = response.headers().get("docker-content-digest")?;
    value.to_str().ok().map(str::to_string)
}

fn content_length(response: &Response) -> u64 {
    response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The upload's URL, with the digest that completes it if given: `location` may be relative
/// to the registry and may carry a query of its own (the upload's state), kept.
fn upload_url(base: &str, location: &str, digest: Option<&str>) -> String {
    let absolute = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    };
    let Some(digest) = digest else {
        return absolute;
    };
    let separator = if absolute.contains('?') { '&' } else { '?' };
    format!("{absolute}{separator}digest={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_location_is_completed_with_the_digest() {
        let digest = Some("sha256:1");
        assert_eq!(
            upload_url("http://r", "/v2/a/blobs/uploads/u1?_state=x", digest),
            "http://r/v2/a/blobs/uploads/u1?_state=x&digest=sha256:1"
        );
        assert_eq!(
            upload_url("http://r", "https://s3.example/u2", digest),
            "https://s3.example/u2?digest=sha256:1"
        );
        assert_eq!(
            upload_url("http://r:5000", "v2/a/blobs/uploads/u3", digest),
            "http://r:5000/v2/a/blobs/uploads/u3?digest=sha256:1"
        );
        assert_eq!(
            upload_url("http://r", "/v2/a/blobs/uploads/u4?_state=y", None),
            "http://r/v2/a/blobs/uploads/u4?_state=y"
        );
    }
}
