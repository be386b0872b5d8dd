//! One image exporter's run in a build, as its own step ("exporting to image"): the image
//! written into the content store; with `push=true` sent to its names' registries first (with
//! buildkitd's statuses), and only then named in the node's image store, so a refused push
//! leaves the store as it was.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::image::{Exported, ImageExport, PlatformResult};
use super::push::push_image;
use super::tarball::{Tarball, TarballFormat};
use crate::session::SessionCredentials;
use crate::solver::progress::Progress;
use crate::solver::{SolveContext, SolveError, Solver};
use crate::worker::images::Pushed;
use crate::worker::Descriptor;
use nodekit_proto::moby::buildkit::v1::frontend::WarnRequest;

/// Exports `parts` (one per platform) as `export` asks.
pub async fn export_image(
    solver: &Solver,
    ctx: &SolveContext,
    export: &ImageExport,
    parts: &[PlatformResult],
    exporter_index: usize,
) -> Result<BTreeMap<String, String>, SolveError> {
    // Shown as upstream shows it, so the export's share of a build is visible in the progress.
    let name = match export.tarball {
        Some(TarballFormat::Oci) => "exporting to oci image format",
        Some(TarballFormat::Docker) => "exporting to docker image format",
        None => "exporting to image",
    };
    in_step(ctx, exporter_index, name, |vertex| async move {
        for attr in &export.without_effect {
            ctx.job.progress.warning(WarnRequest {
                digest: vertex.clone(),
                level: 1,
                short: format!(
                    "image exporter: {attr} has no effect: nodekitd's images are always unpacked"
                )
                .into_bytes(),
                ..Default::default()
            });
        }
        match export.tarball {
            Some(format) => {
                let tarball = (format, exporter_index, vertex.as_str());
                send_tarball(solver, ctx, export, parts, tarball).await
            }
            None => write_and_push(solver, ctx, export, parts, &vertex).await,
        }
    })
    .await
}

/// Runs an exporter's work as a step of its own named `name` (the work gets the step's
/// vertex for its statuses); a failure is shown on the step.
pub(super) async fn in_step<T, F, Fut>(
    ctx: &SolveContext,
    exporter_index: usize,
    name: &str,
    work: F,
) -> Result<T, SolveError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, SolveError>>,
{
    let job = &ctx.job;
    let step = job
        .progress
        .begin_step(&format!("{}-export-{exporter_index}", job.id), name);
    let done = work(step.digest.clone()).await;
    job.progress
        .end_step(step, done.as_ref().err().map(ToString::to_string));
    done
}

async fn write_and_push(
    solver: &Solver,
    ctx: &SolveContext,
    export: &ImageExport,
    parts: &[PlatformResult],
    vertex: &str,
) -> Result<BTreeMap<String, String>, SolveError> {
    let lease = ctx.lease().await?;
    let worker = &solver.worker;
    let progress = &ctx.job.progress;
    let started = SystemTime::now();
    if !export.push {
        let exported = export
            .write(worker, &lease, parts, export.stored_names())
            .await?;
        report_written(progress, vertex, &exported, started);
        let named = export.digest_names(&exported.top.digest);
        if !named.is_empty() {
            export.write(worker, &lease, parts, &named).await?;
        }
        report_named(progress, vertex, export.stored_names().iter().chain(&named));
        return Ok(exported.response);
    }
    let exported = export.write(worker, &lease, parts, &[]).await?;
    report_written(progress, vertex, &exported, started);
    let credentials = SessionCredentials::new(solver.sessions.clone(), &ctx.session_id);
    let started = SystemTime::now();
    let report = |blob: &Descriptor, pushed: Pushed, since: SystemTime| {
        let name = match pushed {
            Pushed::Uploaded => blob.digest.clone(),
            Pushed::Mounted => format!("{} mounted", blob.digest),
            Pushed::Present => format!("{} already exists", blob.digest),
        };
        progress.blob_done(vertex, &name, blob.size, since);
    };
    push_image(worker, &credentials, &export.names, &exported.top, &report).await?;
    progress.status_done(vertex, "pushing layers", started);
    for name in &export.names {
        let pushed = format!("pushing manifest for {name}@{}", exported.top.digest);
        progress.status_done(vertex, &pushed, started);
    }
    if export.store {
        // The same image (its blobs are there): only the names are new.
        let mut names = export.names.clone();
        names.extend(export.digest_names(&exported.top.digest));
        export.write(worker, &lease, parts, &names).await?;
        report_named(progress, vertex, &names);
    }
    Ok(exported.response)
}

/// buildkitd's statuses for an image written: its layers, then its manifest and config, or
/// its manifest list.
fn report_written(progress: &Progress, vertex: &str, exported: &Exported, started: SystemTime) {
    progress.status_done(vertex, "exporting layers", started);
    let now = SystemTime::now();
    let top = &exported.top.digest;
    match exported.response.get("containerimage.config.digest") {
        Some(config) => {
            progress.status_done(vertex, &format!("exporting manifest {top}"), now);
            progress.status_done(vertex, &format!("exporting config {config}"), now);
        }
        None => progress.status_done(vertex, &format!("exporting manifest list {top}"), now),
    }
}

/// `naming to NAME` for each name the image got in the node's store.
fn report_named<'a>(
    progress: &Progress,
    vertex: &str,
    names: impl IntoIterator<Item = &'a String>,
) {
    let now = SystemTime::now();
    for name in names {
        progress.status_done(vertex, &format!("naming to {name}"), now);
    }
}

/// The `oci` / `docker` exporters: the image written into the content store (named in the
/// node's store only with `store=true`), then sent to the client as a tarball.
async fn send_tarball(
    solver: &Solver,
    ctx: &SolveContext,
    export: &ImageExport,
    parts: &[PlatformResult],
    (format, exporter_index, vertex): (TarballFormat, usize, &str),
) -> Result<BTreeMap<String, String>, SolveError> {
    let lease = ctx.lease().await?;
    let worker = &solver.worker;
    let started = SystemTime::now();
    let exported = export
        .write(worker, &lease, parts, export.stored_names())
        .await?;
    report_written(&ctx.job.progress, vertex, &exported, started);
    report_named(&ctx.job.progress, vertex, export.stored_names());
    let session = solver
        .sessions
        .get(&ctx.session_id)
        .await
        .map_err(|_| SolveError::Other("the tarball needs the client's session".into()))?;
    let tarball = Tarball {
        format,
        top: &exported.top,
        names: &export.names,
        exporter_index,
    };
    let started = SystemTime::now();
    tarball.send(worker, session.channel.clone()).await?;
    ctx.job
        .progress
        .status_done(vertex, "sending tarball", started);
    Ok(exported.response)
}

/// The `tar` exporter as its own step ("exporting to client tarball").
pub async fn export_filesystem(
    solver: &Solver,
    ctx: &SolveContext,
    parts: &[PlatformResult],
    exporter_index: usize,
) -> Result<BTreeMap<String, String>, SolveError> {
    in_step(
        ctx,
        exporter_index,
        "exporting to client tarball",
        |vertex| async move {
            let started = SystemTime::now();
            super::fs_tarball::send_filesystem(solver, ctx, parts, exporter_index).await?;
            ctx.job
                .progress
                .status_done(&vertex, "sending tarball", started);
            Ok(BTreeMap::new())
        },
    )
    .await
}
