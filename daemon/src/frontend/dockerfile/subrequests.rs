//! Frontend subrequests (`requestid`): answers about the Dockerfile instead of a build, as
//! upstream's Dockerfile frontend gives them to `docker buildx build --call …` (and `--check`,
//! `--print`). Each answer is a result without refs whose metadata holds `result.json`,
//! `result.txt` (what buildx prints), `version` and, for the linter, `result.statuscode`.

use base64::Engine;
use nodekit_dockerfile::{Dockerfile, LintWarning};
use serde::Serialize;
use serde_json::{json, Value};

use crate::gateway::ReturnedResult;
use crate::solver::SolveError;

/// The subrequests nodekitd's Dockerfile frontend answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subrequest {
    /// `frontend.subrequests.describe`: the subrequests there are.
    Describe,
    /// `frontend.targets` (`--call targets`): the stages.
    Targets,
    /// `frontend.outline` (`--call outline`): what the target can be given.
    Outline,
    /// `frontend.lint` (`--call check`, `--check`): the build checks, without building.
    Lint,
}

const VERSION: &str = "1.0.0";

impl Subrequest {
    /// The subrequest `requestid` names; one upstream has and nodekitd not is refused by name,
    /// an unknown one with upstream's words.
    pub fn parse(id: &str) -> Result<Subrequest, SolveError> {
        match id {
            "frontend.subrequests.describe" => Ok(Subrequest::Describe),
            "frontend.targets" => Ok(Subrequest::Targets),
            "frontend.lint" => Ok(Subrequest::Lint),
            "frontend.outline" => Ok(Subrequest::Outline),
            _ => Err(SolveError::Unsupported(format!(
                "unsupported request {id} (frontend option requestid)"
            ))),
        }
    }
}

/// What a subrequest answers with.
pub(super) fn answer(json: Value, text: String) -> ReturnedResult {
    let mut result = ReturnedResult::default();
    let json = serde_json::to_vec_pretty(&json).unwrap_or_default();
    result.metadata.insert("result.json".into(), json);
    result
        .metadata
        .insert("result.txt".into(), text.into_bytes());
    result
        .metadata
        .insert("version".into(), VERSION.as_bytes().to_vec());
    result
}

/// The subrequests this frontend answers, as upstream describes them.
pub fn describe() -> ReturnedResult {
    let metadata = json!([{"name": "result.json", "description": ""}, {"name": "result.txt", "description": ""}]);
    let request = |name: &str, description: &str, opts: Value| {
        json!({
            "name": name, "version": VERSION, "type": "rpc", "description": description,
            "opts": opts, "inputs": null, "metadata": metadata, "refs": null,
        })
    };
    let all = vec![
        request(
            "frontend.outline",
            "List all parameters current build target supports",
            json!([{"name": "target", "description": "Target build stage"}]),
        ),
        request(
            "frontend.targets",
            "List all targets current build supports",
            json!([]),
        ),
        request(
            "frontend.subrequests.describe",
            "List available subrequest types",
            Value::Null,
        ),
    ];
    let mut rows = vec![vec![
        "NAME".to_string(),
        "VERSION".into(),
        "DESCRIPTION".into(),
    ]];
    for request in &all {
        let field = |key: &str| request[key].as_str().unwrap_or_default().to_string();
        let name = field("name").trim_start_matches("frontend.").to_string();
        rows.push(vec![name, VERSION.into(), field("description")]);
    }
    answer(Value::Array(all), tabulate(&rows, 1))
}

/// A Dockerfile position as BuildKit's `pb.Location` marshals to JSON (empty fields left out).
pub(super) fn location(start: usize, end: usize) -> Value {
    let position = |line: usize| {
        if line == 0 {
            json!({})
        } else {
            json!({"line": line})
        }
    };
    json!({"ranges": [{"start": position(start), "end": position(end)}]})
}

/// The text after `name ` in the comments above an instruction (upstream's description).
pub(super) fn described(comments: &[String], name: Option<&str>) -> Option<String> {
    let prefix = format!("{} ", name.filter(|n| !n.is_empty())?);
    comments
        .iter()
        .find_map(|c| c.strip_prefix(&prefix).map(str::to_string))
}

