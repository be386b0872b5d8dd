//! The `local` exporter: the result's files written into a directory on the client's side
//! (buildctl's `--output type=local,dest=DIR`). The daemon is the sender of an fsutil
//! DiffCopy, over the session's FileSend for this exporter; the client receives. With several
//! platforms each goes under a directory named after it (`linux_amd64/`, `platform-split`,
//! the default), or all into the same directory when no file is in two of them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nodekit_filesync::SendOptions;
use nodekit_proto::fsutil::types::Packet;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::image::PlatformResult;
use super::run::in_step;
use super::views::{mount_results, ResultView};
use crate::solver::progress::Progress;
use crate::solver::{SolveContext, SolveError, Solver};

const EXPORTER_ID: &str = "buildkit-attachable-exporter-id";
/// Tells the client that one transfer carries every platform (what `mode=delete` needs).
const MULTI_PLATFORM: &str = "buildkit-exporter-multi-platform";
const METHOD: &str = "/moby.filesync.v1.FileSend/DiffCopy";

/// The exporter's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalExport {
    /// `platform-split`: unset, platforms are split when there are several.
    platform_split: Option<bool>,
    /// `mode=delete`: the client deletes what the result does not have (buildctl's own
    /// handling; the daemon then sends every platform in one transfer).
    replace: bool,
}

impl LocalExport {
    pub fn from_attrs(attrs: &BTreeMap<String, String>) -> Result<LocalExport, SolveError> {
        let mut export = LocalExport {
            platform_split: None,
            replace: false,
        };
        for (key, value) in attrs {
            match key.as_str() {
                "platform-split" => export.platform_split = Some(parse_bool(key, value)?),
                "mode" => {
                    export.replace = match value.as_str() {
                        "" | "copy" => false,
                        "delete" => true,
                        _ => return Err(invalid(format!("mode={value} (copy or delete)"))),
                    }
                }
                _ => {
                    return Err(SolveError::Unsupported(format!(
                        "local exporter: {key}={value} is not supported by nodekitd (it knows platform-split and mode)"
                    )))
                }
            }
        }
        Ok(export)
    }

