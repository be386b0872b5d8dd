//! Running a build: a session serving the client's files and secrets, `Control.Solve` with the
//! definition (or frontend), and the `Status` stream for progress, all under one build ref.

mod cache;
mod progress;

use std::collections::BTreeMap;

use anyhow::Context;
use futures::StreamExt;
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::{Exporter, SolveRequest, StatusRequest, StatusResponse};
use nodekit_proto::pb;
use tonic::transport::Channel;

use crate::session::{random_id, ClientSession, Output, SessionServices};

pub use cache::{CacheEntry, CachePlan};
pub use progress::PlainProgress;

/// How long to keep reading progress after the solve returned (buildctl waits as long).
const STATUS_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// One build as the client asks for it.
#[derive(Clone, Debug, Default)]
pub struct BuildRequest {
    /// The LLB to solve; None with a frontend.
    pub definition: Option<pb::Definition>,
    /// A daemon-side frontend (`dockerfile.v0`) and its options.
    pub frontend: Option<String>,
    pub frontend_attrs: BTreeMap<String, String>,
    pub services: SessionServices,
    /// Exporters' types and attributes (`type=image,name=...`), as many as buildctl's
    /// repeated `--output`.
    pub exporters: Vec<(String, BTreeMap<String, String>)>,
    /// The build ref; random when empty.
    pub build_ref: String,
    /// Entitlements asked for (`security.insecure`, `network.host`), as buildctl's `--allow`.
    pub entitlements: Vec<String>,
    /// `--export-cache` and `--import-cache` entries.
    pub cache_exports: Vec<CacheEntry>,
    pub cache_imports: Vec<CacheEntry>,
}

/// Runs `request`, handing every progress update to `on_progress`; returns the exporter
/// response.
pub async fn build(
    channel: Channel,
    request: BuildRequest,
    mut on_progress: impl FnMut(&StatusResponse) + Send,
) -> anyhow::Result<BTreeMap<String, String>> {
    let cache = CachePlan::new(&request.cache_exports, &request.cache_imports)?;
    let mut services = request.services.clone();
    services.content_stores.extend(cache.stores.clone());
    let mut request = request;
    services
        .outputs
        .extend(take_outputs(&mut request.exporters)?);
    let session = ClientSession::start(channel.clone(), services).await?;
    let build_ref = if request.build_ref.is_empty() {
        random_id()
    } else {
        request.build_ref.clone()
    };
    let mut control = ControlClient::new(channel.clone()).max_decoding_message_size(16 << 20);
    let solve = control.solve(solve_request(&request, &cache, &build_ref, &session.id));
    let mut status = std::pin::pin!(stream_status(channel, build_ref.clone(), &mut on_progress));
    let mut solve = std::pin::pin!(solve);
    let mut status_done = false;
    let solved = loop {
        tokio::select! {
            solved = &mut solve => break solved,
            _ = &mut status, if !status_done => status_done = true,
        }
    };
    if !status_done {
        let _ = tokio::time::timeout(STATUS_DRAIN, status).await;
    }
    drop(session);
    let response = solved
        .map_err(|status| anyhow::anyhow!("{}", status.message()))
        .context("build failed")?;
    let response: BTreeMap<String, String> = response
        .into_inner()
        .exporter_response
        .into_iter()
        .collect();
    cache.finish(&response)?;
    Ok(response)
}

/// Where the exporters that send their output to the client write it: their `dest`, which
/// stays on the client as buildctl keeps it (a file for `oci`, `docker` and `tar`, a
/// directory for `local`), by exporter index.
fn take_outputs(
    exporters: &mut [(String, BTreeMap<String, String>)],
) -> anyhow::Result<BTreeMap<usize, Output>> {
    let mut outputs = BTreeMap::new();
    for (index, (kind, attrs)) in exporters.iter_mut().enumerate() {
        let output = match kind.as_str() {
            "oci" | "docker" | "tar" => attrs.remove("dest").map(|d| Output::File(d.into())),
            "local" => {
                let dest = attrs
                    .remove("dest")
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!("output directory is required for local exporter")
                    })?;
                // The mode stays in the attributes too: the daemon sends differently for it.
                let replace = match attrs.get("mode").map(String::as_str) {
                    None | Some("" | "copy") => false,
                    Some("delete") => true,
                    Some(other) => {
                        anyhow::bail!("invalid local exporter mode {other:?} (copy or delete)")
                    }
                };
                Some(Output::Directory {
                    dest: dest.into(),
                    replace,
                })
            }
            _ => None,
        };
        if let Some(output) = output {
            outputs.insert(index, output);
        }
    }
    Ok(outputs)
}

fn solve_request(
    request: &BuildRequest,
    cache: &CachePlan,
    build_ref: &str,
    session: &str,
) -> SolveRequest {
    let mut frontend_attrs = request.frontend_attrs.clone();
    if let (Some(_), Some(imports)) = (&request.frontend, cache.frontend_imports()) {
        frontend_attrs.insert("cache-imports".into(), imports);
    }
    let exporters: Vec<Exporter> = request
        .exporters
        .iter()
        .map(|(kind, attrs)| Exporter {
            r#type: kind.clone(),
            attrs: attrs.clone(),
        })
        .collect();
    SolveRequest {
        r#ref: build_ref.to_string(),
        definition: request.definition.clone(),
        frontend: request.frontend.clone().unwrap_or_default(),
        frontend_attrs,
        session: session.to_string(),
        exporter_deprecated: exporters
            .first()
            .map(|e| e.r#type.clone())
            .unwrap_or_default(),
        exporter_attrs_deprecated: exporters
            .first()
            .map(|e| e.attrs.clone())
            .unwrap_or_default(),
        exporters,
        entitlements: request.entitlements.clone(),
        cache: Some(cache.options.clone()),
        ..Default::default()
    }
}

/// Reads the build's `Status` stream to its end.
async fn stream_status(
    channel: Channel,
    build_ref: String,
    on_progress: &mut (impl FnMut(&StatusResponse) + Send),
) -> anyhow::Result<()> {
    let mut control = ControlClient::new(channel).max_decoding_message_size(16 << 20);
    let mut stream = control
        .status(StatusRequest { r#ref: build_ref })
        .await?
        .into_inner();
    while let Some(update) = stream.next().await {
        on_progress(&update?);
    }
    Ok(())
}
