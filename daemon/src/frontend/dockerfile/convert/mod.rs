//! Dockerfile → LLB. Stages convert in file order, only those the target needs; each is an LLB
//! state and an image config. Base images' configs come from [`BaseImages`] (the worker).

pub(super) mod add_git;
mod copy;
mod meta;
mod run;
mod scope;
mod stage;
mod stage_names;

use std::collections::BTreeSet;

use futures::future::BoxFuture;
use nodekit_dockerfile::{suggest, Dockerfile, InstructionKind, LintWarning, Stage};
use nodekit_llb_builder::{
    scratch, Environment, Http, Image, ImageConfig, Local, ResolveMode, State,
};
use nodekit_proto::pb;

use super::image::StageImage;
use super::inputs::CONTEXT;
use super::named_context::NamedContext;
use super::options::Options;
use super::options::RunSandbox;
use crate::oci::Platform;
use crate::solver::SolveError;
pub use scope::Scope;
use stage::StageBuilder;
use stage_names::StageNames;

/// A converted stage.
#[derive(Clone)]
pub struct Converted {
    pub state: State,
    pub image: StageImage,
    /// Every step's name and Dockerfile line.
    pub steps: Vec<(String, usize)>,
    /// The ARGs declared in the stage: a stage built FROM it inherits them.
    pub args: scope::Args,
    /// The stage's environment at its end: a stage built FROM it starts with it.
    pub env: Environment,
    /// Lint warnings only the conversion can see (UndefinedVar), of every converted stage.
    pub lints: Vec<LintWarning>,
    /// The stages the target needed (upstream lints only those).
    pub needed: BTreeSet<usize>,
}

/// Where base images' configs come from.
pub trait BaseImages: Send + Sync {
    /// The reference to build from (pinned if the resolver pins) and the config blob.
    fn config<'a>(
        &'a self,
        reference: &'a str,
        platform: &'a Platform,
    ) -> BoxFuture<'a, Result<(String, Vec<u8>), SolveError>>;

    /// The config of image `digest` in the client's OCI layout `store`, for `platform`.
    fn oci_layout_config<'a>(
        &'a self,
        store: &'a str,
        _digest: &'a str,
        _platform: &'a Platform,
    ) -> BoxFuture<'a, Result<Vec<u8>, SolveError>> {
        Box::pin(async move {
            Err(SolveError::Unsupported(format!(
                "oci-layout {store}: no client session to read it from"
            )))
        })
    }
}

/// Everything one conversion needs.
pub struct ConvertRequest<'a> {
    pub dockerfile: &'a Dockerfile,
    pub file: &'a str,
    pub options: &'a Options,
    pub ignore: &'a [String],
    pub platform: &'a Platform,
    pub build_platform: &'a Platform,
    pub bases: &'a dyn BaseImages,
    /// The request's frontend inputs (`input:` contexts name them).
    pub inputs: &'a std::collections::BTreeMap<String, pb::Definition>,
}

/// The stages converted so far, and the build context every COPY reads.
pub struct Stages {
    names: StageNames,
    /// The stage being converted.
    current: usize,
    named_contexts: std::collections::BTreeMap<String, NamedContext>,
    /// The frontend inputs `input:` contexts name, as states.
    inputs: std::collections::BTreeMap<String, State>,
    /// `add-hosts`: /etc/hosts entries for every RUN.
    pub extra_hosts: Vec<(String, String)>,
    /// `ulimit` and `hostname`: the sandbox of every RUN.
    pub run_sandbox: RunSandbox,
    /// Step names and their Dockerfile lines, to place errors of the solve.
    steps: parking_lot::Mutex<Vec<(String, usize)>>,
    lints: parking_lot::Mutex<Vec<LintWarning>>,
    converted: Vec<Option<Converted>>,
    context: State,
    platform: pb::Platform,
    /// How image sources resolve (the `image-resolve-mode` option).
    resolve_mode: ResolveMode,
}

