//! The rule set (upstream `frontend/dockerfile/linter/ruleset.go`): names,
//! descriptions, documentation URLs and the message of each rule.

use crate::quote::go_quote;

use super::LintWarning;

/// One build check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Rule name as used in `# check=skip=…` (`StageNameCasing`).
    pub name: &'static str,
    /// One-line description (upstream shows it as the warning detail).
    pub description: &'static str,
    /// Documentation page; empty for `InvalidBaseImagePlatform`, which
    /// has none upstream.
    pub url: &'static str,
    /// Only runs when enabled with `experimental=`.
    pub experimental: bool,
}

impl Rule {
    /// A warning of this rule with `message`, located at the given 1-based
    /// lines.
    pub fn warning(&self, message: String, start_line: usize, end_line: usize) -> LintWarning {
        LintWarning {
            rule: self.name,
            description: self.description,
            url: self.url.to_string(),
            message,
            start_line,
            end_line,
        }
    }
}

const fn rule(name: &'static str, description: &'static str, url: &'static str) -> Rule {
    Rule {
        name,
        description,
        url,
        experimental: false,
    }
}

const fn experimental(rule: Rule) -> Rule {
    Rule {
        experimental: true,
        ..rule
    }
}

/// Stage names should be lowercase.
pub const STAGE_NAME_CASING: Rule = rule(
    "StageNameCasing",
    "Stage names should be lowercase",
    "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/",
);
/// `AS` should match the case of `FROM`.
pub const FROM_AS_CASING: Rule = rule(
    "FromAsCasing",
    "The 'as' keyword should match the case of the 'from' keyword",
    "https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
);
/// Empty lines inside a continued instruction.
pub const NO_EMPTY_CONTINUATION: Rule = rule(
    "NoEmptyContinuation",
    "Empty continuation lines will become errors in a future release",
    "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/",
);
/// Instruction keywords should all be upper or all lower case.
pub const CONSISTENT_INSTRUCTION_CASING: Rule = rule(
    "ConsistentInstructionCasing",
    "All commands within the Dockerfile should use the same casing (either upper or lower)",
    "https://docs.docker.com/go/dockerfile/rule/consistent-instruction-casing/",
);
/// Two stages with the same name.
pub const DUPLICATE_STAGE_NAME: Rule = rule(
    "DuplicateStageName",
    "Stage names should be unique",
    "https://docs.docker.com/go/dockerfile/rule/duplicate-stage-name/",
);
/// A stage named `scratch` or `context`.
pub const RESERVED_STAGE_NAME: Rule = rule(
    "ReservedStageName",
    "Reserved words should not be used as stage names",
    "https://docs.docker.com/go/dockerfile/rule/reserved-stage-name/",
);
/// Shell-form CMD/ENTRYPOINT without a custom SHELL.
pub const JSON_ARGS_RECOMMENDED: Rule = rule(
    "JSONArgsRecommended",
    "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
    "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/",
);
/// `MAINTAINER`.
pub const MAINTAINER_DEPRECATED: Rule = rule(
    "MaintainerDeprecated",
    "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
    "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/",
);
/// A variable in FROM that no global ARG declares.
pub const UNDEFINED_ARG_IN_FROM: Rule = rule(
    "UndefinedArgInFrom",
    "FROM command must use declared ARGs",
    "https://docs.docker.com/go/dockerfile/rule/undefined-arg-in-from/",
);
/// First WORKDIR of a build is relative.
pub const WORKDIR_RELATIVE_PATH: Rule = rule(
    "WorkdirRelativePath",
    "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
    "https://docs.docker.com/go/dockerfile/rule/workdir-relative-path/",
);
/// A variable that is not set where it is expanded.
pub const UNDEFINED_VAR: Rule = rule(
    "UndefinedVar",
    "Variables should be defined before their use",
    "https://docs.docker.com/go/dockerfile/rule/undefined-var/",
);
/// CMD, ENTRYPOINT or HEALTHCHECK more than once in a stage.
pub const MULTIPLE_INSTRUCTIONS_DISALLOWED: Rule = rule(
    "MultipleInstructionsDisallowed",
    "Multiple instructions of the same type should not be used in the same stage",
    "https://docs.docker.com/go/dockerfile/rule/multiple-instructions-disallowed/",
);
/// `ENV key value` / `LABEL key value`.
pub const LEGACY_KEY_VALUE_FORMAT: Rule = rule(
    "LegacyKeyValueFormat",
    "Legacy key/value format with whitespace separator should not be used",
    "https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/",
);
/// The pulled base image has another platform than requested.
pub const INVALID_BASE_IMAGE_PLATFORM: Rule = rule(
    "InvalidBaseImagePlatform",
    "Base image platform does not match expected target platform",
    "",
);
/// `FROM --platform=$TARGETPLATFORM`.
pub const REDUNDANT_TARGET_PLATFORM: Rule = rule(
    "RedundantTargetPlatform",
    "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
    "https://docs.docker.com/go/dockerfile/rule/redundant-target-platform/",
);
/// ARG/ENV names that look like secrets.
pub const SECRETS_USED_IN_ARG_OR_ENV: Rule = rule(
    "SecretsUsedInArgOrEnv",
    "Sensitive data should not be used in the ARG or ENV commands",
    "https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/",
);
/// The FROM image is invalid with the global ARG defaults.
pub const INVALID_DEFAULT_ARG_IN_FROM: Rule = rule(
    "InvalidDefaultArgInFrom",
    "Default value for global ARG results in an empty or invalid base image name",
    "https://docs.docker.com/go/dockerfile/rule/invalid-default-arg-in-from/",
);
/// `FROM --platform=linux/amd64` (a constant).
pub const FROM_PLATFORM_FLAG_CONST_DISALLOWED: Rule = rule(
    "FromPlatformFlagConstDisallowed",
    "FROM --platform flag should not use a constant value",
    "https://docs.docker.com/go/dockerfile/rule/from-platform-flag-const-disallowed/",
);
/// COPY/ADD of a path excluded by `.dockerignore` (experimental).
pub const COPY_IGNORED_FILE: Rule = experimental(rule(
    "CopyIgnoredFile",
    "Attempting to Copy file that is excluded by .dockerignore",
    "https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/",
));
/// A comment above FROM/ARG that does not start with the defined name
/// (experimental).
pub const INVALID_DEFINITION_DESCRIPTION: Rule = experimental(rule(
    "InvalidDefinitionDescription",
    "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.",
    "https://docs.docker.com/go/dockerfile/rule/invalid-definition-description/",
));
/// Upper-case protocol in EXPOSE.
pub const EXPOSE_PROTO_CASING: Rule = rule(
    "ExposeProtoCasing",
    "Protocol in EXPOSE instruction should be lowercase",
    "https://docs.docker.com/go/dockerfile/rule/expose-proto-casing/",
);
/// IP address or host port in EXPOSE.
pub const EXPOSE_INVALID_FORMAT: Rule = rule(
    "ExposeInvalidFormat",
    "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release",
    "https://docs.docker.com/go/dockerfile/rule/expose-invalid-format/",
);

