//! `RUN --mount` specifications. Upstream validates almost nothing at
//! parse time (only the CSV syntax and that `from` has no variable) and
//! parses the mount after expanding each value with the stage environment;
//! [`MountSpec::resolve`] does that second step.

use super::csv;
use super::mount_fields::apply_field;
use crate::error::ExpandError;

/// Mount type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MountType {
    /// `bind` (default): a read-only view of a stage, image or context.
    #[default]
    Bind,
    /// `cache`: persistent cache directory.
    Cache,
    /// `tmpfs`.
    Tmpfs,
    /// `secret`: a build secret file (or env variable).
    Secret,
    /// `ssh`: an SSH agent socket.
    Ssh,
}

/// Cache sharing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareMode {
    /// `shared`.
    Shared,
    /// `private`.
    Private,
    /// `locked`.
    Locked,
}

/// A resolved `--mount`. Empty string values are normalised to `None`
/// (upstream treats `""` as unset), except `env`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    /// `type=`.
    pub mount_type: MountType,
    /// `from=` stage name/index or image.
    pub from: Option<String>,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    /// `readonly`/`ro`/`readwrite`/`rw`; defaults to read-only except for
    /// cache and tmpfs.
    pub read_only: bool,
    /// `size=` in bytes (tmpfs only); upstream treats 0 as no limit.
    pub size_limit: Option<i64>,
    /// `id=` (cache id or secret/ssh id).
    pub cache_id: Option<String>,
    /// `sharing=` (cache only).
    pub sharing: Option<ShareMode>,
    /// `required` (secret and ssh only).
    pub required: bool,
    /// `env=` for secrets; `Some("")` means "use the default name".
    pub env: Option<String>,
    /// `mode=` (octal; secret, ssh, cache).
    pub mode: Option<u32>,
    /// `uid=` (secret, ssh, cache).
    pub uid: Option<u32>,
    /// `gid=` (secret, ssh, cache).
    pub gid: Option<u32>,
}

/// A raw `--mount` value as written in the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The flag value (after flag-level quote removal).
    pub raw: String,
}

impl MountType {
    /// The name used in the Dockerfile.
    pub fn as_str(&self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

impl MountSpec {
    /// Parses and validates the mount, passing every `key=value` value
    /// through `expand` first (upstream expands them with
    /// `Lexer::process_word` in the stage environment).
    pub fn resolve<F>(&self, mut expand: F) -> Result<Mount, ExpandError>
    where
        F: FnMut(&str) -> Result<String, ExpandError>,
    {
        let fields =
            csv::fields(&self.raw).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
        let mut m = Mount::default();
        let mut ro_auto = true;
        for field in &fields {
            apply_field(&mut m, &mut ro_auto, field, &mut expand)?;
        }
        finish(m, ro_auto).map_err(ExpandError::from)
    }

    /// The unexpanded `from=` value, as upstream knows it at parse time
    /// (for finding stage/image dependencies before the stage environment
    /// exists; `from` never contains a variable).
    pub fn from_value(&self) -> Option<String> {
        let fields = csv::fields(&self.raw).ok()?;
        fields
            .iter()
            .filter_map(|f| f.split_once('='))
            .filter(|(k, _)| k.eq_ignore_ascii_case("from"))
            .map(|(_, v)| v.to_string())
            .next_back()
            .filter(|v| !v.is_empty())
    }

    /// [`MountSpec::resolve`] without variable expansion.
    pub fn resolve_literal(&self) -> Result<Mount, ExpandError> {
        self.resolve(|v| Ok(v.to_string()))
    }
}

/// Cross-field checks and the read-only default.
fn finish(mut m: Mount, ro_auto: bool) -> Result<Mount, String> {
    let t = m.mount_type;
    let quoted = crate::quote::go_quote(t.as_str());
    if !matches!(t, MountType::Secret | MountType::Ssh | MountType::Cache) {
        for (set, what) in [
            (m.mode.is_some(), "mode"),
            (m.uid.is_some(), "uid"),
            (m.gid.is_some(), "gid"),
        ] {
            if set {
                return Err(format!("{what} not allowed for {quoted} type mounts"));
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(t, MountType::Cache | MountType::Tmpfs);
    }
    if t == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.cache_id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.cache_id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && t != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            t.as_str()
        ));
    }
    Ok(m)
}

/// Parse-time validation of a raw `--mount` value (upstream parses it once
/// without an expander): CSV syntax, and no variable in `from`.
pub(crate) fn check_unexpanded(raw: &str) -> Result<(), String> {
    let fields = csv::fields(raw).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        if key.eq_ignore_ascii_case("from") {
            if let Some(i) = value.find('$') {
                if i != value.len() - 1 {
                    return Err(
                        "'from' doesn't support variable expansion, define alias stage instead"
                            .into(),
                    );
                }
            }
        }
    }
    Ok(())
}