impl Stages {
    /// The state a `--from` names: an earlier stage (by name or index), else an image; none
    /// means the build context.
    pub fn source_state(&self, from: Option<&str>, scope: &Scope) -> Result<State, SolveError> {
        let Some(from) = from else {
            return Ok(self.context.clone());
        };
        if from.contains('$') {
            return Err(scope.error("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"));
        }
        if let Some(context) = self.named_context(from) {
            return Ok(context);
        }
        match self.index(from) {
            Some(i) if i == self.current => Err(scope.error(format!("circular dependency detected on stage: {from}"))),
            Some(i) if i > self.current => Err(scope.error(format!(
                "cannot copy from stage \"{from}\", it needs to be defined before current stage \"{}\"",
                self.label(self.current)
            ))),
            Some(i) => self.converted[i]
                .as_ref()
                .map(|c| c.state.clone())
                .ok_or_else(|| scope.error(format!("stage {from} was not built"))),
            None if from.chars().all(|c| c.is_ascii_digit()) => Err(scope.error(format!("invalid stage index {from}"))),
            None => {
                // Named so that a failure to resolve it is reported at this line.
                let name = format!("[{}] COPY --from={from}: load {from}", self.label(self.current));
                self.record_step(&name, scope.line);
                Ok(Image::new(from)
                    .platform(self.platform.clone())
                    .resolve_mode(self.resolve_mode)
                    .custom_name(&name)
                    .into_state())
            }
        }
    }

    /// The stage's name, or `stage-N`.
    fn label(&self, index: usize) -> String {
        self.names
            .name(index)
            .map_or_else(|| format!("stage-{index}"), str::to_string)
    }

    /// A `context:<name>` option's source, for `--from`.
    fn named_context(&self, name: &str) -> Option<State> {
        Some(match self.named_contexts.get(name)? {
            NamedContext::Image(reference) => Image::new(reference)
                .platform(self.platform.clone())
                .resolve_mode(self.resolve_mode)
                .into_state(),
            NamedContext::OciLayout { store, digest } => self.oci_layout(store, digest),
            files => self.files_context(files),
        })
    }

    /// The image `digest` of the client's OCI layout `store`, for this build's platform.
    fn oci_layout(&self, store: &str, digest: &str) -> State {
        let attrs =
            std::collections::BTreeMap::from([("oci.store".to_string(), store.to_string())]);
        let options = nodekit_llb_builder::OpOptions::new().platform(self.platform.clone());
        nodekit_llb_builder::source_with(
            &format!("oci-layout://{store}@{digest}"),
            &attrs,
            &["source.ocilayout"],
            options,
        )
    }

    /// A named context of files (a local directory, a downloaded file, a frontend input) as a
    /// state (an image one as its plain image).
    fn files_context(&self, context: &NamedContext) -> State {
        match context {
            NamedContext::Local(dir) => Local::new(dir).shared_key_hint(dir).into_state(),
            NamedContext::Http(url) => Http::new(url)
                .filename(&copy::url_file_name(url))
                .into_state(),
            NamedContext::Input(name) => self.inputs.get(name).cloned().unwrap_or_else(scratch),
            NamedContext::Image(reference) => Image::new(reference).into_state(),
            NamedContext::OciLayout { store, digest } => self.oci_layout(store, digest),
            NamedContext::Git(git) => git.state_with(None, None),
        }
    }

    /// Keeps lint warnings found while converting.
    pub fn record_lints(&self, lints: Vec<LintWarning>) {
        if !lints.is_empty() {
            self.lints.lock().extend(lints);
        }
    }

    fn record_step(&self, name: &str, line: usize) {
        self.steps.lock().push((name.to_string(), line));
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.names.find(name)
    }
}

