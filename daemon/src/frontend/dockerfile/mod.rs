//! The built-in `dockerfile.v0` frontend: reads the Dockerfile and ignore patterns from the
//! client, parses it (`nodekit-dockerfile`), converts the target stage to LLB for each platform,
//! solves it within the build and returns the result with its image config.

pub mod convert;
pub mod image;
mod inputs;
pub mod options;
mod platform_args;

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::FrontendRequest;
use crate::gateway::{GatewayBuild, ReturnedResult, IMAGE_CONFIG_KEY};
use crate::oci::Platform;
use crate::solver::SolveError;
use crate::worker::Worker;
use convert::{convert, BaseImages, ConvertRequest};
use options::Options;

pub async fn build(
    build: &Arc<GatewayBuild>,
    request: FrontendRequest<'_>,
) -> Result<ReturnedResult, SolveError> {
    let options = Options::parse(request.options)?;
    let source = inputs::read(build, &options.filename).await?;
    if source.text.trim().is_empty() {
        return Err(SolveError::InvalidDefinition(
            "the Dockerfile cannot be empty".into(),
        ));
    }
    let dockerfile = nodekit_dockerfile::parse(&source.text).map_err(|e| {
        SolveError::InvalidDefinition(format!("{}:{}: {}", source.name, e.line, e.message))
    })?;
    if let Some(syntax) = dockerfile.directives.iter().find(|d| d.name == "syntax") {
        return Err(SolveError::Unsupported(format!(
            "{}:{}: the syntax directive names the external frontend {:?}; external frontends are not supported by nodekitd yet (remove the line to use the built-in dockerfile.v0)",
            source.name, syntax.line, syntax.value
        )));
    }
    let bases = WorkerBases {
        worker: build.solver.worker.clone(),
    };
    let build_platform = Platform::native();
    let mut result = ReturnedResult::default();
    for platform in &options.platforms {
        let request = ConvertRequest {
            dockerfile: &dockerfile,
            file: &source.name,
            options: &options,
            ignore: &source.ignore,
            platform,
            build_platform: &build_platform,
            bases: &bases,
        };
        let mut converted = convert(&request).await?;
        for (key, value) in &options.labels {
            converted
                .image
                .insert_into("Labels", key, serde_json::json!(value));
        }
        let definition = nodekit_llb_builder::marshal(&converted.state)
            .map_err(|e| SolveError::Other(format!("making LLB: {e}")))?;
        let solved = build
            .solve_ref(&definition)
            .await
            .map_err(|e| locate(e, &converted.steps, &source.name))?;
        let key = match options.platforms.len() {
            1 => String::new(),
            _ => platform.to_string(),
        };
        let meta_key = match key.is_empty() {
            true => IMAGE_CONFIG_KEY.to_string(),
            false => format!("{IMAGE_CONFIG_KEY}/{key}"),
        };
        result.metadata.insert(meta_key, converted.image.to_bytes());
        result.refs.insert(key, solved);
    }
    Ok(result)
}

/// A failed step's error, placed at its Dockerfile line as `Dockerfile:LINE: message`.
fn locate(error: SolveError, steps: &[(String, usize)], file: &str) -> SolveError {
    let line = error
        .step()
        .and_then(|name| steps.iter().find(|(n, _)| n == name))
        .map(|(_, line)| *line);
    match line {
        Some(line) => SolveError::Frontend(format!("{file}:{line}: {error}")),
        None => error,
    }
}

/// Base images through the worker: the host image store first, the registry when absent.
struct WorkerBases {
    worker: Worker,
}

impl BaseImages for WorkerBases {
    fn config<'a>(
        &'a self,
        reference: &'a str,
        platform: &'a Platform,
    ) -> BoxFuture<'a, Result<(String, Vec<u8>), SolveError>> {
        async move {
            let image = self
                .worker
                .resolve_image(reference, platform)
                .await
                .map_err(|e| {
                    SolveError::Other(format!(
                        "failed to resolve source metadata for {reference}: {e}"
                    ))
                })?;
            let config = self
                .worker
                .read_blob(&image.image.config_digest)
                .await
                .map_err(|e| SolveError::worker(format!("reading the config of {reference}"), e))?;
            Ok((image.name.clone(), config))
        }
        .boxed()
    }
}
