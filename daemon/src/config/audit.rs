//! Every key of a config file, judged against what buildkitd v0.24 accepts and what nodekit does
//! with it, so that none is ignored in silence: honoured; reported with a warning when it cannot
//! change what a build does (`[otel]`); refused with an error when ignoring it would (`[worker.oci]
//! enabled = true`); an unknown key gets a warning naming the nearest known one.

use std::fmt;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// What a key asks that nodekit does not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub line: usize,
    /// The key's dotted path, e.g. `worker.oci.enabled` or `registry."docker.io".mirrors`.
    pub key: String,
    pub severity: Severity,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Cannot change a build's result or what it may do: logged at start.
    Warning,
    /// Would change what a build does or exposes: the daemon does not start.
    Error,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.key, self.message)
    }
}

/// How nodekit treats a key.
#[derive(Clone, Copy)]
enum Rule {
    Honoured,
    /// Ignored, and it cannot change a build: a warning with the reason.
    Ignored(&'static str),
    /// Not implemented, and ignoring it would change a build: an error with the reason.
    Refused(&'static str),
    /// Depends on the value: `None` when it is what nodekit does anyway.
    Value(fn(&DeValue<'_>) -> Option<(Severity, &'static str)>),
}

/// Key paths: `*` is one table key (a registry host), arrays of tables are walked through.
/// The first pattern that matches wins. A pattern whose value is a table covers everything
/// under it.
const RULES: &[(&str, Rule)] = &[
    ("debug", Rule::Honoured),
    ("root", Rule::Honoured),
    ("local-mount-source-root", Rule::Honoured),
    ("qemu-dir", Rule::Honoured),
    ("registry-auth-file", Rule::Honoured),
    ("containerd-hosts-dir", Rule::Honoured),
    ("trace", Rule::Ignored("nodekitd has no trace level; `debug = true` logs the most")),
    ("insecure-entitlements", Rule::Honoured),
    ("log.format", Rule::Honoured),
    ("shutdown-grace", Rule::Honoured),
    ("grpc.address", Rule::Honoured),
    ("grpc.uid", Rule::Honoured),
    ("grpc.gid", Rule::Honoured),
    ("grpc.tls.cert", Rule::Honoured),
    ("grpc.tls.key", Rule::Honoured),
    ("grpc.tls.ca", Rule::Honoured),
    ("grpc.debugAddress", Rule::Honoured),
    ("grpc.securityDescriptor", Rule::Ignored("it applies to Windows named pipes only")),
    ("otel", Rule::Ignored("nodekitd exports no OpenTelemetry traces")),
    ("cdi.disabled", Rule::Value(cdi_disabled)),
    ("cdi", Rule::Ignored("nodekit has no CDI devices; a build that asks for one is refused")),
    ("worker.oci.enabled", Rule::Value(oci_enabled)),
    ("worker.oci", Rule::Ignored("nodekit has no OCI worker (its worker is the node's containerd)")),
    ("worker.containerd.enabled", Rule::Value(containerd_enabled)),
    ("worker.containerd.address", Rule::Honoured),
    ("worker.containerd.namespace", Rule::Honoured),
    ("worker.containerd.snapshotter", Rule::Honoured),
    ("worker.containerd.platforms", Rule::Honoured),
    ("worker.containerd.labels", Rule::Honoured),
    ("worker.containerd.gc", Rule::Honoured),
    ("worker.containerd.gcpolicy.all", Rule::Honoured),
    ("worker.containerd.gcpolicy.filters", Rule::Honoured),
    ("worker.containerd.gcpolicy.keepDuration", Rule::Honoured),
    ("worker.containerd.gcpolicy.keepBytes", Rule::Honoured),
    ("worker.containerd.gcpolicy.reservedSpace", Rule::Honoured),
    ("worker.containerd.gcpolicy.maxUsedSpace", Rule::Honoured),
    ("worker.containerd.gcpolicy.minFreeSpace", Rule::Honoured),
    ("worker.containerd.gckeepstorage", Rule::Ignored(WORKER_GC_LIMITS)),
    ("worker.containerd.reservedSpace", Rule::Ignored(WORKER_GC_LIMITS)),
    ("worker.containerd.maxUsedSpace", Rule::Ignored(WORKER_GC_LIMITS)),
    ("worker.containerd.minFreeSpace", Rule::Ignored(WORKER_GC_LIMITS)),
    ("worker.containerd.max-parallelism", Rule::Ignored("nodekitd does not cap parallel steps")),
    ("worker.containerd.defaultCgroupParent", Rule::Ignored("steps run in containerd's default cgroup parent")),
    ("worker.containerd.rootless", Rule::Value(rootless)),
    ("worker.containerd.apparmor-profile", Rule::Value(apparmor_profile)),
    ("worker.containerd.selinux", Rule::Value(selinux)),
    ("worker.containerd.runtime.name", Rule::Value(runtime_name)),
    ("worker.containerd.runtime", Rule::Refused("steps always run with containerd's runc shim (io.containerd.runc.v2); another runtime path or options are not supported")),
    ("worker.containerd.networkMode", Rule::Value(network_mode)),
    ("worker.containerd.cniConfigPath", Rule::Ignored(CNI_ONLY)),
    ("worker.containerd.cniBinaryPath", Rule::Ignored(CNI_ONLY)),
    ("worker.containerd.cniPoolSize", Rule::Ignored(CNI_ONLY)),
    ("worker.containerd.bridgeName", Rule::Ignored(CNI_ONLY)),
    ("worker.containerd.bridgeSubnet", Rule::Ignored(CNI_ONLY)),
    ("registry.*.http", Rule::Honoured),
    ("registry.*.mirrors", Rule::Honoured),
    ("registry.*.insecure", Rule::Honoured),
    ("registry.*.ca", Rule::Honoured),
    ("registry.*.tlsconfigdir", Rule::Honoured),
    ("registry.*.keypair.key", Rule::Honoured),
    ("registry.*.keypair.cert", Rule::Honoured),
    ("dns.nameservers", Rule::Honoured),
    ("dns.options", Rule::Honoured),
    ("dns.searchDomains", Rule::Honoured),
    ("limits.maxDownloadBytes", Rule::Honoured),
    ("limits.maxUnpackBytes", Rule::Honoured),
    ("limits.downloadIdleTimeout", Rule::Honoured),
    ("history.maxAge", Rule::Honoured),
    ("history.maxEntries", Rule::Honoured),
    ("frontend.\"dockerfile.v0\".enabled", Rule::Value(dockerfile_enabled)),
    ("frontend.\"gateway.v0\".enabled", Rule::Honoured),
    ("frontend.\"gateway.v0\".allowedRepositories", Rule::Honoured),
    ("system.platformsCacheMaxAge", Rule::Ignored("nodekitd reads the host's emulators at each build")),
];

const WORKER_GC_LIMITS: &str =
    "nodekitd takes disk limits from [[worker.containerd.gcpolicy]] rules only (else buildkitd's defaults for the disk)";
const CNI_ONLY: &str =
    "it configures CNI networking, which nodekit does not have (steps use the host's network)";

fn as_bool(value: &DeValue<'_>) -> Option<bool> {
    match value {
        DeValue::Boolean(b) => Some(*b),
        _ => None,
    }
}

fn as_str<'a>(value: &'a DeValue<'_>) -> Option<&'a str> {
    match value {
        DeValue::String(s) => Some(s),
        _ => None,
    }
}

fn cdi_disabled(value: &DeValue<'_>) -> Option<(Severity, &'static str)> {
    (as_bool(value) != Some(true)).then_some((
        Severity::Warning,
        "nodekit has no CDI devices; a build that asks for one is refused",
    ))
}

fn oci_enabled(value: &DeValue<'_>) -> Option<(Severity, &'static str)> {
    (as_bool(value) != Some(false)).then_some((
        Severity::Error,
        "nodekit has no OCI worker; its only worker is the node's containerd ([worker.containerd]). Set enabled = false or remove [worker.oci]",
    ))
}

fn containerd_enabled(value: &DeValue<'_>) -> Option<(Severity, &'static str)> {
    (as_bool(value) != Some(true)).then_some((
        Severity::Error,
        "the containerd worker is nodekit's only worker and cannot be disabled",
    ))
}

fn rootless(value: &DeValue<'_>) -> Option<(Severity, &'static str)> {
    (as_bool(value) != Some(false)).then_some((
        Severity::Error,
        "nodekitd runs steps as the node's containerd does (rootful); rootless mode is not supported",
    ))
}

fn apparmor_profile(value: &DeValue<'_>) -> Option<(Severity, &'static str)> {
    (as_str(value) != Some(""))
        .then_some((Severity::Error, "steps cannot be given an AppArmor profile"))
}

fn selinux(value: &DeValue<'_>) -> Option<(Severity, &'static str)> {
    (as_bool(value) != Some(false))
        .then_some((Severity::Error, "steps cannot be given SELinux labels"))
}

fn runtime_name(value: &DeValue<'_>) -> Option<(Severity, &'static str)> {
    (!matches!(as_str(value), Some("io.containerd.runc.v2" | ""))).then_some((
        Severity::Error,
        "steps always run with containerd's runc shim (io.containerd.runc.v2)",
    ))
}

fn network_mode(value: &DeValue<'_>) -> Option<(Severity, &'static str)> {
    (!matches!(as_str(value), Some("auto" | "host"))).then_some((
        Severity::Error,
        "steps use the host's network (as buildkitd's \"host\" mode); CNI and bridge networks are not supported",
    ))
}

fn dockerfile_enabled(value: &DeValue<'_>) -> Option<(Severity, &'static str)> {
    (as_bool(value) != Some(true)).then_some((
        Severity::Error,
        "the built-in Dockerfile frontend cannot be turned off",
    ))
}

/// The findings of a config file's text (a syntax error is the parser's, reported elsewhere).
pub fn audit(text: &str) -> Vec<Finding> {
    let Ok(root) = DeTable::parse(text) else {
        return Vec::new();
    };
    let mut auditor = Auditor {
        text,
        findings: Vec::new(),
    };
    auditor.table(&mut Vec::new(), root.get_ref());
    auditor.findings.sort_by_key(|f| f.line);
    auditor.findings
}

struct Auditor<'t> {
    text: &'t str,
    findings: Vec<Finding>,
}

impl Auditor<'_> {
    fn table(&mut self, path: &mut Vec<String>, table: &DeTable<'_>) {
        for (key, value) in table {
            path.push(key.get_ref().to_string());
            self.key(path, key, value);
            path.pop();
        }
    }