/// Converts the target stage (and what it needs) for one platform.
pub async fn convert(request: &ConvertRequest<'_>) -> Result<Converted, SolveError> {
    let df = request.dockerfile;
    let global = global_scope(request)?;
    let target = target_index(df, &request.options.target)?;
    let needed = needed_stages(df, target, &global);
    let context = Local::new(CONTEXT)
        .shared_key_hint(CONTEXT)
        .exclude_patterns(request.ignore)
        .custom_name("[internal] load build context")
        .into_state();
    let mut stages = Stages {
        names: StageNames::new(&df.stages),
        current: 0,
        named_contexts: request.options.named_contexts.clone(),
        inputs: input_states(request)?,
        extra_hosts: request.options.extra_hosts.clone(),
        run_sandbox: request.options.run_sandbox.clone(),
        steps: Default::default(),
        lints: Default::default(),
        converted: vec![None; df.stages.len()],
        context,
        platform: wire_platform(request.platform),
        resolve_mode: llb_resolve_mode(&request.options.image_resolve_mode),
    };
    for index in (0..=target).filter(|i| needed.contains(i)) {
        stages.current = index;
        let converted = convert_stage(request, &global, &stages, index).await?;
        stages.converted[index] = Some(converted);
    }
    let mut converted = stages.converted[target]
        .take()
        .ok_or_else(|| SolveError::Other("the target stage was not converted".into()))?;
    converted.steps = stages.steps.lock().clone();
    converted.lints = stages.lints.lock().clone();
    converted.needed = needed;
    Ok(converted)
}

/// The scope of FROM lines: build args, the automatic platform ARGs and the global ARGs.
fn global_scope(request: &ConvertRequest<'_>) -> Result<Scope, SolveError> {
    let mut build_args = request.options.build_args.clone();
    for (key, value) in
        super::platform_args::platform_args(request.build_platform, request.platform)
    {
        build_args.entry(key).or_insert(value);
    }
    let mut scope = Scope::new(request.dockerfile.escape, build_args.clone(), request.file);
    for (key, value) in
        super::platform_args::platform_args(request.build_platform, request.platform)
    {
        scope.declare(&key, Some(&value));
    }
    for instruction in &request.dockerfile.global_args {
        scope.line = instruction.start_line;
        let mut instruction = instruction.clone();
        scope.expand_instruction(&mut instruction)?;
        if let InstructionKind::Arg(args) = &instruction.kind {
            for arg in args {
                scope.declare(&arg.key, arg.default.as_deref());
            }
        }
    }
    Ok(scope)
}

