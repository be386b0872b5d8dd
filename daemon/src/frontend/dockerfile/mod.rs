//! The built-in `dockerfile.v0` frontend: reads the Dockerfile and ignore patterns from the
//! client, parses it (`nodekit-dockerfile`), converts the target stage to LLB for each platform,
//! solves it within the build and returns the result with its image config.

pub mod convert;
pub mod image;
mod inputs;
mod lints;
pub mod named_context;
pub mod options;
mod outline;
mod platform_args;
mod subrequests;
pub mod syntax;

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::FrontendRequest;
use crate::gateway::{GatewayBuild, ReturnedResult, IMAGE_CONFIG_KEY};
use crate::oci::Platform;
use crate::session::oci_layout::OciLayout;
use crate::session::SessionCredentials;
use crate::solver::SolveError;
use crate::worker::{ResolveMode, Worker};
use convert::{convert, BaseImages, ConvertRequest};
use options::Options;
use subrequests::Subrequest;

/// The metadata key naming the platform of each ref of a multi-platform result.
const PLATFORMS_KEY: &str = "refs.platforms";

/// Builds the Dockerfile of `request`; `gateway_source` is the frontend image a `gateway.v0`
/// request named, which the built-in frontend serves.
pub async fn build(
    build: &Arc<GatewayBuild>,
    request: FrontendRequest<'_>,
    gateway_source: Option<&str>,
) -> Result<ReturnedResult, SolveError> {
    // Options another frontend named by the file would take may be refused here: that refusal
    // counts only once the file is known to name none.
    let parsed = Options::parse(request.options);
    let source = match inputs::read(build, options::filename(request.options)).await {
        Ok(source) => source,
        Err(error) => return Err(parsed.err().unwrap_or(error)),
    };
    if source.text.trim().is_empty() {
        return Err(SolveError::InvalidDefinition(
            "the Dockerfile cannot be empty".into(),
        ));
    }
    if let Some(image) = gateway_source {
        say_built_in(build, &source, "frontend gateway.v0 source", image);
    }
    match choose_frontend(request.options, &source) {
        Chosen::Image {
            reference,
            cmdline,
            line,
        } => {
            let forwarded = forward(build, request, &reference, cmdline).await;
            return forwarded.map_err(|e| placed_at_directive(e, &source, line));
        }
        Chosen::BuiltIn { place, value } => say_built_in(build, &source, &place, &value),
        Chosen::ThisOne => {}
    }
    let options = parsed?;
    build
        .ctx
        .remote_cache
        .add_entries(&options.cache_imports, &build.ctx.job);
    let text: Arc<str> = Arc::from(source.text.as_str());
    let placed = |error: SolveError| error.with_source_text(&source.name, &text);
    let dockerfile = nodekit_dockerfile::parse(&source.text).map_err(|e| {
        let error = SolveError::InvalidDefinition(e.message);
        placed(SolveError::located(&source.name, e.line, error))
    })?;
    let lint_config = lints::config(&dockerfile, &options, &source.name)?;
    let bases = WorkerBases {
        sessions: build.solver.sessions.clone(),
        session_id: build.ctx.session_id.clone(),
        worker: build.solver.worker.clone(),
        credentials: SessionCredentials::new(build.solver.sessions.clone(), &build.ctx.session_id),
        mode: ResolveMode::parse(&options.image_resolve_mode).map_err(SolveError::Frontend)?,
    };
    let build_platform = Platform::native();
    let sources = Sources {
        dockerfile: &dockerfile,
        file: &source.name,
        ignore: &source.ignore,
        options: &options,
        bases: &bases,
        build_platform: &build_platform,
        inputs: request.inputs,
    };
    match options.subrequest {
        Some(Subrequest::Describe) => return Ok(subrequests::describe()),
        Some(Subrequest::Targets) => return Ok(subrequests::targets(&dockerfile, &source.text)),
        Some(Subrequest::Outline) => return outline::outline(&dockerfile, &source.text, &options),
        Some(Subrequest::Lint) => return Ok(lint_only(&sources, &source, &lint_config).await),
        None => {}
    }
    let converted = futures::future::try_join_all(
        options
            .platforms
            .iter()
            .map(|platform| convert_platform(&sources, platform)),
    )
    .await
    .map_err(placed)?;
    let target = options.platforms.first().unwrap_or(&build_platform);
    let lint_input = lints::LintInput {
        dockerfile: &dockerfile,
        file: &source.name,
        text: &source.text,
        vertex: &source.vertex,
        options: &options,
        config: &lint_config,
        predefined_args: platform_args::platform_args(&build_platform, target),
    };
    lints::report(&lint_input, &converted, &build.ctx.job)?;
    // One result per platform, the platforms built side by side.
    let solved = futures::future::try_join_all(
        converted
            .iter()
            .map(|converted| solve_platform(build, converted, &source.name)),
    )
    .await
    .map_err(placed)?;
    Ok(returned_result(&options.platforms, converted, solved))
}