/// Every rule, in upstream's declaration order.
pub const ALL_RULES: &[Rule] = &[
    STAGE_NAME_CASING,
    FROM_AS_CASING,
    NO_EMPTY_CONTINUATION,
    CONSISTENT_INSTRUCTION_CASING,
    DUPLICATE_STAGE_NAME,
    RESERVED_STAGE_NAME,
    JSON_ARGS_RECOMMENDED,
    MAINTAINER_DEPRECATED,
    UNDEFINED_ARG_IN_FROM,
    WORKDIR_RELATIVE_PATH,
    UNDEFINED_VAR,
    MULTIPLE_INSTRUCTIONS_DISALLOWED,
    LEGACY_KEY_VALUE_FORMAT,
    INVALID_BASE_IMAGE_PLATFORM,
    REDUNDANT_TARGET_PLATFORM,
    SECRETS_USED_IN_ARG_OR_ENV,
    INVALID_DEFAULT_ARG_IN_FROM,
    FROM_PLATFORM_FLAG_CONST_DISALLOWED,
    COPY_IGNORED_FILE,
    INVALID_DEFINITION_DESCRIPTION,
    EXPOSE_PROTO_CASING,
    EXPOSE_INVALID_FORMAT,
];

/// The rule called `name` (exact, case-sensitive as upstream).
pub fn rule_by_name(name: &str) -> Option<&'static Rule> {
    ALL_RULES.iter().find(|r| r.name == name)
}

/// `Stage name 'X' should be lowercase`.
pub fn stage_name_casing_message(stage_name: &str) -> String {
    format!("Stage name '{stage_name}' should be lowercase")
}

/// `'as' and 'FROM' keywords' casing do not match`.
pub fn from_as_casing_message(from: &str, as_keyword: &str) -> String {
    format!("'{as_keyword}' and '{from}' keywords' casing do not match")
}

/// `Empty continuation line`.
pub fn no_empty_continuation_message() -> String {
    "Empty continuation line".to_string()
}

/// `Command 'copy' should match the case of the command majority (uppercase)`.
pub fn consistent_instruction_casing_message(command: &str, correct_casing: &str) -> String {
    format!("Command '{command}' should match the case of the command majority ({correct_casing})")
}