pub(super) fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `frontend.targets`: every stage, the last one the default.
pub fn targets(dockerfile: &Dockerfile, text: &str) -> ReturnedResult {
    let last = dockerfile.stages.len().saturating_sub(1);
    let targets: Vec<Value> = dockerfile
        .stages
        .iter()
        .enumerate()
        .map(|(index, stage)| {
            let mut target = serde_json::Map::new();
            let from = &stage.from;
            let mut put = |key: &str, value: Value| {
                target.insert(key.to_string(), value);
            };
            if let Some(name) = &stage.name {
                put("name", json!(name));
            }
            if index == last {
                put("default", json!(true));
            }
            if let Some(description) = described(&from.comments, stage.name.as_deref()) {
                put("description", json!(description));
            }
            put("base", json!(from.image));
            if let Some(platform) = &stage.platform {
                put("platform", json!(platform));
            }
            put("location", location(from.start_line, from.end_line));
            Value::Object(target)
        })
        .collect();
    let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".to_string()]];
    for target in &targets {
        let name = target["name"].as_str().unwrap_or_default();
        let name = match (name, target.get("default").is_some()) {
            ("", true) => "(default)".to_string(),
            (name, true) => format!("{name} (default)"),
            (name, false) => name.to_string(),
        };
        let description = target["description"].as_str().unwrap_or_default();
        rows.push(vec![name, description.to_string()]);
    }
    let json = json!({"targets": targets, "sources": [base64(text.as_bytes())]});
    answer(json, tabulate(&rows, 1))
}

/// The Dockerfile a lint answer's warnings point into (BuildKit's `pb.SourceInfo` as JSON).
pub struct LintSource<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

#[derive(Serialize)]
struct LintAnswer {
    warnings: Vec<Value>,
    sources: Vec<Value>,
    #[serde(rename = "buildError", skip_serializing_if = "Option::is_none")]
    build_error: Option<Value>,
}

/// `frontend.lint`: the build checks' warnings and, when the Dockerfile does not convert,
/// the error; status 1 when there is either.
pub fn lint(
    source: &LintSource<'_>,
    warnings: &[LintWarning],
    error: Option<String>,
) -> ReturnedResult {
    let mut warnings: Vec<&LintWarning> = warnings.iter().collect();
    warnings.sort_by_key(|w| w.start_line);
    let answer_json = LintAnswer {
        warnings: warnings.iter().map(|w| lint_warning(w)).collect(),
        sources: vec![json!({
            "filename": source.file,
            "language": "Dockerfile",
            "data": base64(source.text.as_bytes()),
        })],
        build_error: error
            .as_ref()
            .map(|message| json!({"message": message, "location": {}})),
    };
    let mut text = String::new();
    for warning in &warnings {
        text.push_str(&format!("\nWARNING: {}", warning.rule));
        if !warning.url.is_empty() {
            text.push_str(&format!(" - {}", warning.url));
        }
        text.push_str(&format!("\n{}\n", warning.message));
        text.push_str(&snippet(source, warning.start_line, warning.end_line));
    }
    let status = u8::from(!warnings.is_empty() || error.is_some());
    let json = serde_json::to_value(&answer_json).unwrap_or_default();
    let mut result = answer(json, text);
    result
        .metadata
        .insert("result.statuscode".into(), status.to_string().into_bytes());
    result
}

fn lint_warning(warning: &LintWarning) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("ruleName".into(), json!(warning.rule));
    if !warning.description.is_empty() {
        object.insert("description".into(), json!(warning.description));
    }
    if !warning.url.is_empty() {
        object.insert("url".into(), json!(warning.url));
    }
    object.insert("detail".into(), json!(warning.message));
    object.insert(
        "location".into(),
        location(warning.start_line, warning.end_line),
    );
    Value::Object(object)
}

/// Lines `start..=end` of the Dockerfile with some around them, as BuildKit prints a source
/// range (`errdefs.Source.Print`).
pub fn snippet(source: &LintSource<'_>, start: usize, end: usize) -> String {
    let lines: Vec<&str> = source.text.split('\n').collect();
    let end = end.max(start);
    if start < 1 || start > lines.len() {
        return String::new();
    }
    let (marked_start, marked_end) = (start, end.min(lines.len()));
    let (mut first, mut last) = (marked_start, marked_end);
    let pad = if first == last { 4 } else { 2 };
    let mut padded = 0;
    while padded < pad {
        if first > 1 {
            first -= 1;
            padded += 1;
        }
        if last != lines.len() {
            last += 1;
            padded += 1;
        }
        padded += 1;
    }
    let mut out = format!("{}:{}\n--------------------\n", source.file, start);
    for line in first..=last {
        let marker = if (marked_start..=marked_end).contains(&line) {
            ">>>"
        } else {
            "   "
        };
        out.push_str(&format!(" {line:>3} | {marker} {}\n", lines[line - 1]));
    }
    out.push_str("--------------------\n");
    out
}