/// `frontend.lint`: the checks of a build of the first platform, nothing solved; a Dockerfile
/// that does not convert is answered with its error.
async fn lint_only(
    sources: &Sources<'_>,
    source: &inputs::DockerfileSource,
    config: &nodekit_dockerfile::LintConfig,
) -> ReturnedResult {
    let target = sources
        .options
        .platforms
        .first()
        .unwrap_or(sources.build_platform);
    let (converted, error) = match convert_platform(sources, target).await {
        Ok(converted) => (vec![converted], None),
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    let input = lints::LintInput {
        dockerfile: sources.dockerfile,
        file: &source.name,
        text: &source.text,
        vertex: &source.vertex,
        options: sources.options,
        config,
        predefined_args: platform_args::platform_args(sources.build_platform, target),
    };
    let all_stages = sources.options.target.is_empty();
    let warnings = lints::warnings(&input, &converted, all_stages);
    let answer_source = subrequests::LintSource {
        file: &source.name,
        text: &source.text,
    };
    subrequests::lint(&answer_source, &warnings, error)
}

/// The frontend a build asks for.
enum Chosen {
    /// None named, or the request comes from the frontend the file names (`cmdline` set, as
    /// upstream marks a forwarded request): this one builds it.
    ThisOne,
    /// The official one at a version this one implements: this one builds it, and says so.
    BuiltIn { place: String, value: String },
    /// Another frontend image, which the build is handed to; `line` is the directive's.
    Image {
        reference: String,
        cmdline: String,
        line: Option<usize>,
    },
}

/// The frontend the build asks for: the `BUILDKIT_SYNTAX` build argument, else the file's
/// syntax directive; found before the file is parsed, as another frontend's file need not be
/// a Dockerfile.
fn choose_frontend(
    raw: &std::collections::BTreeMap<String, String>,
    source: &inputs::DockerfileSource,
) -> Chosen {
    let from_arg = raw
        .get(&format!("build-arg:{}", syntax::SYNTAX_ARG))
        .filter(|value| !value.trim().is_empty())
        .map(|value| {
            let place = format!("build-arg:{}", syntax::SYNTAX_ARG);
            (value.trim().to_string(), place, None)
        });
    let from_file = || {
        let detected = syntax::detect(&source.text)?;
        let place = format!("{}:{}: # syntax", source.name, detected.line);
        Some((detected.value, place, Some(detected.line)))
    };
    let Some((value, place, line)) = from_arg.or_else(from_file) else {
        return Chosen::ThisOne;
    };
    match syntax::resolve(&value) {
        syntax::Syntax::BuiltIn => Chosen::BuiltIn { place, value },
        syntax::Syntax::External if raw.contains_key("cmdline") => Chosen::ThisOne,
        syntax::Syntax::External => Chosen::Image {
            reference: value
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
            cmdline: value,
            line,
        },
    }
}

/// Hands the build to frontend image `reference`, with every option and input of the request,
/// plus `cmdline` and `source` (upstream's forwarding to `gateway.v0`).
async fn forward(
    build: &Arc<GatewayBuild>,
    request: FrontendRequest<'_>,
    reference: &str,
    cmdline: String,
) -> Result<ReturnedResult, SolveError> {
    let mut options = request.options.clone();
    options.insert("cmdline".to_string(), cmdline);
    options.insert("source".to_string(), reference.to_string());
    let forwarded = FrontendRequest {
        options: &options,
        inputs: request.inputs,
    };
    super::image::run(build, reference, forwarded).await
}

/// A forwarded build's error without a place of its own, placed at the syntax directive (as
/// upstream places it; an error of `BUILDKIT_SYNTAX`'s frontend has no line).
fn placed_at_directive(
    error: SolveError,
    source: &inputs::DockerfileSource,
    line: Option<usize>,
) -> SolveError {
    match (line, &error) {
        (_, SolveError::Located { .. } | SolveError::Returned(_)) | (None, _) => error,
        (Some(line), _) => {
            let text: Arc<str> = Arc::from(source.text.as_str());
            SolveError::located(&source.name, line.max(1), error)
                .with_source_text(&source.name, &text)
        }
    }
}

/// One line in the log of the Dockerfile's vertex: `place`'s frontend image is served by the
/// built-in frontend.
fn say_built_in(build: &GatewayBuild, source: &inputs::DockerfileSource, place: &str, image: &str) {
    let line = format!(
        "{place}={image}: served by nodekitd's built-in Dockerfile frontend (the language of docker/dockerfile:1.{}), nothing pulled\n",
        syntax::BUILT_IN_MINOR
    );
    build
        .ctx
        .job
        .progress
        .log(&source.vertex, 1, line.into_bytes());
}

/// The frontend's result: one ref per platform (keyed by platform when there are several),
/// each with its image config.
fn returned_result(
    platforms: &[Platform],
    converted: Vec<convert::Converted>,
    solved: Vec<Option<crate::solver::Ref>>,
) -> ReturnedResult {
    let mut result = ReturnedResult::default();
    let multi = platforms.len() > 1;
    for ((platform, converted), solved) in platforms.iter().zip(converted).zip(solved) {
        let key = if multi {
            platform.to_string()
        } else {
            String::new()
        };
        let meta_key = if !multi {
            IMAGE_CONFIG_KEY.to_string()
        } else {
            format!("{IMAGE_CONFIG_KEY}/{key}")
        };
        result.metadata.insert(meta_key, converted.image.to_bytes());
        result.refs.insert(key, solved);
    }
    if multi {
        let platforms = platforms_metadata(platforms);
        result.metadata.insert(PLATFORMS_KEY.to_string(), platforms);
    }
    result
}

/// What every platform's conversion shares.
struct Sources<'a> {
    dockerfile: &'a nodekit_dockerfile::Dockerfile,
    file: &'a str,
    ignore: &'a [String],
    options: &'a Options,
    bases: &'a WorkerBases,
    build_platform: &'a Platform,
    inputs: &'a std::collections::BTreeMap<String, nodekit_proto::pb::Definition>,
}

