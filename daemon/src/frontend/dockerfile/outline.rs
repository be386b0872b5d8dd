//! `frontend.outline` (buildx `--call outline`): what the target stage can be given — the build
//! arguments it uses (with their values and the comments above them), the secrets and SSH
//! agents its RUN steps mount — over the stages it is built from, as upstream's Dockerfile
//! frontend collects them while it converts.

use std::collections::{BTreeMap, BTreeSet};

use nodekit_dockerfile::{ArgDef, Dockerfile, Instruction, InstructionKind, Lexer};
use serde_json::{json, Value};

use super::options::Options;
use super::subrequests::{answer, base64, described, location, tabulate};
use crate::gateway::ReturnedResult;
use crate::solver::SolveError;

/// Variables to expand words with, in declaration order.
type Variables = Vec<(String, String)>;

/// An ARG as the outline shows it.
#[derive(Clone, Debug)]
struct ArgInfo {
    name: String,
    value: Option<String>,
    description: Option<String>,
    lines: (usize, usize),
    /// Other ARGs its default names (they are used when it is).
    deps: BTreeSet<String>,
}

/// A secret or SSH mount: whether the step needs it, and where it is first asked for.
#[derive(Clone, Debug)]
struct Mounted {
    required: bool,
    lines: (usize, usize),
}

/// What one stage contributes.
#[derive(Default)]
struct StageOutline {
    args: BTreeMap<String, ArgInfo>,
    used: BTreeSet<String>,
    secrets: BTreeMap<String, Mounted>,
    ssh: BTreeMap<String, Mounted>,
    base: Option<usize>,
    deps: BTreeSet<usize>,
}

pub fn outline(
    dockerfile: &Dockerfile,
    text: &str,
    options: &Options,
) -> Result<ReturnedResult, SolveError> {
    let lexer = Lexer::new(dockerfile.escape);
    let (globals, global_args) = global_args(dockerfile, &lexer, options)?;
    let target = target_stage(dockerfile, options)?;
    let stages: Vec<StageOutline> = (0..=target)
        .map(|index| stage_outline(dockerfile, index, &lexer, options, &globals, &global_args))
        .collect();
    let mut visited = BTreeSet::new();
    let mut args = Vec::new();
    collect_args(&stages, target, &mut visited, &mut args);
    args.sort_by_key(|a| a.lines.0);
    let secrets = collect_mounts(&stages, target, |s| &s.secrets);
    let ssh = collect_mounts(&stages, target, |s| &s.ssh);
    let stage = &dockerfile.stages[target];
    let name = stage.name.clone().unwrap_or_default();
    let description = described(&stage.from.comments, stage.name.as_deref());
    Ok(answer_of(&name, description, &args, &secrets, &ssh, text))
}

fn target_stage(dockerfile: &Dockerfile, options: &Options) -> Result<usize, SolveError> {
    if options.target.is_empty() {
        return Ok(dockerfile.stages.len().saturating_sub(1));
    }
    dockerfile.stage_index(&options.target).ok_or_else(|| {
        SolveError::InvalidDefinition(format!(
            "target stage {:?} could not be found",
            options.target
        ))
    })
}

/// The global ARGs' values (to expand FROM lines with) and what the outline shows of them.
fn global_args(
    dockerfile: &Dockerfile,
    lexer: &Lexer,
    options: &Options,
) -> Result<(Variables, BTreeMap<String, ArgInfo>), SolveError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut infos: BTreeMap<String, ArgInfo> = BTreeMap::new();
    for instruction in &dockerfile.global_args {
        for def in arg_defs(instruction) {
            let mut info = arg_info(instruction, def);
            match (options.build_args.get(&def.key), &def.default) {
                (Some(value), _) => info.value = Some(value.clone()),
                (None, Some(default)) => {
                    let expanded = lexer
                        .process_word_with_matches(default, &env)
                        .map_err(|e| SolveError::InvalidDefinition(e.to_string()))?;
                    info.deps = expanded.matched;
                    if info.deps.remove(&def.key) {
                        if let Some(old) = infos.get(&def.key) {
                            info.deps.extend(old.deps.iter().cloned());
                        }
                    }
                    info.value = Some(expanded.result);
                }
                (None, None) => {}
            }
            if let Some(value) = &info.value {
                env.retain(|(k, _)| k != &def.key);
                env.push((def.key.clone(), value.clone()));
            }
            infos.insert(def.key.clone(), info);
        }
    }
    Ok((env, infos))
}