fn target_index(df: &Dockerfile, target: &str) -> Result<usize, SolveError> {
    if df.stages.is_empty() {
        return Err(SolveError::InvalidDefinition(
            "dockerfile contains no stages to build".into(),
        ));
    }
    match target {
        "" => Ok(df.stages.len() - 1),
        name => df
            .stages
            .iter()
            .position(|s| {
                s.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| {
                let stages: Vec<&str> =
                    df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
                let message = format!("target stage \"{name}\" could not be found");
                SolveError::InvalidDefinition(suggest::wrap(message, name, &stages, false))
            }),
    }
}

/// The stages the target depends on (through FROM, COPY --from and RUN --mount from=). A FROM
/// name is expanded with the global ARGs first, as the conversion does (`FROM base-${TARGETARCH}`
/// names a stage).
fn needed_stages(df: &Dockerfile, target: usize, global: &Scope) -> BTreeSet<usize> {
    let names = StageNames::new(&df.stages);
    let mut needed = BTreeSet::new();
    let mut pending = vec![target];
    while let Some(index) = pending.pop() {
        if !needed.insert(index) {
            continue;
        }
        for name in references(&df.stages[index], global) {
            pending.extend(names.find_before(&name, index));
        }
    }
    needed
}

/// Every stage-or-image name a stage refers to; its FROM expanded in `global` (an expansion
/// that fails here fails again, with its line, when the stage is converted).
fn references(stage: &Stage, global: &Scope) -> Vec<String> {
    let from = global
        .expand(&stage.from.image)
        .unwrap_or_else(|_| stage.from.image.clone());
    let mut names = vec![from];
    for instruction in &stage.instructions {
        match &instruction.kind {
            InstructionKind::Copy(copy) => names.extend(copy.from.clone()),
            // A trigger runs in stages built FROM this one; what it reads must be built too.
            InstructionKind::Onbuild(onbuild) => {
                if let Ok(trigger) = &onbuild.trigger {
                    if let InstructionKind::Copy(copy) = &trigger.kind {
                        names.extend(copy.from.clone());
                    }
                }
            }
            InstructionKind::Run(run) => {
                names.extend(run.mounts.iter().filter_map(|m| m.from_value()))
            }
            _ => {}
        }
    }
    names
}

async fn convert_stage(
    request: &ConvertRequest<'_>,
    global: &Scope,
    stages: &Stages,
    index: usize,
) -> Result<Converted, SolveError> {
    let stage = &request.dockerfile.stages[index];
    let mut from_scope = global.clone();
    from_scope.line = stage.line;
    let platform = match &stage.platform {
        Some(raw) => {
            let text = from_scope.expand(raw)?;
            Platform::parse(&text).map_err(|e| {
                from_scope.error(format!("failed to parse platform {text}: {}", e.0))
            })?
        }
        None => request.platform.clone(),
    };
    let base_name = from_scope.expand(&stage.from.image)?;
    let (state, mut image) = base(request, stages, &base_name, &platform, &from_scope).await?;
    // As upstream: steps are named by their stage, unless the Dockerfile has only one, and by
    // the platform they are for when there are several.
    let stage_label = match request.dockerfile.stages.len() {
        1 => None,
        _ => Some(
            stage
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{index}")),
        ),
    };
    let platform_label = (request.options.platforms.len() > 1).then(|| platform.to_string());
    let label = [platform_label, stage_label]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let triggers = image.strings("OnBuild");
    image.set("OnBuild", serde_json::Value::Null);
    let earlier = stages
        .index(&base_name)
        .and_then(|i| stages.converted[i].as_ref());
    // A stage built FROM an earlier one inherits its environment and the ARGs it declared.
    let scope = match earlier {
        Some(earlier) => {
            let mut scope = global.for_stage_in(earlier.env.clone());
            scope.declared = earlier.args.clone();
            scope
        }
        None => global.for_stage(image.env()),
    };
    let mut builder = StageBuilder {
        state,
        scope,
        image,
        stages,
        label,
        step: 1,
        steps: stage.instructions.len() + triggers.len() + 1,
        ignore_cache: request.options.ignores_cache(stage.name.as_deref()),
        cmd_set: false,
    };
    for trigger in &triggers {
        let instruction = nodekit_dockerfile::parse_instruction(trigger).map_err(|e| {
            builder.scope.error(format!(
                "ONBUILD trigger {trigger:?} of the base image: {}",
                e.message
            ))
        })?;
        builder.apply(&instruction)?;
    }
    for instruction in &stage.instructions {
        builder.apply(instruction)?;
    }
    builder.image.set_platform(&platform);
    Ok(Converted {
        state: builder.state,
        image: builder.image,
        steps: Vec::new(),
        args: builder.scope.declared.clone(),
        env: builder.scope.env().clone(),
        lints: Vec::new(),
        needed: BTreeSet::new(),
    })
}

/// The frontend inputs named by `input:` contexts, as states; one the request lacks is
/// refused with upstream's words.
fn input_states(
    request: &ConvertRequest<'_>,
) -> Result<std::collections::BTreeMap<String, State>, SolveError> {
    let mut states = std::collections::BTreeMap::new();
    for (name, context) in &request.options.named_contexts {
        let NamedContext::Input(input) = context else {
            continue;
        };
        let definition = request.inputs.get(input).ok_or_else(|| {
            SolveError::InvalidDefinition(format!("invalid input {input} for {name}"))
        })?;
        let state = nodekit_llb_builder::from_definition(definition)
            .map_err(|e| SolveError::InvalidDefinition(format!("frontend input {input}: {e}")))?;
        states.insert(input.clone(), state);
    }
    Ok(states)
}

/// A stage built on a frontend input: its state, with the image config the input's metadata
/// gives (else an empty one).
fn input_base(
    request: &ConvertRequest<'_>,
    stages: &Stages,
    input: &str,
    platform: &Platform,
) -> Result<(State, StageImage), SolveError> {
    let state = stages.inputs.get(input).cloned().unwrap_or_else(scratch);
    let Some(config) = request.options.input_configs.get(input) else {
        return Ok((state, StageImage::scratch(platform)));
    };
    let parsed = ImageConfig::parse(config)
        .map_err(|e| SolveError::InvalidDefinition(format!("the config of input {input}: {e}")))?;
    Ok((
        state.with_image_config(&parsed),
        StageImage::from_base(config)?,
    ))
}

/// A stage built on an image of the client's OCI layout, with the image's config.
async fn oci_layout_base(
    request: &ConvertRequest<'_>,
    stages: &Stages,
    store: &str,
    digest: &str,
    platform: &Platform,
    scope: &Scope,
) -> Result<(State, StageImage), SolveError> {
    let config = request
        .bases
        .oci_layout_config(store, digest, platform)
        .await
        .map_err(|e| scope.error(e))?;
    let parsed = ImageConfig::parse(&config)
        .map_err(|e| scope.error(format!("the config of oci-layout {store}@{digest}: {e}")))?;
    let mut state = stages.oci_layout(store, digest).with_image_config(&parsed);
    if !parsed.config.user.is_empty() {
        state = state.user(parsed.config.user.clone());
    }
    Ok((state, StageImage::from_base(&config)?))
}

/// The stage's base: an earlier stage, scratch, or an image with its config applied.
async fn base(
    request: &ConvertRequest<'_>,
    stages: &Stages,
    name: &str,
    platform: &Platform,
    scope: &Scope,
) -> Result<(State, StageImage), SolveError> {
    if let Some(earlier) = stages.index(name).and_then(|i| stages.converted[i].clone()) {
        return Ok((earlier.state, earlier.image));
    }
    let name = match request.options.named_contexts.get(name) {
        Some(NamedContext::Image(reference)) => reference.as_str(),
        Some(NamedContext::Input(input)) => return input_base(request, stages, input, platform),
        Some(NamedContext::OciLayout { store, digest }) => {
            return oci_layout_base(request, stages, store, digest, platform, scope).await
        }
        Some(files) => return Ok((stages.files_context(files), StageImage::scratch(platform))),
        None => name,
    };
    if name.eq_ignore_ascii_case("scratch") {
        let state = scratch().platform(wire_platform(platform)).env(
            "PATH",
            super::image::DEFAULT_PATH.trim_start_matches("PATH="),
        );
        return Ok((state, StageImage::scratch(platform)));
    }
    let (reference, config) = request
        .bases
        .config(name, platform)
        .await
        .map_err(|e| scope.error(e))?;
    let parsed = ImageConfig::parse(&config)
        .map_err(|e| scope.error(format!("the config of {name}: {e}")))?;
    warn_of_other_platform(stages, name, &config, platform, scope.line);
    let mut state = Image::new(&reference)
        .platform(wire_platform(platform))
        .resolve_mode(llb_resolve_mode(&request.options.image_resolve_mode))
        .into_state()
        .with_image_config(&parsed);
    if !parsed.config.user.is_empty() {
        state = state.user(parsed.config.user.clone());
    }
    Ok((state, StageImage::from_base(&config)?))
}

/// InvalidBaseImagePlatform: a base image made for another platform than the stage's (a
/// single-platform image is used for any platform, as upstream uses it).
fn warn_of_other_platform(
    stages: &Stages,
    name: &str,
    config: &[u8],
    platform: &Platform,
    line: usize,
) {
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(config) else {
        return;
    };
    let field = |key: &str| config.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    let (os, architecture) = (field("os"), field("architecture"));
    if os.is_empty() || architecture.is_empty() {
        return;
    }
    let variant = Some(field("variant")).filter(|v| !v.is_empty());
    let offered = Platform::new(os, architecture, variant);
    if platform.matches(&offered) {
        return;
    }
    let warning = nodekit_dockerfile::lint::converter::invalid_base_image_platform(
        name,
        &platform.to_string(),
        &offered.to_string(),
        line,
        line,
    );
    stages.record_lints(vec![warning]);
}

/// The `image-resolve-mode` option as image sources carry it.
fn llb_resolve_mode(option: &str) -> ResolveMode {
    match option {
        "pull" => ResolveMode::ForcePull,
        "local" => ResolveMode::PreferLocal,
        _ => ResolveMode::Default,
    }
}

/// A platform as LLB and the gateway carry it.
pub fn wire_platform(platform: &Platform) -> pb::Platform {
    pb::Platform {
        os: platform.os.clone(),
        architecture: platform.architecture.clone(),
        variant: platform.variant.clone().unwrap_or_default(),
        ..Default::default()
    }
}