/// Rows as Go's tabwriter aligns them (`padding` spaces after the widest cell of each column
/// but the last).
pub(super) fn tabulate(rows: &[Vec<String>], padding: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns.saturating_sub(1))
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            match widths.get(c) {
                Some(width) if c + 1 < row.len() => {
                    out.push_str(&format!("{cell:<width$}", width = width + padding));
                }
                _ => out.push_str(cell),
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = "# syntax=docker/dockerfile:1\n\n# build compiles the app\nFROM busybox AS build\nRUN true\n\nFROM --platform=linux/arm64 busybox\nCOPY --from=build / /\n";

    fn metadata(result: &ReturnedResult, key: &str) -> String {
        String::from_utf8(result.metadata[key].clone()).unwrap()
    }

    #[test]
    fn targets_list_every_stage_with_its_description_and_the_default() {
        let dockerfile = nodekit_dockerfile::parse(DOCKERFILE).unwrap();
        let result = targets(&dockerfile, DOCKERFILE);
        assert!(result.refs.is_empty());
        let json: Value = serde_json::from_str(&metadata(&result, "result.json")).unwrap();
        let targets = json["targets"].as_array().unwrap();
        assert_eq!(targets[0]["name"], "build");
        assert_eq!(targets[0]["description"], "compiles the app");
        assert_eq!(targets[0]["base"], "busybox");
        assert_eq!(targets[0]["location"]["ranges"][0]["start"]["line"], 4);
        assert!(targets[0].get("default").is_none());
        assert_eq!(targets[1]["default"], true);
        assert_eq!(targets[1]["platform"], "linux/arm64");
        assert_eq!(
            metadata(&result, "result.txt"),
            "TARGET    DESCRIPTION\nbuild     compiles the app\n(default) \n"
        );
        assert_eq!(metadata(&result, "version"), "1.0.0");
    }

    #[test]
    fn a_lint_answer_carries_warnings_sources_and_a_status() {
        let warning = LintWarning {
            rule: "StageNameCasing",
            description: "Stage names should be lowercase",
            url: "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/".into(),
            message: "Stage name 'Build' should be lowercase".into(),
            start_line: 4,
            end_line: 4,
        };
        let source = LintSource {
            file: "Dockerfile",
            text: DOCKERFILE,
        };
        let result = lint(&source, &[warning], None);
        assert_eq!(metadata(&result, "result.statuscode"), "1");
        let json: Value = serde_json::from_str(&metadata(&result, "result.json")).unwrap();
        assert_eq!(json["warnings"][0]["ruleName"], "StageNameCasing");
        assert_eq!(
            json["warnings"][0]["detail"],
            "Stage name 'Build' should be lowercase"
        );
        assert_eq!(json["sources"][0]["filename"], "Dockerfile");
        assert!(json.get("buildError").is_none());
        let text = metadata(&result, "result.txt");
        assert!(text.starts_with("\nWARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\nStage name 'Build' should be lowercase\nDockerfile:4\n--------------------\n"), "{text}");
        assert!(
            text.contains("   4 | >>> FROM busybox AS build\n"),
            "{text}"
        );
        let clean = lint(&source, &[], None);
        assert_eq!(metadata(&clean, "result.statuscode"), "0");
        let failed = lint(&source, &[], Some("no such stage".into()));
        assert_eq!(metadata(&failed, "result.statuscode"), "1");
    }

    #[test]
    fn a_snippet_pads_a_single_line_as_buildkit() {
        let source = LintSource {
            file: "Dockerfile",
            text: "A\nB\nC\nD\nE\nF\nG\nH\nI",
        };
        let text = snippet(&source, 5, 5);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Dockerfile:5");
        assert_eq!(lines[2], "   3 |     C");
        assert_eq!(lines[4], "   5 | >>> E");
        assert_eq!(lines[6], "   7 |     G");
        assert_eq!(lines.len(), 8);
    }

    #[test]
    fn unknown_subrequests_are_refused_by_name() {
        assert_eq!(
            Subrequest::parse("frontend.lint").unwrap(),
            Subrequest::Lint
        );
        assert_eq!(
            Subrequest::parse("frontend.outline").unwrap(),
            Subrequest::Outline
        );
        let other = Subrequest::parse("frontend.other").unwrap_err().to_string();
        assert!(
            other.contains("unsupported request frontend.other"),
            "{other}"
        );
    }
}
