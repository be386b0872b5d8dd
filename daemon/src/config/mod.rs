//! nodekitd's configuration: buildkitd's flag names and a buildkitd.toml-style file; flags win
//! over the file, the file over the defaults.

mod addr;
mod audit;
pub mod entitlements;
mod file;
pub mod limits;
pub mod proxy;
mod registry;
mod security;

use std::path::{Path, PathBuf};

use clap::Parser;

pub use addr::ListenAddr;
use file::ConfigFile;
pub use security::{ListenerSecurity, SocketOwner, TlsFiles};

use crate::worker::emulation::{Emulation, DEFAULT_QEMU_DIR};
use crate::worker::WorkerConfig;
use entitlements::Entitlements;

pub const DEFAULT_ROOT: &str = "/var/lib/nodekit";
pub const DEFAULT_UNIX_ADDR: &str = "unix:///run/nodekit/nodekitd.sock";
pub const DEFAULT_TCP_ADDR: &str = "tcp://0.0.0.0:2375";
pub const DEFAULT_CONTAINERD: &str = "/run/containerd/containerd.sock";
pub const DEFAULT_NAMESPACE: &str = "k8s.io";
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

/// nodekitd: a BuildKit-compatible builder on the node's containerd.
#[derive(Debug, Parser)]
#[command(name = "nodekitd", version)]
pub struct Cli {
    /// Configuration file (buildkitd.toml format).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory (cache index, step files).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Listening address, unix:///path or tcp://host:port; repeatable.
    #[arg(long = "addr", value_name = "ADDR")]
    pub addrs: Vec<String>,
    /// containerd socket of the worker.
    #[arg(long, value_name = "SOCKET")]
    pub containerd_worker_addr: Option<PathBuf>,
    /// containerd namespace images are read from and written to.
    #[arg(long, value_name = "NAMESPACE")]
    pub containerd_worker_namespace: Option<String>,
    /// containerd snapshotter.
    #[arg(long, value_name = "NAME")]
    pub containerd_worker_snapshotter: Option<String>,
    /// Directory under which every host path bind-mounted into a step is created
    /// (default <root>/local-mnt-src); the host's containerd must see it at the same path.
    #[arg(long, value_name = "DIR")]
    pub local_mount_source_root: Option<PathBuf>,
    /// Directory of static qemu emulators (qemu-aarch64-static, ...) for foreign-platform steps
    /// when the host has no binfmt_misc handler with the F flag (default /usr/bin).
    #[arg(long, value_name = "DIR")]
    pub qemu_dir: Option<PathBuf>,
    /// Debug logging.
    #[arg(long)]
    pub debug: bool,
    /// Log format on stderr: text, or json (one object per line).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// How long running builds may take to finish after SIGTERM before they are cancelled
    /// (e.g. 30s, 10m; default 10m). New builds are refused meanwhile.
    #[arg(long, value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// Address (host:port) of the debug listener: /metrics for Prometheus, /healthz, /readyz.
    #[arg(long, value_name = "ADDR")]
    pub debugaddr: Option<String>,
    /// Certificate (PEM) of the tcp listeners' TLS; re-read when the file changes.
    #[arg(long, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// Private key (PEM) of --tlscert.
    #[arg(long, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
    /// CA (PEM) whose signed client certificates alone may connect over tcp (mutual TLS).
    #[arg(long, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,
    /// Lets builds that ask for it (buildctl --allow) use an entitlement: security.insecure
    /// (RUN --security=insecure runs privileged) or network.host; repeatable.
    #[arg(long = "allow-insecure-entitlement", value_name = "NAME")]
    pub allow_insecure_entitlements: Vec<String>,
    /// A docker config file (config.json, or a Kubernetes .dockerconfigjson) whose registry
    /// credentials pulls use when the build's client sends none.
    #[arg(long, value_name = "FILE")]
    pub registry_auth_file: Option<PathBuf>,
    /// containerd's registry host directory (its config_path: DIR/HOST/hosts.toml), whose
    /// mirrors and CAs apply to hosts the config file does not name (default
    /// /etc/containerd/certs.d when it exists).
    #[arg(long, value_name = "DIR")]
    pub containerd_hosts_dir: Option<PathBuf>,
    /// Group (name or gid) that owns the unix sockets; its members may use nodekitd.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

/// The effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub root: PathBuf,
    pub addrs: Vec<ListenAddr>,
    pub debug: bool,
    pub log_format: LogFormat,
    /// How long running builds may finish after SIGTERM (`--shutdown-grace`).
    pub shutdown_grace: std::time::Duration,
    /// The debug listener (`--debugaddr`, `[grpc] debugAddress`); none: off.
    pub debug_addr: Option<std::net::SocketAddr>,
    pub security: ListenerSecurity,
    /// What builds may be granted (`--allow-insecure-entitlement`, `insecure-entitlements`).
    pub entitlements: Entitlements,
    pub worker: WorkerConfig,
    pub cache: CacheConfig,
    /// What `debug workers` shows beyond what the worker finds itself.
    pub advertised: Advertised,
    /// `[frontend."gateway.v0"] enabled`: whether `--frontend gateway.v0` builds are taken.
    pub gateway_frontend: bool,
    /// `[frontend."gateway.v0"] allowedRepositories`: the frontend images that may run, as
    /// normalized names without tag (`docker.io/library/x`); empty: any.
    pub gateway_allowed_repositories: Vec<String>,
    /// `[limits]`: bounds on what a download or an archive extraction may write.
    pub limits: limits::ContentLimits,
    /// The config file's keys nodekitd ignores (`FILE:LINE: key: why`), logged at start.
    pub warnings: Vec<String>,
}