/// `Duplicate stage name "b", stage names should be unique`.
pub fn duplicate_stage_name_message(stage_name: &str) -> String {
    format!(
        "Duplicate stage name {}, stage names should be unique",
        go_quote(stage_name)
    )
}

/// `Stage name should not use the same name as reserved stage "scratch"`.
pub fn reserved_stage_name_message(stage_name: &str) -> String {
    format!(
        "Stage name should not use the same name as reserved stage {}",
        go_quote(stage_name)
    )
}

/// `JSON arguments recommended for CMD to prevent …`.
pub fn json_args_recommended_message(instruction: &str) -> String {
    format!("JSON arguments recommended for {instruction} to prevent unintended behavior related to OS signals")
}

/// `Maintainer instruction is deprecated in favor of using label`.
pub fn maintainer_deprecated_message() -> String {
    "Maintainer instruction is deprecated in favor of using label".to_string()
}

/// `FROM argument 'X' is not declared[ (did you mean Y?)]`.
pub fn undefined_arg_in_from_message(arg: &str, suggestion: Option<&str>) -> String {
    let mut out = format!("FROM argument '{arg}' is not declared");
    if let Some(s) = suggestion.filter(|s| !s.is_empty()) {
        out.push_str(&format!(" (did you mean {s}?)"));
    }
    out
}

/// `Relative workdir "app/" can have unexpected results if the base image changes`.
pub fn workdir_relative_path_message(workdir: &str) -> String {
    format!(
        "Relative workdir {} can have unexpected results if the base image changes",
        go_quote(workdir)
    )
}

/// `Usage of undefined variable '$X'[ (did you mean $Y?)]`.
pub fn undefined_var_message(name: &str, suggestion: Option<&str>) -> String {
    let mut out = format!("Usage of undefined variable '${name}'");
    if let Some(s) = suggestion.filter(|s| !s.is_empty()) {
        out.push_str(&format!(" (did you mean ${s}?)"));
    }
    out
}

/// `Multiple CMD instructions should not be used in the same stage …`.
pub fn multiple_instructions_disallowed_message(instruction: &str) -> String {
    format!("Multiple {instruction} instructions should not be used in the same stage because only the last one will be used")
}

/// `"ENV key=value" should be used instead of legacy "ENV key value" format`.
pub fn legacy_key_value_format_message(instruction: &str) -> String {
    format!("\"{instruction} key=value\" should be used instead of legacy \"{instruction} key value\" format")
}

/// `Base image X was pulled with platform "actual", expected "expected" for current build`.
pub fn invalid_base_image_platform_message(image: &str, expected: &str, actual: &str) -> String {
    format!(
        "Base image {image} was pulled with platform {}, expected {} for current build",
        go_quote(actual),
        go_quote(expected)
    )
}

/// `Setting platform to predefined $TARGETPLATFORM in FROM is redundant …`
/// (`platform` as written).
pub fn redundant_target_platform_message(platform: &str) -> String {
    format!("Setting platform to predefined {platform} in FROM is redundant as this is the default behavior")
}

/// `Do not use ARG or ENV instructions for sensitive data (ENV "password")`.
pub fn secrets_used_in_arg_or_env_message(instruction: &str, key: &str) -> String {
    format!(
        "Do not use ARG or ENV instructions for sensitive data ({instruction} {})",
        go_quote(key)
    )
}

/// `Default value for ARG busybox:$VERSION results in empty or invalid base image name`.
pub fn invalid_default_arg_in_from_message(base_name: &str) -> String {
    format!("Default value for ARG {base_name} results in empty or invalid base image name")
}

/// `FROM --platform flag should not use constant value "linux/amd64"`.
pub fn from_platform_flag_const_disallowed_message(platform: &str) -> String {
    format!(
        "FROM --platform flag should not use constant value {}",
        go_quote(platform)
    )
}

/// `Attempting to Copy file "x" that is excluded by .dockerignore`
/// (`command` is `Copy` or `Add`).
pub fn copy_ignored_file_message(command: &str, file: &str) -> String {
    format!(
        "Attempting to {command} file {} that is excluded by .dockerignore",
        go_quote(file)
    )
}

/// ``Comment for ARG should follow the format: `# foo <description>` ``.
pub fn invalid_definition_description_message(instruction: &str, name: &str) -> String {
    format!("Comment for {instruction} should follow the format: `# {name} <description>`")
}

/// `Defined protocol '80/TcP' in EXPOSE instruction should be lowercase`.
pub fn expose_proto_casing_message(port: &str) -> String {
    format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase")
}

/// `EXPOSE instruction should not define an IP address or host-port mapping, found '…'`.
pub fn expose_invalid_format_message(port: &str) -> String {
    format!(
        "EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"
    )
}
