//! Build checks: `# check=` parsing, every rule decidable from the
//! Dockerfile (cases from upstream's `dockerfile_lint_test.go`), the
//! converter helpers, skip/experimental/error behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use std::collections::{BTreeMap, BTreeSet};

use nodekit_dockerfile::lint::{converter, finish, rules, CHECK_BUILD_ARG};
use nodekit_dockerfile::{
    lint, lint_error, lint_with, parse, LintConfig, LintContext, LintWarning,
};

/// Lints `src` with the configuration of its `# check=` directive.
fn lint_src(src: &str) -> Vec<LintWarning> {
    let df = parse(src).unwrap_or_else(|e| panic!("{e}"));
    let config =
        LintConfig::from_sources(df.directive("check"), None).unwrap_or_else(|e| panic!("{e}"));
    lint(&df, &config)
}

/// `(rule, message, start line)` of each warning.
fn summary(warnings: &[LintWarning]) -> Vec<(&'static str, String, usize)> {
    warnings
        .iter()
        .map(|w| (w.rule, w.message.clone(), w.start_line))
        .collect()
}

fn expect(src: &str, expected: &[(&str, &str, usize)]) {
    let got = summary(&lint_src(src));
    let want: Vec<(&str, String, usize)> = expected
        .iter()
        .map(|(r, m, l)| (*r, m.to_string(), *l))
        .collect();
    assert_eq!(got, want, "for Dockerfile:\n{src}");
}