/// buildkitd's `platforms` and `labels` of the worker.
#[derive(Clone, Debug, Default)]
pub struct Advertised {
    /// Replaces the platforms the node can run (`worker.containerd.platforms`).
    pub platforms: Option<Vec<crate::oci::Platform>>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Running builds get this long to finish after SIGTERM (the install's DaemonSet gives the pod
/// a little more before it is killed).
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

/// How the build cache is kept in bounds.
#[derive(Clone, Debug, Default)]
pub struct CacheConfig {
    /// Run GC after builds and on a timer.
    pub gc: bool,
    /// The rules, in order; none: buildkitd's defaults for the disk.
    pub policies: Vec<cachestore::GcPolicy>,
    /// How long finished builds' history records are kept (`[history]`).
    pub history: cachestore::HistoryRetention,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path} asks for what nodekitd does not do:\n  {findings}")]
    Unsupported { path: PathBuf, findings: String },
    #[error("invalid --addr {addr:?}: {reason}")]
    Addr { addr: String, reason: String },
    #[error("invalid {key} {value:?}: expected {expected}")]
    Value {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("invalid --allow-insecure-entitlement: {0}")]
    Entitlement(String),
    #[error("invalid [frontend.\"gateway.v0\"] allowedRepositories: {0}")]
    AllowedRepository(String),
    #[error("invalid TLS settings: {0}")]
    Tls(String),
    #[error("invalid [registry.\"{host}\"]: {reason}")]
    Registry { host: String, reason: String },
    #[error("invalid platform {platform:?} in worker.containerd.platforms: {reason}")]
    Platform { platform: String, reason: String },
    #[error("invalid --group {group:?}: {reason}")]
    Group { group: String, reason: String },
}

impl Config {
    pub fn load(cli: Cli) -> Result<Config, ConfigError> {
        let (file, warnings) = match &cli.config {
            Some(path) => ConfigFile::read(path)?,
            None => Default::default(),
        };
        let mut config = Config::merge(cli, file)?;
        config.warnings = warnings;
        Ok(config)
    }