    fn key(
        &mut self,
        path: &mut Vec<String>,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
    ) {
        let line = line_of(self.text, key.span().start);
        let nested = match value.get_ref() {
            DeValue::Table(_) => true,
            DeValue::Array(items) => items
                .iter()
                .any(|item| matches!(item.get_ref(), DeValue::Table(_))),
            _ => false,
        };
        // A table with rules for its keys is walked; a rule for the table itself then covers
        // the keys without one of their own.
        if nested && has_rules_under(path) {
            self.nested(path, value.get_ref());
            return;
        }
        match rule_for(path).or_else(|| covering_rule(path)) {
            Some(rule) => self.judge(path, line, rule, value.get_ref()),
            None => self.unknown(path, line),
        }
    }

    fn nested(&mut self, path: &mut Vec<String>, value: &DeValue<'_>) {
        match value {
            DeValue::Table(table) => self.table(path, table),
            DeValue::Array(items) => {
                for item in items {
                    if let DeValue::Table(table) = item.get_ref() {
                        self.table(path, table);
                    }
                }
            }
            _ => {}
        }
    }

    fn judge(&mut self, path: &[String], line: usize, rule: Rule, value: &DeValue<'_>) {
        let (severity, reason) = match rule {
            Rule::Honoured => return,
            Rule::Ignored(reason) => (Severity::Warning, reason),
            Rule::Refused(reason) => (Severity::Error, reason),
            Rule::Value(judge) => match judge(value) {
                Some(verdict) => verdict,
                None => return,
            },
        };
        let message = match severity {
            Severity::Warning => format!("ignored: {reason}"),
            Severity::Error => format!("not supported: {reason}"),
        };
        self.push(path, line, severity, message);
    }