    fn split(&self, platforms: usize) -> bool {
        platforms > 1 && self.platform_split.unwrap_or(true)
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, SolveError> {
    match value {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(invalid(format!("non-bool value for {key}: {value}"))),
    }
}

fn invalid(message: String) -> SolveError {
    SolveError::InvalidDefinition(format!("local exporter: {message}"))
}

/// The exporter's run as its own step ("exporting to client directory").
pub async fn export_local(
    solver: &Solver,
    ctx: &SolveContext,
    export: &LocalExport,
    parts: &[PlatformResult],
    exporter_index: usize,
) -> Result<BTreeMap<String, String>, SolveError> {
    let name = "exporting to client directory";
    in_step(ctx, exporter_index, name, |vertex| async move {
        send_files(solver, ctx, export, parts, (exporter_index, &vertex)).await?;
        Ok(BTreeMap::new())
    })
    .await
}

async fn send_files(
    solver: &Solver,
    ctx: &SolveContext,
    export: &LocalExport,
    parts: &[PlatformResult],
    (exporter_index, vertex): (usize, &str),
) -> Result<(), SolveError> {
    let lease = ctx.lease().await?;
    let views = mount_results(solver, &lease, parts).await?;
    let session = solver
        .sessions
        .get(&ctx.session_id)
        .await
        .map_err(|_| SolveError::Other("the local output needs the client's session".into()))?;
    let started = SystemTime::now();
    let split = export.split(views.len());
    let transfer = Transfer {
        session: session.channel.clone(),
        exporter_index,
        multi_platform: export.replace,
    };
    if split {
        let roots = views
            .iter()
            .map(|v| (v.dir_name(), v.mount.path().to_path_buf()))
            .collect();
        transfer.send(named(roots)).await?;
    } else if export.replace && views.len() > 1 {
        return Err(SolveError::Unsupported(
            "local exporter: mode=delete with platform-split=false over several platforms is not supported by nodekitd".into(),
        ));
    } else {
        check_no_overlap(&views).await?;
        for view in &views {
            transfer.send(rooted(view.mount.path())).await?;
        }
    }
    report_copied(&ctx.job.progress, vertex, &views, split, started);
    Ok(())
}

/// buildkitd's statuses: `copying files`, or one per platform when they are split.
fn report_copied(
    progress: &Progress,
    vertex: &str,
    views: &[ResultView],
    split: bool,
    started: SystemTime,
) {
    if !split {
        return progress.status_done(vertex, "copying files", started);
    }
    for view in views {
        let name = format!("copying files {}", view.platform);
        progress.status_done(vertex, &name, started);
    }
}

fn rooted(root: &Path) -> SendOptions {
    SendOptions {
        root: root.to_path_buf(),
        ..Default::default()
    }
}

fn named(roots: Vec<(String, PathBuf)>) -> SendOptions {
    SendOptions {
        named_roots: roots,
        ..Default::default()
    }
}

/// Without the split, platforms share the directory: a file in two of them would be
/// overwritten by whichever came last, so that is refused, as buildkitd does.
async fn check_no_overlap(views: &[ResultView]) -> Result<(), SolveError> {
    if views.len() < 2 {
        return Ok(());
    }
    let trees: Vec<(String, PathBuf)> = views
        .iter()
        .map(|v| (v.platform.clone(), v.mount.path().to_path_buf()))
        .collect();
    tokio::task::spawn_blocking(move || first_overlap(&trees))
        .await
        .map_err(|e| SolveError::Other(format!("checking the platforms' files: {e}")))?
}

fn first_overlap(trees: &[(String, PathBuf)]) -> Result<(), SolveError> {
    let mut seen: HashMap<PathBuf, &str> = HashMap::new();
    for (platform, root) in trees {
        for path in non_directories(root)? {
            if let Some(first) = seen.insert(path.clone(), platform) {
                return Err(SolveError::InvalidDefinition(format!(
                    "cannot overwrite {} from {first} with {platform} when split option is disabled",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// The paths under `root` (relative to it) of everything but directories.
fn non_directories(root: &Path) -> Result<Vec<PathBuf>, SolveError> {
    let failed = |path: &Path, e: std::io::Error| {
        SolveError::Other(format!("reading {} of the result: {e}", path.display()))
    };
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(root.join(&dir)).map_err(|e| failed(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| failed(&dir, e))?;
            let path = dir.join(entry.file_name());
            let is_dir = entry.file_type().map_err(|e| failed(&path, e))?.is_dir();
            if is_dir {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    Ok(found)
}

/// One DiffCopy to the client's FileSend for this exporter.
struct Transfer {
    session: Channel,
    exporter_index: usize,
    multi_platform: bool,
}

impl Transfer {
    async fn send(&self, options: SendOptions) -> Result<(), SolveError> {
        let failed = |e: tonic::Status| {
            SolveError::Other(format!("sending the files to the client: {}", e.message()))
        };
        let (outgoing, packets) = mpsc::channel::<Packet>(64);
        let mut request = tonic::Request::new(ReceiverStream::new(packets));
        let metadata = request.metadata_mut();
        metadata.insert(EXPORTER_ID, (self.exporter_index as u64).into());
        if self.multi_platform {
            metadata.insert(
                MULTI_PLATFORM,
                tonic::metadata::MetadataValue::from_static("1"),
            );
        }
        let mut grpc = tonic::client::Grpc::new(self.session.clone());
        grpc.ready()
            .await
            .map_err(|e| SolveError::Other(format!("the client's session: {e}")))?;
        // The client answers nothing before our first packets (grpc-go sends its headers
        // with its first message), so the call's answers are read while we send.
        let (answers, incoming) = mpsc::channel::<Result<Packet, tonic::Status>>(64);
        let call = async move {
            let path = tonic::codegen::http::uri::PathAndQuery::from_static(METHOD);
            let codec = tonic_prost::ProstCodec::<Packet, Packet>::default();
            let mut replies = grpc.streaming(request, path, codec).await?.into_inner();
            while let Some(packet) = replies.message().await? {
                // Once the sender is done it reads no more: the rest is drained to the
                // call's end, whose status says whether the client wrote everything.
                let _ = answers.send(Ok(packet)).await;
            }
            Ok::<(), tonic::Status>(())
        };
        let send = nodekit_filesync::send(options, ReceiverStream::new(incoming), outgoing);
        let (called, sent) = tokio::join!(call, send);
        called.map_err(failed)?;
        sent.map(drop)
            .map_err(|e| SolveError::Other(format!("sending the files to the client: {e}")))
    }
}
