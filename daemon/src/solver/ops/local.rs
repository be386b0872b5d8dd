//! SourceOp `local://name`: pull the client's directory through its session (fsutil DiffCopy),
//! then make it a snapshot.

use nodekit_filesync::{begin, headers, Listing, ReceiveOptions};
use nodekit_proto::moby::filesync::v1::file_sync_client::FileSyncClient;
use nodekit_proto::pb::SourceOp;
use tokio_stream::wrappers::ReceiverStream;

use crate::session::Session;
use crate::solver::cache::{keys, CacheKey};
use crate::solver::error::SolveError;
use crate::solver::local_sources::LocalCopy;
use crate::solver::ops::OpContext;
use crate::solver::result::{LocalContent, Ref};

const DIFF_COPY: &str = "/moby.filesync.v1.FileSync/DiffCopy";
/// How many synced layers a local source stacks before it starts again from scratch.
const MAX_LAYERS: usize = 8;

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
    // The client's key keeps different clients' copies apart; the hint keeps a client's
    // differently filtered syncs of one directory apart.
    let hint = source
        .attrs
        .get("local.sharedkeyhint")
        .map_or("", String::as_str);
    let shared_key = format!("{}/{hint}", session.shared_key);
    let copy = solver.local_sources.lock(&shared_key, name).await;
    let started = std::time::Instant::now();
    // The client starts walking its directory while containerd confirms the kept snapshot.
    let (base, stream) = tokio::join!(kept_base(op, &copy), open_diff_copy(&session, source, name));
    let pending = match begin_sync(stream?, &copy, &base, name).await? {
        Listing::Unchanged(summary) => {
            // The client's listing is the one the kept snapshot was made from.
            ctx.job.progress.transfer(&op.vertex.digest, name, &summary);
            tracing::debug!(name, took = ?started.elapsed(), "local source unchanged");
            let (_, kept) = base.ok_or_else(|| SolveError::Other("no kept local copy".into()))?;
            return Ok(kept);
        }
        Listing::Changed(pending) => pending,
    };
    let base = base.map(|(_, kept)| kept).unwrap_or_default();
    let active = op.prepare(&base).await?;
    let synced = match op.mount_active(&active) {
        Ok(mount) => pending
            .receive_into(mount.path())
            .await
            .map_err(|e| SolveError::Session(format!("local source {name:?}: {e}"))),
        Err(error) => Err(error),
    };
    let mut summary = match synced {
        Ok(summary) => summary,
        Err(error) => {
            let _ = solver.worker.discard(active).await;
            return Err(error);
        }
    };
    tracing::debug!(name, files = summary.files_transferred, reused = summary.files_reused, took = ?started.elapsed(), "local source synced");
    solver
        .metrics
        .context_received(summary.bytes_transferred, summary.files_transferred);
    ctx.job.progress.transfer(&op.vertex.digest, name, &summary);
    let content = std::sync::Arc::new(std::mem::take(&mut summary.entries));
    let key = keys::content_key("source.local", &summary.digest, &[]);
    if let Some(kept) = copy.snapshot_of(&summary.digest) {
        let _ = solver.worker.discard(active).await;
        return Ok(with_content(kept, key, content));
    }
    // Kept keyed, with its file list and a view slot: an unchanged listing next time returns
    // it as it is, and its reader (the frontend reading the Dockerfile) finds it mounted.
    let mut result = with_content(op.commit(active, &base).await?, key, content);
    result.view = Some(std::sync::Arc::default());
    copy.keep_snapshot(&summary.digest, &result);
    Ok(result)
}

/// The synced files as a keyed result: keyed by their content (the tree digest), never by
/// the client's paths or times, and carrying the file list for narrower keys of readers.
fn with_content(result: Ref, key: CacheKey, content: std::sync::Arc<LocalContent>) -> Ref {
    let mut result = result.keyed(key);
    result.content = Some(content);
    result
}

/// What the sync starts from: the kept snapshot of the previous sync and the content digest it
/// holds (so unchanged files are neither sent nor copied, and the new layer holds only the
/// changes), or scratch (None) once the stack is deep or the snapshot has gone.
async fn kept_base(op: &OpContext<'_>, copy: &LocalCopy) -> Option<(String, Ref)> {
    match copy.latest() {
        Some((digest, kept)) if kept.layers.len() < MAX_LAYERS && still_there(op, &kept).await => {
            Some((digest, kept))
        }
        _ => {
            copy.forget();
            None
        }
    }
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

/// A DiffCopy stream with the client: what it sends, and where to send requests.
type DiffCopyStream = (
    tonic::Streaming<nodekit_proto::fsutil::types::Packet>,
    tokio::sync::mpsc::Sender<nodekit_proto::fsutil::types::Packet>,
);

/// Asks the client for local directory `name` through DiffCopy.
async fn open_diff_copy(
    session: &Session,
    source: &SourceOp,
    name: &str,
) -> Result<DiffCopyStream, SolveError> {
    let (outgoing, requests) = tokio::sync::mpsc::channel(64);
    let mut request = tonic::Request::new(ReceiverStream::new(requests));
    add_headers(request.metadata_mut(), source, name)?;
    let incoming = FileSyncClient::new(session.channel.clone())
        .max_decoding_message_size(nodekit_proto::MAX_MESSAGE)
        .diff_copy(request)
        .await
        .map_err(|e| SolveError::Session(format!("local source {name:?}: {}", e.message())))?
        .into_inner();
    Ok((incoming, outgoing))
}

/// Reads the client's listing; the sync ends there when it is the one the kept snapshot `base`
/// was made from.
async fn begin_sync(
    (incoming, outgoing): DiffCopyStream,
    copy: &LocalCopy,
    base: &Option<(String, Ref)>,
    name: &str,
) -> Result<Listing, SolveError> {
    // The destination comes later, and only if something changed.
    let mut options = ReceiveOptions::new(std::path::PathBuf::new(), &copy.state_file);
    if let Some((digest, _)) = base.as_ref().filter(|(_, kept)| kept.content.is_some()) {
        options = options.trusting(digest.clone());
    }
    begin(options, incoming, outgoing)
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
