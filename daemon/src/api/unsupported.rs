//! Solve request fields nodekitd does not implement: refused with their names, never dropped
//! (a build that "succeeds" without its cache export or source policy has other semantics than
//! the client asked for).

use nodekit_proto::moby::buildkit::v1::SolveRequest;
use tonic::Status;

use crate::solver::cache::remote::options;

/// The first field of `request` nodekitd would have to ignore, as an error naming it.
pub fn refuse_unsupported(request: &SolveRequest) -> Result<(), Status> {
    let refuse = |what: String| {
        Err(Status::unimplemented(format!(
            "{what} is not supported by nodekitd yet"
        )))
    };
    if let Some(cache) = &request.cache {
        // Read as buildkitd reads them: a bad request fails with buildkitd's words.
        options::exports(cache).map_err(Status::invalid_argument)?;
    }
    if request
        .source_policy
        .as_ref()
        .is_some_and(|policy| !policy.rules.is_empty())
        || !request.source_policy_session.is_empty()
    {
        return refuse("a source policy (--source-policy-file)".into());
    }
    if request.enable_session_exporter {
        return refuse("choosing exporters through the session (EnableSessionExporter)".into());
    }
    if request.proxy_network {
        return refuse("a proxied build network (ProxyNetwork)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodekit_proto::moby::buildkit::v1::{CacheOptions, CacheOptionsEntry};

    fn entry(kind: &str) -> CacheOptionsEntry {
        CacheOptionsEntry {
            r#type: kind.into(),
            attrs: Default::default(),
        }
    }

    #[test]
    fn a_bad_cache_export_fails_with_buildkits_words() {
        let request = SolveRequest {
            cache: Some(CacheOptions {
                exports: vec![entry("local")],
                ..Default::default()
            }),
            ..Default::default()
        };
        let error = refuse_unsupported(&request).unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            error.message(),
            "failed to configure local cache exporter: local cache exporter requires dest"
        );
    }

    #[test]
    fn an_empty_request_and_empty_cache_options_pass() {
        let mut request = SolveRequest::default();
        assert!(refuse_unsupported(&request).is_ok());
        request.cache = Some(CacheOptions::default());
        assert!(refuse_unsupported(&request).is_ok());
    }
}