fn arg_defs(instruction: &Instruction) -> &[ArgDef] {
    match &instruction.kind {
        InstructionKind::Arg(defs) => defs,
        _ => &[],
    }
}

fn arg_info(instruction: &Instruction, def: &ArgDef) -> ArgInfo {
    ArgInfo {
        name: def.key.clone(),
        value: None,
        description: described(&instruction.comments, Some(&def.key)),
        lines: (instruction.start_line, instruction.end_line),
        deps: BTreeSet::new(),
    }
}

/// One stage's ARGs, mounts and the stages it builds on.
fn stage_outline(
    dockerfile: &Dockerfile,
    index: usize,
    lexer: &Lexer,
    options: &Options,
    globals: &[(String, String)],
    global_args: &BTreeMap<String, ArgInfo>,
) -> StageOutline {
    let stage = &dockerfile.stages[index];
    let mut outline = StageOutline {
        args: global_args.clone(),
        ..Default::default()
    };
    let globals = globals.to_vec();
    let mut base_name = stage.from.image.clone();
    for word in std::iter::once(&stage.from.image).chain(stage.platform.iter()) {
        if let Ok(expanded) = lexer.process_word_with_matches(word, &globals) {
            outline.used.extend(expanded.matched);
            if word == &stage.from.image {
                base_name = expanded.result;
            }
        }
    }
    outline.base = earlier_stage(dockerfile, &base_name, index);
    let mut env = globals;
    for instruction in &stage.instructions {
        match &instruction.kind {
            InstructionKind::Arg(defs) => {
                for def in defs {
                    stage_arg(&mut outline, &mut env, instruction, def, lexer, options);
                }
            }
            InstructionKind::Run(run) => {
                for mount in run.mounts.iter().filter_map(|m| m.resolve_literal().ok()) {
                    mounted(&mut outline, instruction, &mount);
                    if let Some(from) = mount.from.as_deref() {
                        outline.deps.extend(earlier_stage(dockerfile, from, index));
                    }
                }
            }
            InstructionKind::Copy(copy) => {
                let from = copy.from.as_deref().unwrap_or_default();
                outline.deps.extend(earlier_stage(dockerfile, from, index));
            }
            _ => {}
        }
    }
    outline
}

/// `ARG name[=default]` in a stage: the build's value, else the expanded default; one without
/// either takes the global's (and the outline keeps the global's entry).
fn stage_arg(
    outline: &mut StageOutline,
    env: &mut Vec<(String, String)>,
    instruction: &Instruction,
    def: &ArgDef,
    lexer: &Lexer,
    options: &Options,
) {
    let given = options.build_args.get(&def.key).cloned();
    let inherited = given.is_none() && def.default.is_none() && outline.args.contains_key(&def.key);
    let value = given.or_else(|| {
        let default = def.default.as_deref()?;
        lexer.process_word(default, &*env).ok()
    });
    if !inherited {
        let mut info = arg_info(instruction, def);
        info.value = value.clone();
        outline.args.insert(def.key.clone(), info);
    }
    if let Some(value) = value {
        env.retain(|(k, _)| k != &def.key);
        env.push((def.key.clone(), value));
    }
    outline.used.insert(def.key.clone());
}

fn mounted(
    outline: &mut StageOutline,
    instruction: &Instruction,
    mount: &nodekit_dockerfile::Mount,
) {
    use nodekit_dockerfile::MountType;
    let id = mount.cache_id.clone().filter(|id| !id.is_empty());
    let (kind, id) = match mount.mount_type {
        MountType::Secret => {
            let target = mount.target.as_deref().unwrap_or_default();
            let base = target.rsplit('/').next().unwrap_or_default().to_string();
            (&mut outline.secrets, id.unwrap_or(base))
        }
        MountType::Ssh => (&mut outline.ssh, id.unwrap_or_else(|| "default".into())),
        _ => return,
    };
    kind.entry(id).or_insert(Mounted {
        required: mount.required,
        lines: (instruction.start_line, instruction.end_line),
    });
}