fn expect_clean(src: &str) {
    expect(src, &[]);
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------- config

#[test]
fn config_parses_all_options() {
    let c = LintConfig::parse(
        " skip = StageNameCasing , FromAsCasing ;error= TRUE;experimental=CopyIgnoredFile",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.skip, set(&["StageNameCasing", "FromAsCasing"]));
    assert!(c.error && !c.skip_all && !c.experimental_all);
    assert_eq!(c.experimental, set(&["CopyIgnoredFile"]));

    let all = LintConfig::parse("skip=all;experimental=all;error=0").unwrap_or_default();
    assert!(all.skip_all && all.experimental_all && !all.error);
    assert_eq!(LintConfig::parse("  "), Ok(LintConfig::default()));
}

#[test]
fn config_keeps_upstream_quirks() {
    // At most three options: the rest stays in the third one's value.
    let c = LintConfig::parse("error=1;skip=A;experimental=B;skip=C").unwrap_or_default();
    assert_eq!(c.experimental, set(&["B;skip=C"]));
    // A repeated key replaces the list but never clears `all`.
    let c = LintConfig::parse("skip=all;skip=A").unwrap_or_default();
    assert!(c.skip_all);
    assert_eq!(c.skip, set(&["A"]));
}

#[test]
fn config_errors() {
    let cases = [
        ("foo", r#"invalid check option "foo""#),
        ("skip=a;foo=bar", r#"invalid check option "foo""#),
        (" Skip=a", r#"invalid check option "Skip""#),
        ("skip=a;", r#"invalid check option """#),
        (
            "error=maybe",
            r#"failed to parse check option "error=maybe": strconv.ParseBool: parsing "maybe": invalid syntax"#,
        ),
        (
            "skip=a; error = yes ",
            r#"failed to parse check option " error = yes": strconv.ParseBool: parsing "yes": invalid syntax"#,
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(LintConfig::parse(spec), Err(want.to_string()), "{spec}");
    }
}

#[test]
fn config_sources_build_arg_overrides_directive() {
    let from = LintConfig::from_sources;
    let directive = from(Some("skip=all"), None).unwrap_or_default();
    assert!(directive.skip_all);
    let arg = from(Some("skip=all"), Some("error=true")).unwrap_or_default();
    assert!(!arg.skip_all && arg.error);
    // Given, even empty, the option replaces the directive entirely.
    assert_eq!(from(Some("bogus"), Some("")), Ok(LintConfig::default()));
    assert_eq!(from(None, None), Ok(LintConfig::default()));
    assert_eq!(
        from(Some("bogus"), None),
        Err(r#"failed to parse check options: invalid check option "bogus""#.to_string())
    );
    assert_eq!(
        from(None, Some("x=1")),
        Err(format!(
            r#"failed to parse {CHECK_BUILD_ARG}: invalid check option "x""#
        ))
    );
}

#[test]
fn config_enables_rules() {
    let default = LintConfig::default();
    assert!(default.is_enabled("StageNameCasing"));
    assert!(!default.is_enabled("InvalidDefinitionDescription"));
    let c = LintConfig::parse("skip=all;experimental=CopyIgnoredFile").unwrap_or_default();
    assert!(!c.is_enabled("StageNameCasing"));
    assert!(c.is_enabled("CopyIgnoredFile"));
    assert!(!c.is_enabled("InvalidDefinitionDescription"));
    // skip does not apply to experimental rules.
    let c = LintConfig::parse("skip=CopyIgnoredFile;experimental=all").unwrap_or_default();
    assert!(c.is_enabled("CopyIgnoredFile"));
}

// ---------------------------------------------------------------- rule table

#[test]
fn rule_table_matches_upstream() {
    assert_eq!(rules::ALL_RULES.len(), 22);
    for rule in rules::ALL_RULES {
        if rule.name == "InvalidBaseImagePlatform" {
            assert_eq!(rule.url, "");
            continue;
        }
        let kebab: String = kebab_case(rule.name);
        assert_eq!(
            rule.url,
            format!("https://docs.docker.com/go/dockerfile/rule/{kebab}/")
        );
    }
    let experimental: Vec<&str> = rules::ALL_RULES
        .iter()
        .filter(|r| r.experimental)
        .map(|r| r.name)
        .collect();
    assert_eq!(
        experimental,
        ["CopyIgnoredFile", "InvalidDefinitionDescription"]
    );
    assert_eq!(
        rules::rule_by_name("JSONArgsRecommended").map(|r| r.description),
        Some("JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals")
    );
}

/// `JSONArgsRecommended` -> `json-args-recommended`.
fn kebab_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let prev_lower = i > 0 && chars[i - 1].is_lowercase();
        if i > 0 && c.is_uppercase() && (prev_lower || next_lower) {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn warning_fields_and_short_form() {
    let w = &lint_src("FROM scratch\nMAINTAINER me@example.org\n")[0];
    assert_eq!(w.rule, "MaintainerDeprecated");
    assert_eq!(
        w.description,
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author"
    );
    assert_eq!(
        w.url,
        "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/"
    );
    assert_eq!((w.start_line, w.end_line), (2, 2));
    assert_eq!(
        w.short(),
        "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 2)"
    );
}

// ---------------------------------------------------------------- parse-time rules

#[test]
fn stage_name_casing_and_from_as_casing() {
    expect(
        "
# warning: stage name should be lowercase
#
FROM scratch AS BadStageName

# warning: 'as' should match 'FROM' cmd casing.
#
FROM scratch as base2

FROM scratch AS base3
",
        &[
            (
                "StageNameCasing",
                "Stage name 'BadStageName' should be lowercase",
                4,
            ),
            (
                "FromAsCasing",
                "'as' and 'FROM' keywords' casing do not match",
                8,
            ),
        ],
    );
    expect(
        "
from scratch AS base

from scratch as base2
",
        &[(
            "FromAsCasing",
            "'AS' and 'from' keywords' casing do not match",
            2,
        )],
    );
}

#[test]
fn no_empty_continuation() {
    expect(
        "
FROM scratch
# warning: empty continuation line
COPY Dockerfile \\

.
COPY Dockerfile \\
.
",
        &[("NoEmptyContinuation", "Empty continuation line", 6)],
    );
}

#[test]
fn consistent_instruction_casing() {
    let msg = |cmd: &str, casing: &str| {
        format!("Command '{cmd}' should match the case of the command majority ({casing})")
    };
    let cases = [
        (
            "\nFrom scratch as base\nFROM scratch AS base2\n",
            "From",
            "uppercase",
            2,
        ),
        (
            "\nFROM scratch\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n",
            "copy",
            "uppercase",
            3,
        ),
        (
            "\nfrOM scratch as base\nfrom scratch as base2\n",
            "frOM",
            "lowercase",
            2,
        ),
        (
            "\nfrom scratch\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n",
            "COPY",
            "lowercase",
            3,
        ),
        (
            "\nfrom scratch\nCOPY a /foo\nCOPY b /bar\nCOPY c /baz\n",
            "from",
            "uppercase",
            2,
        ),
        (
            "\nFROM scratch\ncopy a /foo\ncopy b /bar\ncopy c /baz\n",
            "FROM",
            "lowercase",
            2,
        ),
    ];
    for (src, cmd, casing, line) in cases {
        let m = msg(cmd, casing);
        expect(src, &[("ConsistentInstructionCasing", m.as_str(), line)]);
    }
    expect_clean("\nfrom scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n");
    expect_clean("\nFROM scratch\nRUN <<'EOT'\nenv\nEOT\n");
    // Global ARGs are neither counted nor checked.
    expect_clean("arg A=1\nFROM scratch\nCOPY a /b\n");
}

#[test]
fn duplicate_and_reserved_stage_names() {
    expect(
        "\nFROM scratch AS b\nFROM scratch AS b\n",
        &[(
            "DuplicateStageName",
            "Duplicate stage name \"b\", stage names should be unique",
            3,
        )],
    );
    expect_clean("\nFROM scratch AS b1\nFROM scratch AS b2\n");
    expect(
        "\nFROM scratch AS scratch\nFROM scratch AS context\n",
        &[
            (
                "ReservedStageName",
                "Stage name should not use the same name as reserved stage \"scratch\"",
                2,
            ),
            (
                "ReservedStageName",
                "Stage name should not use the same name as reserved stage \"context\"",
                3,
            ),
        ],
    );
    expect_clean("\nFROM scratch\nFROM scratch AS a\n");
}

#[test]
fn maintainer_deprecated() {
    expect(
        "\nFROM scratch\nMAINTAINER me@example.org\n",
        &[(
            "MaintainerDeprecated",
            "Maintainer instruction is deprecated in favor of using label",
            3,
        )],
    );
    expect_clean("\nFROM scratch\nLABEL org.opencontainers.image.authors=\"me@example.org\"\n");
}

#[test]
fn invalid_definition_description_is_experimental() {
    let src = "# check=experimental=InvalidDefinitionDescription
# bar this is the bar
ARG foo=bar
# BasE this is the BasE image
FROM scratch AS base
# definitely a bad comment
ARG version=latest
# definitely a bad comment
ARG foo=baz bar=qux baz=quux
";
    let rule = "InvalidDefinitionDescription";
    expect(
        src,
        &[
            (
                rule,
                "Comment for ARG should follow the format: `# foo <description>`",
                3,
            ),
            (
                rule,
                "Comment for FROM should follow the format: `# base <description>`",
                5,
            ),
            (
                rule,
                "Comment for ARG should follow the format: `# version <description>`",
                7,
            ),
            (
                rule,
                "Comment for ARG should follow the format: `# <arg_key> <description>`",
                9,
            ),
        ],
    );
    // Not enabled: nothing.
    expect_clean(&src.replacen("experimental", "skip", 1));
    expect_clean(
        "# check=experimental=InvalidDefinitionDescription
# foo this is the foo
ARG foo=bar

# base this is the base image
FROM scratch AS base

# version this is the version number
ARG version=latest

# baz this is the baz
ARG foo=baz bar=qux baz=quux
#
ARG bit=bat

# comment for something other than ARG or FROM
COPY Dockerfile .
",
    );
}

// ---------------------------------------------------------------- FROM-line rules

#[test]
fn undefined_arg_in_from() {
    for clean in [
        "\nARG base=scratch\nFROM $base\nCOPY Dockerfile .\n",
        "\nARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\n",
        "\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n",
        "\nARG DEBUG\nFROM scratch${DEBUG}\nCOPY Dockerfile .\n",
        "\nARG DEBUG\nFROM scra${DEBUG:-tch}\nCOPY Dockerfile .\n",
        "\nARG DEBUG=\"\"\nFROM scratch${DEBUG-@bogus}\nCOPY Dockerfile .\n",
    ] {
        expect_clean(clean);
    }
    expect(
        "\nFROM --platform=$BULIDPLATFORM scratch\nCOPY Dockerfile .\n",
        &[(
            "UndefinedArgInFrom",
            "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)",
            2,
        )],
    );
    expect(
        "\nARG MY_OS=linux\nARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} busybox\nCOPY Dockerfile .\n",
        &[(
            "UndefinedArgInFrom",
            "FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)",
            4,
        )],
    );
    expect(
        "\nARG tag=latest\nFROM busybox:${tag}${version} AS b\nCOPY Dockerfile .\n",
        &[(
            "UndefinedArgInFrom",
            "FROM argument 'version' is not declared",
            3,
        )],
    );
}

#[test]
fn undefined_arg_in_from_stops_at_a_failing_from() {
    // The first FROM expands to nothing (a build error): later stages are
    // not checked, as upstream returns there.
    expect(
        "# check=skip=InvalidDefaultArgInFrom\nFROM $nothing\nFROM $other\n",
        &[(
            "UndefinedArgInFrom",
            "FROM argument 'nothing' is not declared",
            2,
        )],
    );
}

#[test]
fn redundant_target_platform() {
    expect(
        "\nFROM --platform=$TARGETPLATFORM scratch\n",
        &[(
            "RedundantTargetPlatform",
            "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
            2,
        )],
    );
    expect(
        "\nFROM --platform=${TARGETPLATFORM} scratch\n",
        &[(
            "RedundantTargetPlatform",
            "Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior",
            2,
        )],
    );
    expect_clean("FROM --platform=$BUILDPLATFORM scratch\n");
    expect_clean("FROM --platform=${TARGETPLATFORM%/*}/arm64 scratch\n");
}

#[test]
fn from_platform_flag_const_disallowed() {
    expect(
        "\nFROM --platform=linux/amd64 scratch\n",
        &[(
            "FromPlatformFlagConstDisallowed",
            "FROM --platform flag should not use constant value \"linux/amd64\"",
            2,
        )],
    );
    expect(
        "FROM --platform=\"linux/arm64\" scratch AS build\n",
        &[(
            "FromPlatformFlagConstDisallowed",
            "FROM --platform flag should not use constant value \"linux/arm64\"",
            1,
        )],
    );
    expect_clean("\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n");
    expect_clean("\nFROM --platform=linux/amd64 scratch AS linux\n");
}

#[test]
fn invalid_default_arg_in_from() {
    expect(
        "\nARG VERSION\nFROM busybox:$VERSION\n",
        &[(
            "InvalidDefaultArgInFrom",
            "Default value for ARG busybox:$VERSION results in empty or invalid base image name",
            3,
        )],
    );
    expect(
        "\nARG IMAGE\nFROM $IMAGE\n",
        &[(
            "InvalidDefaultArgInFrom",
            "Default value for ARG $IMAGE results in empty or invalid base image name",
            3,
        )],
    );
    expect(
        "\nARG SFX=\"box:\"\nFROM busy${SFX}\n",
        &[(
            "InvalidDefaultArgInFrom",
            "Default value for ARG busy${SFX} results in empty or invalid base image name",
            3,
        )],
    );
    expect_clean("\nARG VERSION=\"latest\"\nFROM busybox:${VERSION}\n");
    expect_clean("\nARG BUSYBOX_VARIANT=\"\"\nFROM busybox:stable${BUSYBOX_VARIANT}\n");
    expect_clean("\nARG BUSYBOX_VARIANT\nFROM busybox:stable${BUSYBOX_VARIANT}\n");
}

#[test]
fn build_args_from_the_context_apply_to_from_lines() {
    // Upstream's case: a build arg fills the ARG, but the default is still
    // invalid; the FROM expands fine with the build arg.
    let df = parse("\nARG IMAGE\nFROM $IMAGE\n").unwrap_or_else(|e| panic!("{e}"));
    let ctx = LintContext {
        build_args: BTreeMap::from([("IMAGE".to_string(), "busybox:latest".to_string())]),
        ..LintContext::default()
    };
    let got = summary(&lint_with(&df, &LintConfig::default(), &ctx));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "InvalidDefaultArgInFrom");

    // Real predefined values: TARGETPLATFORM=linux/arm64 is still redundant.
    let df = parse("FROM --platform=$TARGETPLATFORM scratch\n").unwrap_or_else(|e| panic!("{e}"));
    let ctx = LintContext {
        predefined_args: Some(vec![(
            "TARGETPLATFORM".to_string(),
            "linux/arm64".to_string(),
        )]),
        ..LintContext::default()
    };
    let got = summary(&lint_with(&df, &LintConfig::default(), &ctx));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "RedundantTargetPlatform");
}

// ---------------------------------------------------------------- dispatch-time rules

#[test]
fn json_args_recommended() {
    let msg = |i: &str| {
        format!("JSON arguments recommended for {i} to prevent unintended behavior related to OS signals")
    };
    let cmd = msg("CMD");
    expect(
        "\nFROM scratch\nCMD mycommand\n",
        &[("JSONArgsRecommended", cmd.as_str(), 3)],
    );
    let ep = msg("ENTRYPOINT");
    expect(
        "\nFROM scratch\nENTRYPOINT mycommand\n",
        &[("JSONArgsRecommended", ep.as_str(), 3)],
    );
    expect_clean("\nFROM scratch\nSHELL [\"/usr/bin/customshell\"]\nCMD mycommand\n");
    expect_clean("\nFROM scratch\nSHELL [\"/usr/bin/customshell\"]\nENTRYPOINT mycommand\n");
    expect_clean(
        "\nFROM scratch AS base\nSHELL [\"/usr/bin/customshell\"]\n\nFROM base\nCMD mycommand\n",
    );
    expect_clean("\nFROM scratch\nCMD [\"mycommand\"]\n");
    // The instruction name is reported as written.
    let lower = msg("cmd");
    expect(
        "from scratch\ncmd mycommand\n",
        &[("JSONArgsRecommended", lower.as_str(), 2)],
    );
}

#[test]
fn multiple_instructions_disallowed() {
    let msg = |i: &str| {
        format!("Multiple {i} instructions should not be used in the same stage because only the last one will be used")
    };
    let (ep, cmd, hc) = (msg("ENTRYPOINT"), msg("CMD"), msg("HEALTHCHECK"));
    let rule = "MultipleInstructionsDisallowed";
    expect(
        "
FROM scratch
ENTRYPOINT [\"/myapp\"]
ENTRYPOINT [\"/myotherapp\"]
CMD [\"/myapp\"]
CMD [\"/myotherapp\"]
HEALTHCHECK CMD [\"/myapp\"]
HEALTHCHECK CMD [\"/myotherapp\"]
",
        &[(rule, &ep, 3), (rule, &cmd, 5), (rule, &hc, 7)],
    );
    expect(
        "
FROM scratch
ENTRYPOINT [\"/myapp\"]
CMD [\"/myapp\"]
HEALTHCHECK CMD [\"/myapp\"]
COPY <<EOF /a.txt
Hello, World!
EOF
ENTRYPOINT [\"/myotherapp\"]
CMD [\"/myotherapp\"]
HEALTHCHECK CMD [\"/myotherapp\"]
",
        &[(rule, &ep, 3), (rule, &cmd, 4), (rule, &hc, 5)],
    );
    expect_clean(
        "
FROM scratch AS a
ENTRYPOINT [\"/myapp\"]
CMD [\"/myapp\"]
HEALTHCHECK CMD [\"/myapp\"]

FROM a AS b
ENTRYPOINT [\"/myotherapp\"]
CMD [\"/myotherapp\"]
HEALTHCHECK CMD [\"/myotherapp\"]
",
    );
}

#[test]
fn multiple_instructions_reports_the_previous_range() {
    let warnings = lint_src("FROM scratch\nCMD [\"a\", \\\n  \"b\"]\nCMD [\"c\"]\n");
    assert_eq!(warnings.len(), 1);
    assert_eq!((warnings[0].start_line, warnings[0].end_line), (2, 3));
}

#[test]
fn legacy_key_value_format() {
    expect(
        "\nFROM scratch\nENV testkey value\nLABEL key value\n",
        &[
            (
                "LegacyKeyValueFormat",
                "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format",
                3,
            ),
            (
                "LegacyKeyValueFormat",
                "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format",
                4,
            ),
        ],
    );
    expect_clean("\nFROM scratch\nENV testkey=value\nLABEL key=value\n");
}

#[test]
fn dispatch_rules_follow_the_selected_stages() {
    // Upstream's build only dispatches stages the target needs.
    let src =
        "\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n";
    let df = parse(src).unwrap_or_else(|e| panic!("{e}"));
    let config = LintConfig::default();
    assert_eq!(lint(&df, &config).len(), 2);
    let reachable = LintContext {
        stages: Some(BTreeSet::from([0, 2])),
        ..LintContext::default()
    };
    assert!(lint_with(&df, &config, &reachable).is_empty());
    // Parse-time rules still cover every stage.
    let df = parse("FROM scratch AS A\nFROM scratch\nENV k v\n").unwrap_or_else(|e| panic!("{e}"));
    let only_last = LintContext {
        stages: Some(BTreeSet::from([1])),
        ..LintContext::default()
    };
    let rules: Vec<&str> = lint_with(&df, &config, &only_last)
        .iter()
        .map(|w| w.rule)
        .collect();
    assert_eq!(rules, ["StageNameCasing", "LegacyKeyValueFormat"]);
}

#[test]
fn workdir_relative_path() {
    expect(
        "\nFROM scratch\nWORKDIR app/\n",
        &[(
            "WorkdirRelativePath",
            "Relative workdir \"app/\" can have unexpected results if the base image changes",
            3,
        )],
    );
    expect_clean("\nFROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n");
    // Only the first WORKDIR is judged; a variable cannot be judged.
    expect_clean("FROM scratch\nWORKDIR /app\nWORKDIR sub\n");
    expect_clean("FROM scratch\nWORKDIR $HOME\nWORKDIR sub\n");
    // Quotes are removed before judging.
    expect_clean("FROM scratch\nWORKDIR \"/app\"\n");
    // A stage on an external image starts afresh.
    expect(
        "FROM scratch AS a\nWORKDIR /app\nFROM busybox\nWORKDIR rel\n",
        &[(
            "WorkdirRelativePath",
            "Relative workdir \"rel\" can have unexpected results if the base image changes",
            4,
        )],
    );
}

#[test]
fn secrets_used_in_arg_or_env() {
    let msg = |i: &str, k: &str| {
        format!("Do not use ARG or ENV instructions for sensitive data ({i} \"{k}\")")
    };
    let rule = "SecretsUsedInArgOrEnv";
    let expected = [
        (msg("ARG", "SECRET_PASSPHRASE"), 3),
        (msg("ENV", "SUPER_Secret"), 4),
        (msg("ENV", "password"), 5),
        (msg("ENV", "secret"), 5),
        (msg("ARG", "super_duper_secret_token"), 6),
        (msg("ARG", "auth"), 6),
        (msg("ENV", "apikey"), 7),
        (msg("ENV", "git_key"), 8),
    ];
    let expected: Vec<(&str, &str, usize)> = expected
        .iter()
        .map(|(m, l)| (rule, m.as_str(), *l))
        .collect();
    expect(
        "
FROM scratch
ARG SECRET_PASSPHRASE
ENV SUPER_Secret=foo
ENV password=bar secret=baz
ARG super_duper_secret_token=foo auth=bar
ENV apikey=bar sunflower=foo
ENV git_key=
ENV PUBLIC_KEY=
ARG public_token
",
        &expected,
    );
    // Global ARGs are not dispatched, so not checked.
    expect_clean("ARG GITHUB_TOKEN\nFROM scratch\n");
}

#[test]
fn expose_proto_casing() {
    let rule = "ExposeProtoCasing";
    expect(
        "\nFROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp\n",
        &[
            (
                rule,
                "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase",
                3,
            ),
            (
                rule,
                "Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase",
                3,
            ),
        ],
    );
}

#[test]
fn expose_invalid_format() {
    let rule = "ExposeInvalidFormat";
    let msg = |p: &str| {
        format!(
            "EXPOSE instruction should not define an IP address or host-port mapping, found '{p}'"
        )
    };
    let (a, b, c) = (
        msg("127.0.0.1:80:80"),
        msg("5000:5000"),
        msg("[::1]:8080:8080"),
    );
    // Ports are sorted as strings, as upstream stores them.
    expect(
        "\nFROM scratch\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n",
        &[(rule, &a, 3), (rule, &b, 3), (rule, &c, 3)],
    );
    expect_clean("FROM scratch\nEXPOSE 80 443/tcp \"8080/udp\" $PORT\n");
}

// ---------------------------------------------------------------- converter helpers

#[test]
fn undefined_var_helpers() {
    let unmatched = set(&["DIR_ASSET", "declared", "BUILDKIT_SBOM_SCAN_STAGE"]);
    let warnings = converter::undefined_vars(
        &unmatched,
        &["declared"],
        &["PATH", "DIR_ASSETS", "DIR_BINARIES"],
        6,
        6,
    );
    assert_eq!(
        summary(&warnings),
        [(
            "UndefinedVar",
            "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)".to_string(),
            6
        )]
    );
    let plain = converter::undefined_var("foo", None, 3, 3);
    assert_eq!(plain.message, "Usage of undefined variable '$foo'");
    assert_eq!(
        plain.url,
        "https://docs.docker.com/go/dockerfile/rule/undefined-var/"
    );
}

#[test]
fn platform_and_ignored_file_helpers() {
    let w = converter::invalid_base_image_platform("busybox", "linux/arm64", "linux/amd64", 2, 2);
    assert_eq!(w.rule, "InvalidBaseImagePlatform");
    assert_eq!(
        w.message,
        "Base image busybox was pulled with platform \"linux/amd64\", expected \"linux/arm64\" for current build"
    );
    assert_eq!(w.url, "");
    let w = converter::copy_ignored_file("Add", "Dockerfile", 4, 4);
    assert_eq!(
        w.message,
        "Attempting to Add file \"Dockerfile\" that is excluded by .dockerignore"
    );
    // Experimental: dropped unless enabled.
    assert!(finish(vec![w.clone()], &LintConfig::default()).is_empty());
    let enabled = LintConfig::parse("experimental=CopyIgnoredFile").unwrap_or_default();
    assert_eq!(finish(vec![w], &enabled).len(), 1);
}

// ---------------------------------------------------------------- skip / error

const CASING_SRC: &str = "FROM scratch as base\ncopy Dockerfile .\n";

fn with_directive(directive: &str) -> String {
    format!("{directive}\n{CASING_SRC}")
}

#[test]
fn skip_options() {
    expect_clean(&with_directive("#check=skip=all"));
    expect_clean(&with_directive("#check=skip=all;error=true"));
    expect_clean(&with_directive(
        "#check=skip=ConsistentInstructionCasing,FromAsCasing",
    ));
    expect(
        &with_directive("#check=skip=ConsistentInstructionCasing"),
        &[(
            "FromAsCasing",
            "'as' and 'FROM' keywords' casing do not match",
            2,
        )],
    );
}

#[test]
fn warnings_are_ordered_by_line() {
    let warnings = lint_src(&with_directive("# nothing"));
    let lines: Vec<usize> = warnings.iter().map(|w| w.start_line).collect();
    let rules: Vec<&str> = warnings.iter().map(|w| w.rule).collect();
    assert_eq!(lines, [2, 3]);
    assert_eq!(rules, ["FromAsCasing", "ConsistentInstructionCasing"]);
}

#[test]
fn error_option() {
    let src = with_directive("#check=skip=ConsistentInstructionCasing;error=true");
    let df = parse(&src).unwrap_or_else(|e| panic!("{e}"));
    let config = LintConfig::from_sources(df.directive("check"), None).unwrap_or_default();
    let warnings = lint(&df, &config);
    assert_eq!(
        lint_error(&warnings, &config).as_deref(),
        Some("lint violation found for rules: FromAsCasing")
    );

    // No error without error=true, or without warnings.
    assert_eq!(lint_error(&warnings, &LintConfig::default()), None);
    assert_eq!(lint_error(&[], &config), None);

    // Several rules: each once, in order of first appearance.
    let all = LintConfig::parse("error=true").unwrap_or_default();
    let df = parse(&with_directive("# x")).unwrap_or_else(|e| panic!("{e}"));
    let mut warnings = lint(&df, &all);
    warnings.extend(lint(&df, &all));
    assert_eq!(
        lint_error(&warnings, &all).as_deref(),
        Some("lint violation found for rules: FromAsCasing, ConsistentInstructionCasing")
    );

    // Warnings of disabled rules do not count.
    let skipped = LintConfig::parse("skip=FromAsCasing,ConsistentInstructionCasing;error=1")
        .unwrap_or_default();
    assert_eq!(lint_error(&warnings, &skipped), None);
}

#[test]
fn build_arg_option_replaces_the_directive() {
    // Upstream: `#check=skip=all` overridden by the frontend option.
    let df = parse(&with_directive("#check=skip=all")).unwrap_or_else(|e| panic!("{e}"));
    let config = LintConfig::from_sources(
        df.directive("check"),
        Some("skip=ConsistentInstructionCasing;error=true"),
    )
    .unwrap_or_default();
    let warnings = lint(&df, &config);
    assert_eq!(summary(&warnings).len(), 1);
    assert_eq!(
        lint_error(&warnings, &config).as_deref(),
        Some("lint violation found for rules: FromAsCasing")
    );
    let df = parse(&with_directive("#check=error=true")).unwrap_or_else(|e| panic!("{e}"));
    let config =
        LintConfig::from_sources(df.directive("check"), Some("skip=all")).unwrap_or_default();
    let warnings = lint(&df, &config);
    assert!(warnings.is_empty());
    assert_eq!(lint_error(&warnings, &config), None);
}
