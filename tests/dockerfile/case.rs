//! One conformance case: a directory under `cases/` with a Dockerfile, optional context files
//! and a `case.toml` saying how to build it and what to expect (format: `cases/README.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

/// A case as found on disk.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub spec: CaseFile,
}

impl Case {
    /// The image the case's build is exported as.
    pub fn image(&self) -> String {
        format!("nodekit.test/dfconf/{}:1", self.name)
    }

    /// Whether the case checks anything in the exported image's config.
    pub fn checks_config(&self) -> bool {
        let s = &self.spec;
        !s.config.is_empty()
            || !s.config_contains.is_empty()
            || !s.config_absent.paths.is_empty()
            || !s.config_len.is_empty()
            || !s.history.tail.is_empty()
            || !s.history.tail_empty_layer.is_empty()
            || s.history.len.is_some()
    }
}

/// `case.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseFile {
    /// One line on what the case shows (for the report).
    pub description: String,
    /// A reason to skip the case; it is reported, never silently dropped.
    pub skip: Option<String>,
    pub build: Build,
    pub setup: Setup,
    pub http: Http,
    /// Builds run (in order, same context) before the case's own build, e.g. a base image.
    pub prebuild: Vec<Prebuild>,
    /// Containers run from the result (with ctr, as the kubelet would).
    pub run: Vec<Run>,
    /// JSON pointer into the image config => expected JSON value (exact).
    pub config: BTreeMap<String, serde_json::Value>,
    /// JSON pointer => expected part: array elements present, object entries equal, substring.
    pub config_contains: BTreeMap<String, serde_json::Value>,
    pub config_absent: Absent,
    /// JSON pointer => length of the array or object there.
    pub config_len: BTreeMap<String, usize>,
    pub history: History,
    pub logs: Logs,
    /// The build's warnings (`Rule: message (line N)`), as the logs.
    pub warnings: Logs,
    /// The build must fail, with this error.
    pub error: Option<ExpectError>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Build {
    /// The Dockerfile's name in the case directory; sent as `filename` unless "Dockerfile".
    pub dockerfile: String,
    /// The build context: this subdirectory of the case (an empty one when absent), plus `[setup]`.
    pub context: String,
    /// Frontend options (`target`, `build-arg:X`, `label:X`, `platform`, `no-cache`, ...).
    pub opts: BTreeMap<String, String>,
    /// Secrets served by the client session, by id.
    pub secrets: BTreeMap<String, String>,
    /// Extra local directories served by the session: name => case subdirectory.
    pub locals: BTreeMap<String, String>,
    /// "crlf": the Dockerfile is sent with CRLF line endings.
    pub line_endings: Option<String>,
    /// The Dockerfile is sent with a UTF-8 byte order mark.
    pub bom: bool,
    /// Entitlements the client asks for (`network.host`, `security.insecure`); the harness's
    /// daemon allows both.
    pub allow: Vec<String>,
    pub timeout_secs: u64,
}

impl Default for Build {
    fn default() -> Build {
        Build {
            dockerfile: "Dockerfile".into(),
            context: "context".into(),
            opts: BTreeMap::new(),
            secrets: BTreeMap::new(),
            locals: BTreeMap::new(),
            line_endings: None,
            bom: false,
            allow: Vec::new(),
            timeout_secs: 300,
        }
    }
}

/// Context content created at run time (what git cannot hold or is clearer inline).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Setup {
    /// path => content (mode 0644, parents created).
    pub files: BTreeMap<String, String>,
    /// Empty directories (0755).
    pub dirs: Vec<String>,
    /// link path => target.
    pub symlinks: BTreeMap<String, String>,
    /// path => octal mode ("0700"), applied last.
    pub modes: BTreeMap<String, String>,
    /// Tar archives.
    pub tar: Vec<TarSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TarSpec {
    pub path: String,
    pub gzip: bool,
    /// member path => content (0644, owned 0:0).
    pub files: BTreeMap<String, String>,
    /// member directories (0755).
    pub dirs: Vec<String>,
}

/// A loopback HTTP server serving the staged context, as `{{HTTP}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    pub serve: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prebuild {
    pub dockerfile: String,
    pub image: String,
    pub opts: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Run {
    /// The command; empty runs the image's own entrypoint and cmd.
    pub cmd: Vec<String>,
    /// Exact stdout.
    pub stdout: Option<String>,
    /// Substrings stdout must contain.
    #[serde(deserialize_with = "one_or_many")]
    pub contains: Vec<String>,
    /// Expected exit status.
    pub exit: i32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Absent {
    /// JSON pointers that must not resolve (or resolve to null).
    pub paths: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct History {
    /// The last `created_by` entries, oldest first.
    pub tail: Vec<String>,
    /// The last `empty_layer` flags (absent = false), oldest first.
    pub tail_empty_layer: Vec<bool>,
    /// The number of history entries.
    pub len: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Logs {
    /// Substrings the steps' output must contain.
    #[serde(deserialize_with = "one_or_many")]
    pub contains: Vec<String>,
    /// Substrings it must not contain.
    #[serde(deserialize_with = "one_or_many")]
    pub not_contains: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpectError {
    /// The error names `<file>:<line>:` (the issue's `Dockerfile:LINE: message` form).
    pub line: Option<u32>,
    /// The file in that prefix; defaults to the build's Dockerfile name.
    pub file: Option<String>,
    /// Substrings of the error (upstream BuildKit's wording).
    #[serde(deserialize_with = "one_or_many")]
    pub contains: Vec<String>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Every case under `root`, sorted by name; a directory without a valid `case.toml` is an error.
pub fn discover(root: &Path) -> Result<Vec<Case>, Vec<String>> {
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(root) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect(),
        Err(e) => return Err(vec![format!("{}: {e}", root.display())]),
    };
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        match load(&name, &dir) {
            Ok(case) => cases.push(case),
            Err(e) => problems.push(format!("case {name}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}

fn load(name: &str, dir: &Path) -> Result<Case, String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err("case names are lowercase letters, digits and '-'".into());
    }
    let file = dir.join("case.toml");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let spec: CaseFile = toml::from_str(&text).map_err(|e| format!("case.toml: {e}"))?;
    let dockerfile = dir.join(&spec.build.dockerfile);
    let lowercase = dir.join("dockerfile");
    let found =
        dockerfile.is_file() || (spec.build.dockerfile == "Dockerfile" && lowercase.is_file());
    if !found {
        return Err(format!("no {}", spec.build.dockerfile));
    }
    if spec.error.is_some() && (!spec.run.is_empty() || !spec.config.is_empty()) {
        return Err("a case that must fail has no image to run or inspect".into());
    }
    for p in &spec.prebuild {
        if p.image.is_empty() || !dir.join(&p.dockerfile).is_file() {
            return Err(format!("prebuild {:?} needs a dockerfile and an image", p));
        }
    }
    Ok(Case {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        spec,
    })
}