/// The index of an earlier stage `name` refers to (by name or number), if any.
fn earlier_stage(dockerfile: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    if name.is_empty() {
        return None;
    }
    dockerfile.stage_index(name).filter(|&i| i < before)
}

/// The used ARGs of `index`, then of its base and the stages it copies from, each once.
fn collect_args(
    stages: &[StageOutline],
    index: usize,
    visited: &mut BTreeSet<String>,
    out: &mut Vec<ArgInfo>,
) {
    let stage = &stages[index];
    let mut used = stage.used.clone();
    let mut pending: Vec<String> = used.iter().cloned().collect();
    while let Some(name) = pending.pop() {
        for dep in stage.args.get(&name).map(|a| &a.deps).into_iter().flatten() {
            if used.insert(dep.clone()) {
                pending.push(dep.clone());
            }
        }
    }
    for name in &used {
        if let Some(info) = stage.args.get(name) {
            if visited.insert(name.clone()) {
                out.push(info.clone());
            }
        }
    }
    for next in stage.base.iter().chain(stage.deps.iter()) {
        collect_args(stages, *next, visited, out);
    }
}

/// The secrets (or SSH ids) of `index` and the stages it builds on, each once, by line.
fn collect_mounts(
    stages: &[StageOutline],
    index: usize,
    kind: fn(&StageOutline) -> &BTreeMap<String, Mounted>,
) -> Vec<(String, Mounted)> {
    let mut seen = BTreeMap::new();
    let mut pending = vec![index];
    let mut done = BTreeSet::new();
    while let Some(next) = pending.pop() {
        if !done.insert(next) {
            continue;
        }
        let stage = &stages[next];
        for (id, mount) in kind(stage) {
            seen.entry(id.clone()).or_insert_with(|| mount.clone());
        }
        pending.extend(stage.deps.iter().rev());
        pending.extend(stage.base);
    }
    let mut out: Vec<(String, Mounted)> = seen.into_iter().collect();
    out.sort_by_key(|(_, m)| m.lines.0);
    out
}

fn answer_of(
    name: &str,
    description: Option<String>,
    args: &[ArgInfo],
    secrets: &[(String, Mounted)],
    ssh: &[(String, Mounted)],
    text: &str,
) -> ReturnedResult {
    let mut json = serde_json::Map::new();
    let mut out = String::new();
    if !name.is_empty() {
        json.insert("name".into(), json!(name));
    }
    if let Some(description) = &description {
        json.insert("description".into(), json!(description));
    }
    if !name.is_empty() || description.is_some() {
        let shown = if name.is_empty() { "(default)" } else { name };
        let mut rows = vec![vec!["TARGET:".to_string(), shown.to_string()]];
        if let Some(description) = &description {
            rows.push(vec!["DESCRIPTION:".into(), description.clone()]);
        }
        out.push_str(&tabulate(&rows, 1));
        out.push('\n');
    }
    if !args.is_empty() {
        json.insert("args".into(), args.iter().map(arg_json).collect());
        let mut rows = vec![vec![
            "BUILD ARG".to_string(),
            "VALUE".into(),
            "DESCRIPTION".into(),
        ]];
        rows.extend(args.iter().map(|a| {
            let value = a.value.clone().unwrap_or_default();
            vec![
                a.name.clone(),
                value,
                a.description.clone().unwrap_or_default(),
            ]
        }));
        out.push_str(&tabulate(&rows, 3));
        out.push('\n');
    }
    for (key, heading, mounts) in [("secrets", "SECRET", secrets), ("ssh", "SSH", ssh)] {
        if mounts.is_empty() {
            continue;
        }
        json.insert(key.into(), mounts.iter().map(mount_json).collect());
        let mut rows = vec![vec![heading.to_string(), "REQUIRED".into()]];
        rows.extend(mounts.iter().map(|(id, m)| {
            let required = if m.required { "true" } else { "" };
            vec![id.clone(), required.to_string()]
        }));
        out.push_str(&tabulate(&rows, 3));
        out.push('\n');
    }
    json.insert("sources".into(), json!([base64(text.as_bytes())]));
    answer(Value::Object(json), out)
}

