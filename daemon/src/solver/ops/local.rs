//! SourceOp `local://name`: pull the client's directory through its session (fsutil DiffCopy),
//! then make it a snapshot.

use nodekit_filesync::{headers, receive, ReceiveOptions, ReceiveSummary};
use nodekit_proto::moby::filesync::v1::file_sync_client::FileSyncClient;
use nodekit_proto::pb::{FileActionCopy, SourceOp};
use tokio_stream::wrappers::ReceiverStream;

use crate::session::Session;
use crate::solver::engine::OpContext;
use crate::solver::error::SolveError;
use crate::solver::local_sources::LocalCopy;
use crate::solver::result::Ref;
use crate::worker::ViewMount;

const DIFF_COPY: &str = "/moby.filesync.v1.FileSync/DiffCopy";

pub async fn run(op: &OpContext<'_>, source: &SourceOp, name: &str) -> Result<Ref, SolveError> {
    let (solver, ctx) = (op.solver, op.ctx);
    let session_id = source
        .attrs
        .get("local.session")
        .filter(|s| !s.is_empty())
        .unwrap_or(&ctx.session_id);
    let session = solver
        .sessions
        .get(session_id)
        .await
        .map_err(|e| SolveError::Session(e.to_string()))?;
    if !session.serves(DIFF_COPY) {
        return Err(SolveError::Session(format!(
            "local source {name:?}: the client's session does not offer local directories"
        )));
    }
    let shared_key = source
        .attrs
        .get("local.sharedkeyhint")
        .cloned()
        .unwrap_or_else(|| session.shared_key.clone());
    let copy = solver.local_sources.lock(&shared_key, name).await;
    let started = std::time::Instant::now();
    let summary = sync(&session, source, name, &copy).await?;
    tracing::debug!(name, files = summary.files_transferred, reused = summary.files_reused, took = ?started.elapsed(), "local source synced");
    ctx.job.progress.transfer(&op.vertex.digest, name, &summary);
    if let Some(kept) = copy.snapshot_of(&summary.digest) {
        // Its lease expires after a day; then containerd may have collected it.
        if still_there(op, &kept).await {
            return Ok(kept);
        }
    }
    let started = std::time::Instant::now();
    let result = snapshot_of(op, &copy).await?;
    tracing::debug!(name, took = ?started.elapsed(), "local source snapshot made");
    copy.keep_snapshot(&summary.digest, &result);
    Ok(result)
}

async fn still_there(op: &OpContext<'_>, result: &Ref) -> bool {
    let Some(chain) = result.chain_id() else {
        return true;
    };
    let worker = &op.solver.worker;
    worker
        .snapshots()
        .exists(worker.ctx(), &chain)
        .await
        .unwrap_or(false)
}

/// Runs DiffCopy against the client, receiving into the kept copy.
async fn sync(
    session: &Session,
    source: &SourceOp,
    name: &str,
    copy: &LocalCopy,
) -> Result<ReceiveSummary, SolveError> {
    let (outgoing, requests) = tokio::sync::mpsc::channel(64);
    let mut request = tonic::Request::new(ReceiverStream::new(requests));
    add_headers(request.metadata_mut(), source, name)?;
    let incoming = FileSyncClient::new(session.channel.clone())
        .max_decoding_message_size(crate::api::MAX_MESSAGE)
        .diff_copy(request)
        .await
        .map_err(|e| SolveError::Session(format!("local source {name:?}: {}", e.message())))?
        .into_inner();
    let options = ReceiveOptions::new(&copy.tree, &copy.state_file);
    receive(options, incoming, outgoing)
        .await
        .map_err(|e| SolveError::Session(format!("local source {name:?}: {e}")))
}

/// The DiffCopy metadata: which directory, and the source's patterns.
fn add_headers(
    metadata: &mut tonic::metadata::MetadataMap,
    source: &SourceOp,
    name: &str,
) -> Result<(), SolveError> {
    let lists = [
        (headers::DIR_NAME, vec![name.to_string()]),
        (
            headers::INCLUDE_PATTERNS,
            json_list(source, "local.includepattern")?,
        ),
        (
            headers::EXCLUDE_PATTERNS,
            json_list(source, "local.excludepatterns")?,
        ),
        (
            headers::FOLLOW_PATHS,
            json_list(source, "local.followpaths")?,
        ),
    ];
    for (key, values) in lists {
        let (values, encoded) = headers::encode_values(&values);
        for value in values {
            let value = value.parse().map_err(|_| {
                SolveError::InvalidDefinition(format!(
                    "local source {name:?}: {key} value {value:?} cannot be sent"
                ))
            })?;
            metadata.append(key, value);
        }
        if encoded {
            if let Ok(key) =
                tonic::metadata::MetadataKey::from_bytes(headers::encoded_key(key).as_bytes())
            {
                metadata.insert(key, tonic::metadata::MetadataValue::from_static("1"));
            }
        }
    }
    Ok(())
}

/// A JSON string list attribute (absent: empty).
fn json_list(source: &SourceOp, attr: &str) -> Result<Vec<String>, SolveError> {
    match source.attrs.get(attr).filter(|v| !v.is_empty()) {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            SolveError::InvalidDefinition(format!(
                "source attribute {attr}: not a JSON list of strings: {e}"
            ))
        }),
    }
}

/// Copies the kept tree into a new snapshot, committed as a one-layer result.
async fn snapshot_of(op: &OpContext<'_>, copy: &LocalCopy) -> Result<Ref, SolveError> {
    let scratch = Ref::default();
    let active = op.prepare(&scratch).await?;
    let mount = op.mount_active(&active);
    let filled = match mount {
        Ok(mount) => fill(mount, copy).await,
        Err(error) => Err(error),
    };
    if let Err(error) = filled {
        let _ = op.solver.worker.discard(active).await;
        return Err(error);
    }
    op.commit(active, &scratch).await
}

async fn fill(mount: ViewMount, copy: &LocalCopy) -> Result<(), SolveError> {
    let (source, dest) = (copy.tree.clone(), mount.path().to_path_buf());
    let copied = tokio::task::spawn_blocking(move || {
        let action = FileActionCopy {
            src: "/".into(),
            dest: "/".into(),
            dir_copy_contents: true,
            mode: -1,
            timestamp: -1,
            ..Default::default()
        };
        nodekit_fileop::copy(&source, &dest, &action, &nodekit_fileop::NumericIdsOnly)
    })
    .await;
    drop(mount);
    match copied {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(SolveError::Other(format!(
            "copying the local source into a snapshot: {error}"
        ))),
        Err(error) => Err(SolveError::Other(format!(
            "copying the local source: {error}"
        ))),
    }
}