    /// The configuration a buildkitd.toml text gives with no flags, as `--config FILE` would load
    /// it (parsed, audited, merged with the defaults): the seam the config fuzz target drives.
    pub fn from_file_text(text: &str) -> Result<Config, ConfigError> {
        let (file, warnings) = ConfigFile::from_text(Path::new("buildkitd.toml"), text)?;
        let no_flags = Cli::parse_from(["nodekitd"]);
        let mut config = Config::merge(no_flags, file)?;
        config.warnings = warnings;
        Ok(config)
    }

    fn merge(cli: Cli, file: ConfigFile) -> Result<Config, ConfigError> {
        let root = cli
            .root
            .or(file.root)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        let addr_texts = first_non_empty(cli.addrs, file.grpc.address)
            .unwrap_or_else(|| vec![DEFAULT_UNIX_ADDR.into(), DEFAULT_TCP_ADDR.into()]);
        let addrs = addr_texts
            .iter()
            .map(|a| ListenAddr::parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        let security = ListenerSecurity {
            tls: security::tls_files(
                cli.tlscert.or(file.grpc.tls.cert),
                cli.tlskey.or(file.grpc.tls.key),
                cli.tlscacert.or(file.grpc.tls.ca),
            )?,
            socket_owner: SocketOwner {
                uid: file.grpc.uid,
                gid: match &cli.group {
                    Some(group) => Some(security::group_id(group)?),
                    None => file.grpc.gid,
                },
            },
        };
        let log_format = match cli.log_format.or(file.log.format).as_deref() {
            None | Some("" | "text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Value {
                    key: "--log-format",
                    value: other.into(),
                    expected: "text or json",
                })
            }
        };
        let shutdown_grace = match cli.shutdown_grace.or(file.shutdown_grace) {
            None => DEFAULT_SHUTDOWN_GRACE,
            Some(text) => humantime::parse_duration(&text).map_err(|_| ConfigError::Value {
                key: "--shutdown-grace",
                value: text.clone(),
                expected: "a duration such as 30s or 10m",
            })?,
        };
        let debug_addr = match cli.debugaddr.or(file.grpc.debug_address) {
            Some(text) => Some(debug_address(&text)?),
            None => None,
        };
        let entitlements = Entitlements::parse(
            &first_non_empty(cli.allow_insecure_entitlements, file.insecure_entitlements)
                .unwrap_or_default(),
        )
        .map_err(ConfigError::Entitlement)?;
        let containerd = file.worker.containerd;
        let advertised = Advertised {
            platforms: advertised_platforms(&containerd.platforms)?,
            labels: containerd.labels.clone(),
        };
        let cache = CacheConfig {
            gc: containerd.gc.unwrap_or(true),
            policies: containerd.gcpolicy.clone(),
            history: file.history.as_ref().map_or_else(Default::default, |h| {
                cachestore::HistoryRetention {
                    max_age: h.max_age,
                    max_entries: usize::try_from(h.max_entries).unwrap_or(usize::MAX),
                }
            }),
        };
        let mount_source_root = cli
            .local_mount_source_root
            .or(file.local_mount_source_root)
            .unwrap_or_else(|| default_mount_source_root(&root));
        let worker = WorkerConfig {
            socket: cli
                .containerd_worker_addr
                .or(containerd.address)
                .unwrap_or_else(|| DEFAULT_CONTAINERD.into()),
            namespace: cli
                .containerd_worker_namespace
                .or(containerd.namespace)
                .unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            snapshotter: cli
                .containerd_worker_snapshotter
                .or(containerd.snapshotter)
                .unwrap_or_else(|| DEFAULT_SNAPSHOTTER.into()),
            registry_hosts: registry::registry_hosts(
                &file.registry,
                cli.registry_auth_file.or(file.registry_auth_file),
                cli.containerd_hosts_dir.or(file.containerd_hosts_dir),
            )?,
            mount_source_root,
            emulation: Emulation {
                qemu_dir: cli
                    .qemu_dir
                    .or(file.qemu_dir)
                    .unwrap_or_else(|| DEFAULT_QEMU_DIR.into()),
                ..Emulation::default()
            },
            proxy: proxy::proxy_from(|name| std::env::var(name).ok()),
            dns: crate::worker::exec::Dns {
                nameservers: file.dns.nameservers,
                options: file.dns.options,
                search_domains: file.dns.search_domains,
            },
            // Replaced by the daemon's worker ID once it is known.
            owner: "nodekitd".into(),
        };
        Ok(Config {
            root,
            addrs,
            debug: cli.debug || file.debug,
            debug_addr,
            log_format,
            shutdown_grace,
            security,
            entitlements,
            worker,
            cache,
            advertised,
            gateway_frontend: file.frontend.gateway.enabled.unwrap_or(true),
            gateway_allowed_repositories: allowed_repositories(
                &file.frontend.gateway.allowed_repositories,
            )?,
            limits: file.limits.resolve()?,
            warnings: Vec::new(),
        })
    }
}