fn arg_json(arg: &ArgInfo) -> Value {
    let mut value = serde_json::Map::new();
    value.insert("name".into(), json!(arg.name));
    if let Some(description) = &arg.description {
        value.insert("description".into(), json!(description));
    }
    if let Some(v) = arg.value.as_ref().filter(|v| !v.is_empty()) {
        value.insert("value".into(), json!(v));
    }
    value.insert("location".into(), location(arg.lines.0, arg.lines.1));
    Value::Object(value)
}

fn mount_json((id, mount): &(String, Mounted)) -> Value {
    let mut value = serde_json::Map::new();
    value.insert("name".into(), json!(id));
    if mount.required {
        value.insert("required".into(), json!(true));
    }
    value.insert("location".into(), location(mount.lines.0, mount.lines.1));
    Value::Object(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = "ARG GO_VERSION=1.22
# VARIANT which base image to use
ARG VARIANT=alpine
ARG UNUSED=1
FROM golang:${GO_VERSION}-${VARIANT} AS build
# TAGS build tags
ARG TAGS=netgo
RUN --mount=type=secret,id=token,required=true --mount=type=ssh go build -tags \"$TAGS\"

# release ships the binary
FROM scratch AS release
ARG VERSION
COPY --from=build /out /
";

    fn options(target: &str, args: &[(&str, &str)]) -> Options {
        Options {
            target: target.into(),
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn json_and_text(target: &str, args: &[(&str, &str)]) -> (Value, String) {
        let dockerfile = nodekit_dockerfile::parse(DOCKERFILE).unwrap();
        let result = outline(&dockerfile, DOCKERFILE, &options(target, args)).unwrap();
        let json = serde_json::from_slice(&result.metadata["result.json"]).unwrap();
        let text = String::from_utf8(result.metadata["result.txt"].clone()).unwrap();
        (json, text)
    }

    fn arg_names(json: &Value) -> Vec<&str> {
        let args = json["args"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        args.iter().filter_map(|a| a["name"].as_str()).collect()
    }

    #[test]
    fn the_target_s_args_secrets_and_ssh_over_the_stages_it_uses() {
        let (json, text) = json_and_text("", &[("VARIANT", "bookworm")]);
        assert_eq!(json["name"], "release");
        assert_eq!(json["description"], "ships the binary");
        assert_eq!(
            arg_names(&json),
            ["GO_VERSION", "VARIANT", "TAGS", "VERSION"]
        );
        assert_eq!(json["args"][1]["value"], "bookworm");
        assert_eq!(json["args"][1]["description"], "which base image to use");
        assert_eq!(json["args"][2]["location"]["ranges"][0]["start"]["line"], 7);
        assert!(json["args"][3].get("value").is_none());
        assert_eq!(json["secrets"][0]["name"], "token");
        assert_eq!(json["secrets"][0]["required"], true);
        assert_eq!(json["ssh"][0]["name"], "default");
        assert!(json["ssh"][0].get("required").is_none());
        assert_eq!(
            text,
            "TARGET:      release\nDESCRIPTION: ships the binary\n\n\
             BUILD ARG    VALUE      DESCRIPTION\n\
             GO_VERSION   1.22       \n\
             VARIANT      bookworm   which base image to use\n\
             TAGS         netgo      build tags\n\
             VERSION                 \n\n\
             SECRET   REQUIRED\ntoken    true\n\n\
             SSH       REQUIRED\ndefault   \n\n"
        );
    }

    #[test]
    fn a_target_stage_alone_does_not_show_what_later_stages_use() {
        let (json, _) = json_and_text("build", &[]);
        assert_eq!(json["name"], "build");
        assert_eq!(arg_names(&json), ["GO_VERSION", "VARIANT", "TAGS"]);
    }

    #[test]
    fn an_unknown_target_is_refused() {
        let dockerfile = nodekit_dockerfile::parse(DOCKERFILE).unwrap();
        let error = outline(&dockerfile, DOCKERFILE, &options("nosuch", &[])).unwrap_err();
        assert!(error.to_string().contains("nosuch"), "{error}");
    }
}
