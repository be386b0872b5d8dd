//! A build's `BuildHistoryRecord`: what the request asked (at the start), then how it ended,
//! its step counts and its progress log (at the end).

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use nodekit_proto::google::rpc::Status as RpcStatus;
use nodekit_proto::moby::buildkit::v1::{
    BuildHistoryRecord, Descriptor, Exporter, SolveRequest, StatusResponse,
};
use prost::Message;
use sha2::{Digest, Sha256};

/// The media type of a stored progress log (upstream's).
pub const STATUS_MEDIA_TYPE: &str = "application/vnd.buildkit.status.v0";

/// The record of a build that has just started.
pub fn started(request: &SolveRequest, at: SystemTime) -> BuildHistoryRecord {
    let mut exporters: Vec<Exporter> = request.exporters.clone();
    if exporters.is_empty() && !request.exporter_deprecated.is_empty() {
        exporters.push(Exporter {
            r#type: request.exporter_deprecated.clone(),
            attrs: request.exporter_attrs_deprecated.clone(),
        });
    }
    BuildHistoryRecord {
        r#ref: request.r#ref.clone(),
        frontend: request.frontend.clone(),
        frontend_attrs: request.frontend_attrs.clone(),
        exporters,
        created_at: Some(prost_types::Timestamp::from(at)),
        ..Default::default()
    }
}

/// How a build ended, as the record keeps it.
pub enum Ending<'a> {
    Exported(&'a BTreeMap<String, String>),
    Failed(&'a tonic::Status),
}

/// A progress log as upstream stores it: each `StatusResponse` with its length (u32, little
/// endian) before it.
pub struct StatusLog {
    pub bytes: Vec<u8>,
    pub descriptor: Descriptor,
}

impl StatusLog {
    pub fn encode(updates: &[StatusResponse]) -> StatusLog {
        let mut bytes = Vec::new();
        for update in updates {
            let encoded = update.encode_to_vec();
            bytes.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&encoded);
        }
        let descriptor = Descriptor {
            media_type: STATUS_MEDIA_TYPE.into(),
            digest: format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
            size: bytes.len() as i64,
            annotations: Default::default(),
        };
        StatusLog { bytes, descriptor }
    }

    /// The updates of a stored log; a damaged tail is cut off.
    pub fn decode(mut bytes: &[u8]) -> Vec<StatusResponse> {
        let mut out = Vec::new();
        while bytes.len() >= 4 {
            let mut len = [0u8; 4];
            len.copy_from_slice(&bytes[..4]);
            let end = 4 + u32::from_le_bytes(len) as usize;
            let Some(message) = bytes.get(4..end) else {
                break;
            };
            let Ok(update) = StatusResponse::decode(message) else {
                break;
            };
            out.push(update);
            bytes = &bytes[end..];
        }
        out
    }
}

/// Completes `record`: the ending, the time, the step counts and the log's descriptor.
pub fn complete(
    record: &mut BuildHistoryRecord,
    ending: Ending<'_>,
    updates: &[StatusResponse],
    log: &StatusLog,
    at: SystemTime,
) {
    match ending {
        Ending::Exported(response) => {
            record.exporter_response = response.clone().into_iter().collect();
        }
        Ending::Failed(status) => {
            record.error = Some(RpcStatus {
                code: status.code() as i32,
                message: status.message().to_string(),
                details: Vec::new(),
            });
        }
    }
    let counts = StepCounts::of(updates);
    record.num_total_steps = counts.total;
    record.num_cached_steps = counts.cached;
    record.num_completed_steps = counts.completed;
    record.num_warnings = counts.warnings;
    record.logs = Some(log.descriptor.clone());
    record.completed_at = Some(prost_types::Timestamp::from(at));
}

/// Steps (vertices) by what became of them, and warnings, over a build's progress.
#[derive(Debug, Default, PartialEq, Eq)]
struct StepCounts {
    total: i32,
    cached: i32,
    completed: i32,
    warnings: i32,
}

impl StepCounts {
    fn of(updates: &[StatusResponse]) -> StepCounts {
        let mut steps: HashMap<&str, (bool, bool)> = HashMap::new();
        let mut warnings = 0;
        for update in updates {
            warnings += update.warnings.len() as i32;
            for vertex in &update.vertexes {
                let step = steps.entry(vertex.digest.as_str()).or_default();
                step.0 |= vertex.cached;
                step.1 |= vertex.completed.is_some();
            }
        }
        StepCounts {
            total: steps.len() as i32,
            cached: steps.values().filter(|s| s.0).count() as i32,
            completed: steps.values().filter(|s| s.1).count() as i32,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use nodekit_proto::moby::buildkit::v1::{Vertex, VertexWarning};

    use super::*;

    fn vertex(digest: &str, cached: bool, completed: bool) -> Vertex {
        Vertex {
            digest: digest.into(),
            cached,
            completed: completed.then(|| prost_types::Timestamp::from(SystemTime::now())),
            ..Default::default()
        }
    }

    fn updates() -> Vec<StatusResponse> {
        vec![
            StatusResponse {
                vertexes: vec![vertex("a", false, false), vertex("b", false, false)],
                ..Default::default()
            },
            StatusResponse {
                vertexes: vec![vertex("a", true, true), vertex("b", false, true)],
                warnings: vec![VertexWarning::default()],
                ..Default::default()
            },
            StatusResponse {
                vertexes: vec![vertex("c", false, false)],
                ..Default::default()
            },
        ]
    }

    #[test]
    fn steps_are_counted_once_each_by_their_last_state() {
        assert_eq!(
            StepCounts::of(&updates()),
            StepCounts {
                total: 3,
                cached: 1,
                completed: 2,
                warnings: 1
            }
        );
    }

    #[test]
    fn a_log_decodes_to_its_updates_and_a_cut_one_to_its_whole_ones() {
        let updates = updates();
        let log = StatusLog::encode(&updates);
        assert_eq!(log.descriptor.size as usize, log.bytes.len());
        assert!(log.descriptor.digest.starts_with("sha256:"));
        assert_eq!(StatusLog::decode(&log.bytes), updates);
        assert_eq!(
            StatusLog::decode(&log.bytes[..log.bytes.len() - 1]),
            updates[..2].to_vec()
        );
    }

    #[test]
    fn a_failed_build_keeps_its_error() {
        let mut record = BuildHistoryRecord::default();
        let status = tonic::Status::unknown("process \"/bin/sh -c false\" did not complete");
        let log = StatusLog::encode(&[]);
        complete(
            &mut record,
            Ending::Failed(&status),
            &[],
            &log,
            SystemTime::now(),
        );
        let error = record.error.expect("error kept");
        assert_eq!(error.code, tonic::Code::Unknown as i32);
        assert!(error.message.contains("did not complete"));
        assert!(record.completed_at.is_some());
    }
}
