//! Which checks run and whether they fail the build (upstream
//! `linter.ParseLintOptions` and `dockerui` `BUILDKIT_DOCKERFILE_CHECK`).

use std::collections::BTreeSet;

use super::rules::rule_by_name;
use crate::instructions::go_parse_bool;
use crate::quote::go_quote;

/// Build-check settings from `# check=…` or the
/// `build-arg:BUILDKIT_DOCKERFILE_CHECK` frontend option.
///
/// Syntax: up to three `;`-separated `key=value` options:
/// `skip=Rule1,Rule2` (or `skip=all`), `experimental=Rule3` (or
/// `experimental=all`) and `error=<bool>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintConfig {
    /// `skip=all`: no non-experimental rule runs.
    pub skip_all: bool,
    /// Rules listed in `skip=`.
    pub skip: BTreeSet<String>,
    /// `experimental=all`: every experimental rule runs.
    pub experimental_all: bool,
    /// Experimental rules listed in `experimental=`.
    pub experimental: BTreeSet<String>,
    /// `error=true`: the build fails when any enabled rule reported
    /// (see [`crate::lint_error`]).
    pub error: bool,
}

/// The frontend option that overrides the `# check=` directive.
pub const CHECK_BUILD_ARG: &str = "build-arg:BUILDKIT_DOCKERFILE_CHECK";

impl LintConfig {
    /// Parses a check specification, e.g.
    /// `skip=StageNameCasing,FromAsCasing;error=true`.
    ///
    /// Errors carry upstream's text: `invalid check option "x"` for an
    /// option without `=` or with an unknown key, and
    /// `failed to parse check option "error=x": strconv.ParseBool: …`.
    /// As upstream, the text is split into at most three options, so a
    /// fourth `;` stays inside the third option's value.
    pub fn parse(spec: &str) -> Result<LintConfig, String> {
        let mut config = LintConfig::default();
        let spec = spec.trim();
        if spec.is_empty() {
            return Ok(config);
        }
        for option in spec.splitn(3, ';') {
            config.apply_option(option)?;
        }
        Ok(config)
    }

    /// The configuration in effect for a build: the frontend option
    /// `build-arg:BUILDKIT_DOCKERFILE_CHECK` when it is given (even empty;
    /// the directive is then not read at all), else the `# check=`
    /// directive, else the default.
    ///
    /// Errors are worded as upstream reports them:
    /// `failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: …` and
    /// `failed to parse check options: …`.
    pub fn from_sources(
        directive: Option<&str>,
        build_arg: Option<&str>,
    ) -> Result<LintConfig, String> {
        if let Some(arg) = build_arg {
            return LintConfig::parse(arg)
                .map_err(|e| format!("failed to parse {CHECK_BUILD_ARG}: {e}"));
        }
        LintConfig::parse(directive.unwrap_or(""))
            .map_err(|e| format!("failed to parse check options: {e}"))
    }

    /// Whether the rule called `rule` runs: experimental rules only when
    /// enabled by `experimental=` (`skip` does not apply to them), other
    /// rules unless skipped. Unknown names count as non-experimental.
    pub fn is_enabled(&self, rule: &str) -> bool {
        let experimental = rule_by_name(rule).is_some_and(|r| r.experimental);
        if experimental {
            self.experimental_all || self.experimental.contains(rule)
        } else {
            !(self.skip_all || self.skip.contains(rule))
        }
    }

    fn apply_option(&mut self, option: &str) -> Result<(), String> {
        let Some((key, value)) = option.split_once('=') else {
            return Err(format!("invalid check option {}", go_quote(option)));
        };
        match key.trim() {
            "skip" => apply_rule_list(value, &mut self.skip_all, &mut self.skip),
            "experimental" => {
                apply_rule_list(value, &mut self.experimental_all, &mut self.experimental)
            }
            "error" => self.error = parse_bool_option(option, value)?,
            other => return Err(format!("invalid check option {}", go_quote(other))),
        }
        Ok(())
    }
}

/// `all` sets the flag; a comma-separated list of rule names (each
/// trimmed) replaces the list. As upstream, a repeated key never clears
/// an earlier `all`.
fn apply_rule_list(value: &str, all: &mut bool, names: &mut BTreeSet<String>) {
    let value = value.trim();
    if value == "all" {
        *all = true;
    } else {
        *names = value.split(',').map(|r| r.trim().to_string()).collect();
    }
}

fn parse_bool_option(option: &str, value: &str) -> Result<bool, String> {
    let value = value.trim();
    go_parse_bool(value).ok_or_else(|| {
        format!(
            "failed to parse check option {}: strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(option),
            go_quote(value)
        )
    })
}