    fn unknown(&mut self, path: &[String], line: usize) {
        let siblings = sibling_names(&path[..path.len() - 1]);
        let name = path.last().map(String::as_str).unwrap_or_default();
        let options: Vec<&str> = siblings.iter().map(String::as_str).collect();
        let message = match nodekit_dockerfile::suggest::search(name, &options, true) {
            Some(nearest) => format!("unknown key, ignored (did you mean {nearest}?)"),
            None => "unknown key, ignored: neither buildkitd nor nodekitd has it".to_string(),
        };
        self.push(path, line, Severity::Warning, message);
    }

    fn push(&mut self, path: &[String], line: usize, severity: Severity, message: String) {
        self.findings.push(Finding {
            line,
            key: dotted(path),
            severity,
            message,
        });
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `registry."docker.io".mirrors`: segments quoted where TOML needs it.
fn dotted(path: &[String]) -> String {
    path.iter()
        .map(|s| {
            let bare = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if bare {
                s.clone()
            } else {
                format!("\"{s}\"")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn segments(pattern: &str) -> Vec<String> {
    // Only the frontend names hold a quoted dot.
    let mut out = Vec::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            out.push(quoted[..end].to_string());
            rest = quoted.get(end + 1..).unwrap_or("");
            rest = rest.strip_prefix('.').unwrap_or(rest);
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest.get(end + 1..).unwrap_or("");
        }
    }
    out
}

fn matches(pattern: &[String], path: &[String]) -> bool {
    pattern.len() == path.len() && pattern.iter().zip(path).all(|(p, k)| p == "*" || p == k)
}

fn rule_for(path: &[String]) -> Option<Rule> {
    RULES
        .iter()
        .find(|(pattern, _)| matches(&segments(pattern), path))
        .map(|(_, rule)| *rule)
}

/// The rule of the nearest enclosing table that has one (`cdi` for `cdi.specDirs`).
fn covering_rule(path: &[String]) -> Option<Rule> {
    (1..path.len()).rev().find_map(|len| rule_for(&path[..len]))
}

fn has_rules_under(path: &[String]) -> bool {
    RULES.iter().any(|(pattern, _)| {
        let pattern = segments(pattern);
        pattern.len() > path.len() && matches(&pattern[..path.len()], path)
    })
}

/// The known names one level under `parent`.
fn sibling_names(parent: &[String]) -> Vec<String> {
    let mut names: Vec<String> = RULES
        .iter()
        .map(|(pattern, _)| segments(pattern))
        .filter(|p| p.len() > parent.len() && matches(&p[..parent.len()], parent))
        .map(|p| p[parent.len()].clone())
        .filter(|name| name != "*")
        .collect();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(text: &str) -> Vec<String> {
        audit(text).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn honoured_keys_pass_in_silence() {
        let text = "root = \"/r\"\ndebug = true\n[grpc]\naddress = [\"unix:///x\"]\ngid = 5\n[grpc.tls]\ncert = \"c\"\nkey = \"k\"\n[worker.oci]\nenabled = false\n[worker.containerd]\nenabled = true\nnamespace = \"k8s.io\"\nrootless = false\n[[worker.containerd.gcpolicy]]\nkeepBytes = 1\n[registry.\"127.0.0.1:5000\"]\nhttp = true\n[frontend.\"dockerfile.v0\"]\nenabled = true\n";
        assert_eq!(findings(text), Vec::<String>::new());
    }

    #[test]
    fn keys_that_would_change_a_build_are_errors_with_their_line() {
        let found = audit(
            "debug = true\n[worker.oci]\nenabled = true\n[worker.containerd]\nrootless = true\n",
        );
        let errors: Vec<_> = found
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.line, f.key.as_str()))
            .collect();
        assert_eq!(
            errors,
            vec![(3, "worker.oci.enabled"), (5, "worker.containerd.rootless")]
        );
    }

    #[test]
    fn keys_that_cannot_change_a_build_are_warnings() {
        let found = audit("[otel]\nsocketPath = \"/x\"\n[history]\nmaxAge = 10\n");
        assert!(
            found.iter().all(|f| f.severity == Severity::Warning),
            "{found:?}"
        );
        // `[history]` is honoured: only the otel table is reported.
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn unknown_keys_name_the_nearest_known_one() {
        let found = findings(
            "[grpc]\nadress = [\"x\"]\n[worker.containerd]\nnamespce = \"k8s.io\"\n[wroker]\n",
        );
        assert!(
            found[0].contains("line 2: grpc.adress") && found[0].contains("did you mean address?"),
            "{found:?}"
        );
        assert!(
            found[1].contains("namespce") && found[1].contains("did you mean namespace?"),
            "{found:?}"
        );
        assert!(
            found[2].contains("line 5: wroker") && found[2].contains("did you mean worker?"),
            "{found:?}"
        );
    }

    #[test]
    fn registry_hosts_are_any_key_and_quoted_in_reports() {
        let found = findings(
            "[registry.\"docker.io\"]\nmirrors = [\"m\"]\n[[registry.\"r.example\".keypair]]\nkey = \"k\"\ncrt = \"c\"\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("line 5: registry.\"r.example\".keypair.crt: unknown key")
                && found[0].contains("did you mean cert?"),
            "{found:?}"
        );
    }
}