/// The allowed frontend repositories, normalized as buildkitd compares them.
fn allowed_repositories(names: &[String]) -> Result<Vec<String>, ConfigError> {
    names
        .iter()
        .map(|name| {
            nodekit_oci::Reference::parse_normalized(name)
                .map(|r| r.repository())
                .map_err(|e| ConfigError::AllowedRepository(format!("{name:?}: {}", e.0)))
        })
        .collect()
}

/// `host:port` (buildkitd's form), or `tcp://host:port`.
fn debug_address(text: &str) -> Result<std::net::SocketAddr, ConfigError> {
    let bare = text.strip_prefix("tcp://").unwrap_or(text);
    bare.parse().map_err(|_| ConfigError::Addr {
        addr: text.to_string(),
        reason: "the debug address is host:port with an IP address (e.g. 127.0.0.1:6060)".into(),
    })
}

fn advertised_platforms(
    texts: &[String],
) -> Result<Option<Vec<crate::oci::Platform>>, ConfigError> {
    if texts.is_empty() {
        return Ok(None);
    }
    texts
        .iter()
        .map(|text| {
            crate::oci::Platform::parse(text).map_err(|e| ConfigError::Platform {
                platform: text.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

pub fn default_mount_source_root(root: &Path) -> PathBuf {
    root.join("local-mnt-src")
}

fn first_non_empty(flags: Vec<String>, file: Vec<String>) -> Option<Vec<String>> {
    [flags, file].into_iter().find(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("nodekitd").chain(args.iter().copied()))
    }

    #[test]
    fn a_file_text_loads_as_the_file_would() {
        let config =
            Config::from_file_text("debug = true\n[worker.oci]\nenabled = false\n").unwrap();
        assert!(config.debug);
        assert_eq!(config.addrs.len(), 2);
        assert!(Config::from_file_text("root = \n").is_err());
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = Config::merge(cli(&[]), ConfigFile::default()).unwrap();
        assert_eq!(config.root, PathBuf::from(DEFAULT_ROOT));
        assert_eq!(config.addrs.len(), 2);
        assert_eq!(config.worker.namespace, "k8s.io");
        assert_eq!(config.worker.emulation.qemu_dir, PathBuf::from("/usr/bin"));
        assert_eq!(
            config.worker.mount_source_root,
            PathBuf::from("/var/lib/nodekit/local-mnt-src")
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = ConfigFile::parse(
            Path::new("t.toml"),
            "root = \"/file\"\nqemu-dir = \"/opt/qemu\"\n[worker.containerd]\nnamespace = \"fromfile\"\nsnapshotter = \"native\"\n[grpc]\naddress = [\"tcp://127.0.0.1:1\"]\n[registry.\"reg:5000\"]\nhttp = true\n",
        )
        .unwrap();
        let config =
            Config::merge(cli(&["--containerd-worker-namespace", "fromflag"]), file).unwrap();
        assert_eq!(config.root, PathBuf::from("/file"));
        assert_eq!(config.worker.emulation.qemu_dir, PathBuf::from("/opt/qemu"));
        assert_eq!(config.worker.namespace, "fromflag");
        assert_eq!(config.worker.snapshotter, "native");
        assert_eq!(
            config.addrs,
            vec![ListenAddr::parse("tcp://127.0.0.1:1").unwrap()]
        );
        assert_eq!(
            config.worker.registry_hosts.hosts["reg:5000"].http,
            Some(true)
        );
    }

    #[test]
    fn history_retention_defaults_only_without_the_table() {
        let merged = |text: &str| {
            let file = ConfigFile::parse(Path::new("t.toml"), text).unwrap();
            Config::merge(cli(&[]), file).unwrap().cache.history
        };
        assert_eq!(merged(""), cachestore::HistoryRetention::default());
        let set = merged("[history]\nmaxAge = \"1h30m\"\nmaxEntries = 7\n");
        assert_eq!(set.max_age, std::time::Duration::from_secs(5400));
        assert_eq!(set.max_entries, 7);
        // As buildkitd: a table without a key leaves it zero.
        let partial = merged("[history]\nmaxEntries = 3\n");
        assert_eq!(partial.max_age, std::time::Duration::ZERO);
        assert_eq!(merged("[history]\nmaxAge = 60\n").max_age.as_secs(), 60);
    }

    #[test]
    fn dns_settings_reach_the_worker() {
        let file = ConfigFile::parse(
            Path::new("t.toml"),
            "[dns]\nnameservers = [\"192.0.2.1\"]\nsearchDomains = [\"a.example\"]\noptions = [\"ndots:2\"]\n",
        )
        .unwrap();
        let dns = Config::merge(cli(&[]), file).unwrap().worker.dns;
        assert_eq!(dns.nameservers, ["192.0.2.1"]);
        assert_eq!(dns.search_domains, ["a.example"]);
        assert_eq!(dns.options, ["ndots:2"]);
    }

    #[test]
    fn the_debug_address_comes_from_the_flag_or_the_file() {
        let file = ConfigFile::parse(
            Path::new("t.toml"),
            "[grpc]\ndebugAddress = \"127.0.0.1:6060\"\n",
        )
        .unwrap();
        let config = Config::merge(cli(&[]), file).unwrap();
        assert_eq!(config.debug_addr, Some("127.0.0.1:6060".parse().unwrap()));
        let config = Config::merge(
            cli(&["--debugaddr", "tcp://127.0.0.1:7070"]),
            ConfigFile::default(),
        )
        .unwrap();
        assert_eq!(config.debug_addr, Some("127.0.0.1:7070".parse().unwrap()));
        let error =
            Config::merge(cli(&["--debugaddr", "localhost"]), ConfigFile::default()).unwrap_err();
        assert!(error.to_string().contains("localhost"), "{error}");
        assert_eq!(
            Config::merge(cli(&[]), ConfigFile::default())
                .unwrap()
                .debug_addr,
            None
        );
    }

    #[test]
    fn log_format_and_shutdown_grace() {
        let file = ConfigFile::parse(
            Path::new("t.toml"),
            "shutdown-grace = \"45s\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let config = Config::merge(cli(&[]), file).unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.shutdown_grace, std::time::Duration::from_secs(45));
        let config = Config::merge(cli(&[]), ConfigFile::default()).unwrap();
        assert_eq!(
            (config.log_format, config.shutdown_grace),
            (LogFormat::Text, DEFAULT_SHUTDOWN_GRACE)
        );
        let error =
            Config::merge(cli(&["--log-format", "xml"]), ConfigFile::default()).unwrap_err();
        assert!(
            error.to_string().contains("--log-format \"xml\""),
            "{error}"
        );
    }

    #[test]
    fn a_bad_address_is_reported() {
        let error = Config::merge(cli(&["--addr", "http://x"]), ConfigFile::default()).unwrap_err();
        assert!(error.to_string().contains("http://x"), "{error}");
    }
}
