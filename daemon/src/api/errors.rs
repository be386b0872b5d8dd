//! A build's error as a gRPC status, with the typed details BuildKit clients read: where in the
//! Dockerfile it happened (`errdefs.Source`, which buildctl and buildx print as the lines around
//! it), and a client-side frontend's own details passed through unchanged.

use base64::Engine;
use nodekit_proto::google::rpc::Status as RpcStatus;
use prost::Message;
use serde_json::json;
use tonic::{Code, Status};

use crate::solver::error::SourceLocation;
use crate::solver::SolveError;

/// BuildKit registers its error details by these type URLs and marshals them as JSON.
const SOURCE_TYPE_URL: &str = "github.com/moby/buildkit/errdefs.Source+json";

pub fn to_status(error: SolveError) -> Status {
    if let SolveError::Returned(returned) = error.underlying() {
        return returned_status(returned);
    }
    let code = match error.underlying() {
        SolveError::Cancelled => Code::Cancelled,
        SolveError::InvalidDefinition(_) => Code::InvalidArgument,
        SolveError::Unsupported(_) => Code::Unimplemented,
        SolveError::NotAllowed(_) => Code::PermissionDenied,
        _ => Code::Unknown,
    };
    let message = error.to_string();
    let source = error.location().and_then(source_detail);
    match source {
        Some(detail) => {
            let status = RpcStatus {
                code: code as i32,
                message: message.clone(),
                details: vec![detail],
            };
            Status::with_details(code, message, status.encode_to_vec().into())
        }
        None => Status::new(code, message),
    }
}

/// A frontend's error as it returned it (a code of 0 would not be an error: unknown then).
fn returned_status(returned: &RpcStatus) -> Status {
    let code = match Code::from_i32(returned.code) {
        Code::Ok => Code::Unknown,
        code => code,
    };
    if returned.details.is_empty() {
        return Status::new(code, returned.message.clone());
    }
    let status = RpcStatus {
        code: code as i32,
        ..returned.clone()
    };
    Status::with_details(
        code,
        returned.message.clone(),
        status.encode_to_vec().into(),
    )
}

/// `errdefs.Source` (JSON, as BuildKit marshals it) for a located error with its file's text.
fn source_detail(location: &SourceLocation) -> Option<prost_types::Any> {
    let text = location.text.as_ref()?;
    let position = |line: usize| json!({ "line": line });
    let source = json!({
        "info": {
            "filename": location.file,
            "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
            "language": "Dockerfile",
        },
        "ranges": [{
            "start": position(location.start_line),
            "end": position(location.end_line),
        }],
    });
    Some(prost_types::Any {
        type_url: SOURCE_TYPE_URL.into(),
        value: serde_json::to_vec(&source).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn details(status: &Status) -> RpcStatus {
        RpcStatus::decode(status.details()).expect("details decode")
    }

    #[test]
    fn a_located_error_carries_its_source_for_clients_to_print() {
        let text: Arc<str> = Arc::from("FROM busybox\nRUN exit 3\n");
        let failed = SolveError::ExitCode {
            command: "/bin/sh -c exit 3".into(),
            code: 3,
            note: String::new(),
        };
        let error = SolveError::located("Dockerfile", 2, failed.in_step("RUN exit 3"))
            .with_source_text("Dockerfile", &text);
        let status = to_status(error);
        assert_eq!(status.code(), Code::Unknown);
        assert!(
            status.message().starts_with("Dockerfile:2: process"),
            "{status:?}"
        );
        let any = &details(&status).details[0];
        assert_eq!(any.type_url, SOURCE_TYPE_URL);
        let source: serde_json::Value = serde_json::from_slice(&any.value).unwrap();
        assert_eq!(source["info"]["filename"], "Dockerfile");
        assert_eq!(source["ranges"][0]["start"]["line"], 2);
        let data = source["info"]["data"].as_str().unwrap();
        let data = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        assert_eq!(data, text.as_bytes());
    }

    #[test]
    fn kinds_keep_their_codes_and_unplaced_errors_have_no_details() {
        let invalid =
            SolveError::located("Dockerfile", 1, SolveError::InvalidDefinition("bad".into()));
        let status = to_status(invalid);
        assert_eq!(status.code(), Code::InvalidArgument);
        // No text was added: nothing to print from.
        assert!(status.details().is_empty());
        assert_eq!(
            to_status(SolveError::Unsupported("x".into())).code(),
            Code::Unimplemented
        );
    }

    #[test]
    fn a_frontend_s_returned_error_keeps_its_code_and_details() {
        let returned = RpcStatus {
            code: Code::InvalidArgument as i32,
            message: "frontend says no".into(),
            details: vec![prost_types::Any {
                type_url: SOURCE_TYPE_URL.into(),
                value: b"{}".to_vec(),
            }],
        };
        let status = to_status(SolveError::Returned(returned.clone()));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "frontend says no");
        assert_eq!(details(&status), returned);
    }
}
