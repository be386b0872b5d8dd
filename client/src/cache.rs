//! `nodekit cache export` and `nodekit cache import`: a node's build cache as a bundle file
//! (or stdout/stdin) through nodekitd's CacheBundle service, with a progress bar on a terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use nodekit_proto::nodekit::cache::v1::cache_bundle_client::CacheBundleClient;
use nodekit_proto::nodekit::cache::v1::export_message::Message;
use nodekit_proto::nodekit::cache::v1::{
    ExportRequest, ExportSummary, ImportChunk, ImportResponse,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::connect::{self, Target};

/// Bytes per message sent to the daemon.
const CHUNK: usize = 1 << 20;

/// Exports the records `request` selects (its filters, its build; all when empty) to `output`
/// (stdout for None or `-`).
/// A file is written under a temporary name and renamed when complete, so a failed export
/// never leaves a partial bundle under the name asked for.
pub async fn export(
    target: &Target,
    request: ExportRequest,
    output: Option<&Path>,
) -> anyhow::Result<ExportSummary> {
    let channel = connect::open(target).await?;
    let mut stream = CacheBundleClient::new(channel)
        .export(request)
        .await?
        .into_inner();
    let file = output.filter(|p| *p != Path::new("-"));
    let partial = file.map(partial_name);
    let mut sink: Box<dyn AsyncWrite + Unpin + Send> = match &partial {
        Some(path) => Box::new(
            tokio::fs::File::create(path)
                .await
                .with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    let progress = progress(None, "exporting");
    let mut summary = None;
    let copied = async {
        while let Some(message) = stream.message().await? {
            match message.message {
                Some(Message::Data(data)) => {
                    sink.write_all(&data).await?;
                    progress.inc(data.len() as u64);
                }
                Some(Message::Summary(last)) => summary = Some(last),
                None => {}
            }
        }
        sink.flush().await?;
        anyhow::Ok(())
    }
    .await;
    progress.finish_and_clear();
    let finished = copied.and_then(|()| summary.context("the export ended before it was complete"));
    match (finished, file, &partial) {
        (Ok(summary), Some(file), Some(partial)) => {
            tokio::fs::rename(partial, file)
                .await
                .with_context(|| format!("renaming {} to {}", partial.display(), file.display()))?;
            Ok(summary)
        }
        (Ok(summary), _, _) => Ok(summary),
        (Err(error), _, partial) => {
            if let Some(partial) = partial {
                let _ = tokio::fs::remove_file(partial).await;
            }
            Err(error)
        }
    }
}

/// Imports a bundle from `input` (stdin for None or `-`).
pub async fn import(target: &Target, input: Option<&Path>) -> anyhow::Result<ImportResponse> {
    let file = input.filter(|p| *p != Path::new("-"));
    let (source, length): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) = match file {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            let length = file.metadata().await.ok().map(|m| m.len());
            (Box::new(file), length)
        }
        None => (Box::new(tokio::io::stdin()), None),
    };
    let progress = progress(length, "importing");
    let (chunks, stream) = mpsc::channel(4);
    let reader = tokio::spawn(send_chunks(source, chunks, progress.clone()));
    let channel = connect::open(target).await?;
    let answer = CacheBundleClient::new(channel)
        .import(ReceiverStream::new(stream))
        .await;
    progress.finish_and_clear();
    // A local read error explains a bundle the daemon found truncated.
    reader.await??;
    Ok(answer?.into_inner())
}

async fn send_chunks(
    mut source: Box<dyn AsyncRead + Unpin + Send>,
    chunks: mpsc::Sender<ImportChunk>,
    progress: ProgressBar,
) -> anyhow::Result<()> {
    loop {
        let mut buffer = Vec::with_capacity(CHUNK);
        let read = (&mut source)
            .take(CHUNK as u64)
            .read_to_end(&mut buffer)
            .await
            .context("reading the bundle")?;
        if read == 0 {
            return Ok(());
        }
        progress.inc(read as u64);
        if chunks
            .send(ImportChunk {
                data: buffer.into(),
            })
            .await
            .is_err()
        {
            // The daemon stopped reading; its answer says why.
            return Ok(());
        }
    }
}

fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// A bar over `length` bytes (a spinner when unknown) on a terminal; hidden otherwise.
fn progress(length: Option<u64>, what: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match length {
        Some(length) => (
            ProgressBar::new(length),
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{msg} {spinner} {bytes} {bytes_per_sec}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