/// Converts the target for `platform`, with the `label:` options in its image config.
async fn convert_platform(
    sources: &Sources<'_>,
    platform: &Platform,
) -> Result<convert::Converted, SolveError> {
    let request = ConvertRequest {
        dockerfile: sources.dockerfile,
        file: sources.file,
        options: sources.options,
        ignore: sources.ignore,
        platform,
        build_platform: sources.build_platform,
        bases: sources.bases,
        inputs: sources.inputs,
    };
    let mut converted = convert(&request).await?;
    for (key, value) in &sources.options.labels {
        converted
            .image
            .insert_into("Labels", key, serde_json::json!(value));
    }
    Ok(converted)
}

/// Solves one platform's conversion; a failed step's error is placed at its line.
async fn solve_platform(
    build: &Arc<GatewayBuild>,
    converted: &convert::Converted,
    file: &str,
) -> Result<Option<crate::solver::Ref>, SolveError> {
    let definition = nodekit_llb_builder::marshal(&converted.state)
        .map_err(|e| SolveError::Other(format!("making LLB: {e}")))?;
    build
        .solve_ref(&definition)
        .await
        .map_err(|e| locate(e, &converted.steps, file))
}

/// `refs.platforms`: which ref is which platform, as BuildKit's exporters read it.
fn platforms_metadata(platforms: &[Platform]) -> Vec<u8> {
    let platforms: Vec<serde_json::Value> = platforms
        .iter()
        .map(|p| {
            let mut platform = serde_json::json!({"os": p.os, "architecture": p.architecture});
            if let Some(variant) = &p.variant {
                platform["variant"] = serde_json::json!(variant);
            }
            serde_json::json!({"id": p.to_string(), "platform": platform})
        })
        .collect();
    serde_json::json!({ "platforms": platforms })
        .to_string()
        .into_bytes()
}

/// A failed step's error, placed at its Dockerfile line as `Dockerfile:LINE: message`.
fn locate(error: SolveError, steps: &[(String, usize)], file: &str) -> SolveError {
    let line = error
        .step()
        .and_then(|name| steps.iter().find(|(n, _)| n == name))
        .map(|(_, line)| *line);
    match line {
        Some(line) => SolveError::located(file, line, error),
        None => error,
    }
}

/// Base images through the worker: the host image store first, the registry when absent.
struct WorkerBases {
    worker: Worker,
    /// The build's session: OCI layouts the client serves are read through it.
    sessions: Arc<crate::session::SessionManager>,
    session_id: String,
    /// The build's client, asked for registry credentials when a base image is pulled.
    credentials: SessionCredentials,
    mode: ResolveMode,
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
                .resolve_image_with(reference, platform, self.mode, &self.credentials)
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

    fn oci_layout_config<'a>(
        &'a self,
        store: &'a str,
        digest: &'a str,
        platform: &'a Platform,
    ) -> BoxFuture<'a, Result<Vec<u8>, SolveError>> {
        async move {
            let layout = OciLayout::open(&self.sessions, &self.session_id, store).await?;
            let image = layout.image(digest, platform).await?;
            layout.blob(&image.config_digest).await
        }
        .boxed()
    }
}
