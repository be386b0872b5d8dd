//! The OCI runtime spec of a build step: containerd's defaults (namespaces, capabilities,
//! masked paths, devices) plus the step's process, user, mounts and network mode.

use std::collections::HashSet;
use std::path::PathBuf;

use containerd_client::types::Mount as ContainerdMount;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};

use super::user::ResolvedUser;
use crate::error::{WorkerError, WorkerResult};
use crate::snapshots::Mounts;

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// A step's hostname unless it asks for another.
const DEFAULT_HOSTNAME: &str = "nodekit";

/// How a step reaches the network. BuildKit without CNI uses the host's network by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkMode {
    #[default]
    Host,
    /// A network namespace with only `lo`.
    None,
}

/// What an extra mount shows at its destination.
#[derive(Clone, Debug)]
pub enum MountSource {
    /// A host path (it must lie under local-mount-source-root).
    Bind { source: PathBuf, readonly: bool },
    /// A fresh tmpfs.
    Tmpfs { size_bytes: Option<u64> },
    /// A containerd snapshot's mounts (another step's result).
    Snapshot { mounts: Mounts, readonly: bool },
}

#[derive(Clone, Debug)]
pub struct ExtraMount {
    pub destination: String,
    pub source: MountSource,
}

/// The process a step runs.
#[derive(Clone, Debug, Default)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Working directory; empty means `/`.
    pub cwd: String,
    /// `name`, `uid`, `name:group` or `uid:gid`; empty means root.
    pub user: String,
    /// Extra /etc/hosts entries (host, IP).
    pub extra_hosts: Vec<(String, String)>,
}

/// What a step may do beyond the defaults (ExecOp's security mode, hostname and ulimits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// `RUN --security=insecure`: every capability, every device, writable /sys and cgroups,
    /// no masked paths (as `docker run --privileged`).
    pub privileged: bool,
    /// The container's hostname; none: nodekit's own.
    pub hostname: Option<String>,
    /// Resource limits (`nofile`, `nproc`, ...); none: the containerd shim's own, as BuildKit.
    pub rlimits: Vec<Rlimit>,
}

impl Sandbox {
    /// The container's hostname (and the name /etc/hosts gives 127.0.0.1).
    pub fn hostname(&self) -> &str {
        self.hostname.as_deref().unwrap_or(DEFAULT_HOSTNAME)
    }
}

/// One resource limit, as BuildKit's `Ulimit` (`name` without `RLIMIT_`, any case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rlimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Everything the spec needs besides the defaults.
pub struct SpecInput<'a> {
    pub container_id: &'a str,
    pub namespace: &'a str,
    pub process: &'a ProcessSpec,
    pub user: &'a ResolvedUser,
    pub mounts: &'a [ExtraMount],
    pub network: NetworkMode,
    pub sandbox: &'a Sandbox,
    /// Host files the step sees as /etc/hosts and /etc/resolv.conf.
    pub etc_hosts: PathBuf,
    pub etc_resolv_conf: PathBuf,
}

pub fn build_spec(input: &SpecInput<'_>) -> WorkerResult<Spec> {
    let mut spec = Spec::default();
    spec.set_version("1.0.2".into());
    spec.set_hostname(Some(input.sandbox.hostname().into()));
    spec.set_root(Some(
        RootBuilder::default()
            .path("rootfs")
            .readonly(false)
            .build()
            .map_err(invalid)?,
    ));
    spec.set_process(Some(process(input)?));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    if input.sandbox.privileged {
        mounts = mounts.into_iter().map(writable).collect();
    }
    mounts.extend(etc_mounts(input)?);
    for extra in input.mounts {
        mounts.extend(extra_mount(extra)?);
    }
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(linux(input)?));
    Ok(spec)
}

fn process(input: &SpecInput<'_>) -> WorkerResult<oci_spec::runtime::Process> {
    let caps: HashSet<Capability> = if input.sandbox.privileged {
        all_capabilities()
    } else {
        default_capabilities()
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(invalid)?;
    let user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid)
        .additional_gids(input.user.additional_gids.clone())
        .build()
        .map_err(invalid)?;
    let cwd = if input.process.cwd.is_empty() {
        "/"
    } else {
        &input.process.cwd
    };
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .args(input.process.args.clone())
        .env(env_with_path(&input.process.env))
        .cwd(cwd)
        .user(user)
        .capabilities(capabilities)
        .no_new_privileges(false)
        .build()
        .map_err(invalid)?;
    // None unless the step asks: the process keeps the shim's limits, as under BuildKit.
    process.set_rlimits(rlimits(&input.sandbox.rlimits)?);
    Ok(process)
}

fn rlimits(limits: &[Rlimit]) -> WorkerResult<Option<Vec<oci_spec::runtime::PosixRlimit>>> {
    if limits.is_empty() {
        return Ok(None);
    }
    limits
        .iter()
        .map(|limit| {
            let name = format!("RLIMIT_{}", limit.name.to_ascii_uppercase());
            let typ = name
                .parse::<PosixRlimitType>()
                .map_err(|_| WorkerError::Exec(format!("unknown ulimit {:?}", limit.name)))?;
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(limit.soft)
                .hard(limit.hard)
                .build()
                .map_err(invalid)
        })
        .collect::<WorkerResult<Vec<_>>>()
        .map(Some)
}

/// A default mount (/sys, cgroups) made writable for a privileged step.
fn writable(mut mount: Mount) -> Mount {
    if let Some(options) = mount.options().clone() {
        let options = options.into_iter().filter(|o| o != "ro").collect();
        mount.set_options(Some(options));
    }
    mount
}

/// Adds the default PATH when the step's environment has none, as BuildKit does.
pub fn env_with_path(env: &[String]) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    env
}

/// containerd's default capability set (oci.defaultUnixCaps).
fn default_capabilities() -> HashSet<Capability> {
    use Capability::*;
    [
        Chown,
        DacOverride,
        Fsetid,
        Fowner,
        Mknod,
        NetRaw,
        Setgid,
        Setuid,
        Setfcap,
        Setpcap,
        NetBindService,
        SysChroot,
        Kill,
        AuditWrite,
    ]
    .into_iter()
    .collect()
}

/// Every capability this process may pass on (its bounding set), as containerd's
/// `WithAllCurrentCapabilities` for `--privileged`: asking runc for one beyond it fails.
pub fn all_capabilities() -> HashSet<Capability> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .unwrap_or(0);
    capabilities_in(bounding)
}

/// The capabilities of a kernel bit mask (bit N: capability number N).
fn capabilities_in(mask: u64) -> HashSet<Capability> {
    use Capability::*;
    // In the kernel's numbering (linux/capability.h).
    let numbered = [
        Chown,
        DacOverride,
        DacReadSearch,
        Fowner,
        Fsetid,
        Kill,
        Setgid,
        Setuid,
        Setpcap,
        LinuxImmutable,
        NetBindService,
        NetBroadcast,
        NetAdmin,
        NetRaw,
        IpcLock,
        IpcOwner,
        SysModule,
        SysRawio,
        SysChroot,
        SysPtrace,
        SysPacct,
        SysAdmin,
        SysBoot,
        SysNice,
        SysResource,
        SysTime,
        SysTtyConfig,
        Mknod,
        Lease,
        AuditWrite,
        AuditControl,
        Setfcap,
        MacOverride,
        MacAdmin,
        Syslog,
        WakeAlarm,
        BlockSuspend,
        AuditRead,
        Perfmon,
        Bpf,
        CheckpointRestore,
    ];
    numbered
        .into_iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, capability)| capability)
        .collect()
}

fn etc_mounts(input: &SpecInput<'_>) -> WorkerResult<Vec<Mount>> {
    let bind = |destination: &str, source: &PathBuf| bind_mount(destination, source, true);
    Ok(vec![
        bind("/etc/hosts", &input.etc_hosts)?,
        bind("/etc/resolv.conf", &input.etc_resolv_conf)?,
    ])
}

fn bind_mount(destination: &str, source: &PathBuf, readonly: bool) -> WorkerResult<Mount> {
    let mode = if readonly { "ro" } else { "rw" };
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(vec![
            "rbind".to_string(),
            mode.to_string(),
            "nosuid".into(),
            "nodev".into(),
        ])
        .build()
        .map_err(invalid)
}

fn extra_mount(extra: &ExtraMount) -> WorkerResult<Vec<Mount>> {
    match &extra.source {
        MountSource::Bind { source, readonly } => {
            Ok(vec![bind_mount(&extra.destination, source, *readonly)?])
        }
        MountSource::Tmpfs { size_bytes } => {
            let mut options = vec!["nosuid".to_string(), "nodev".into(), "mode=1777".into()];
            if let Some(size) = size_bytes {
                options.push(format!("size={size}"));
            }
            Ok(vec![MountBuilder::default()
                .destination(extra.destination.as_str())
                .typ("tmpfs")
                .source("tmpfs")
                .options(options)
                .build()
                .map_err(invalid)?])
        }
        MountSource::Snapshot { mounts, readonly } => mounts
            .0
            .iter()
            .map(|m| snapshot_mount(&extra.destination, m, *readonly))
            .collect(),
    }
}

/// A containerd mount (bind or overlay) placed at `destination` inside the container.
fn snapshot_mount(
    destination: &str,
    mount: &ContainerdMount,
    readonly: bool,
) -> WorkerResult<Mount> {
    let mut options: Vec<String> = mount
        .options
        .iter()
        .filter(|o| *o != "rw" && *o != "ro")
        .cloned()
        .collect();
    options.push(if readonly { "ro".into() } else { "rw".into() });
    MountBuilder::default()
        .destination(destination)
        .typ(mount.r#type.as_str())
        .source(mount.source.as_str())
        .options(options)
        .build()
        .map_err(invalid)
}

fn linux(input: &SpecInput<'_>) -> WorkerResult<oci_spec::runtime::Linux> {
    let privileged = input.sandbox.privileged;
    let devices = LinuxDeviceCgroupBuilder::default()
        .allow(privileged)
        .access("rwm")
        .build()
        .map_err(invalid)?;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![devices])
        .build()
        .map_err(invalid)?;
    let defaults = oci_spec::runtime::Linux::default();
    let hidden = |paths: &Option<Vec<String>>| {
        if privileged {
            Vec::new()
        } else {
            paths.clone().unwrap_or_default()
        }
    };
    LinuxBuilder::default()
        .namespaces(namespaces(input.network)?)
        .resources(resources)
        .cgroups_path(format!("/{}/{}", input.namespace, input.container_id))
        .masked_paths(hidden(defaults.masked_paths()))
        .readonly_paths(hidden(defaults.readonly_paths()))
        .build()
        .map_err(invalid)
}

fn namespaces(network: NetworkMode) -> WorkerResult<Vec<LinuxNamespace>> {
    let mut kinds = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if network == NetworkMode::None {
        kinds.push(LinuxNamespaceType::Network);
    }
    kinds
        .into_iter()
        .map(|typ| {
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(invalid)
        })
        .collect()
}

fn invalid(error: impl std::fmt::Display) -> WorkerError {
    WorkerError::Exec(format!("invalid runtime spec: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_for(network: NetworkMode, mounts: &[ExtraMount]) -> Spec {
        spec_in(network, mounts, &Sandbox::default())
    }

    fn spec_in(network: NetworkMode, mounts: &[ExtraMount], sandbox: &Sandbox) -> Spec {
        let process = ProcessSpec {
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["A=1".into()],
            cwd: String::new(),
            user: "builder".into(),
            extra_hosts: Vec::new(),
        };
        let user = ResolvedUser {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![50],
        };
        build_spec(&SpecInput {
            container_id: "c1",
            namespace: "k8s.io",
            process: &process,
            user: &user,
            mounts,
            network,
            sandbox,
            etc_hosts: "/root/m/c1/hosts".into(),
            etc_resolv_conf: "/root/m/c1/resolv.conf".into(),
        })
        .unwrap()
    }

    #[test]
    fn a_default_step_keeps_the_shims_limits_and_a_privileged_one_gets_everything() {
        let spec = spec_for(NetworkMode::Host, &[]);
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.rlimits(), &None);
        let caps = process.capabilities().as_ref().unwrap();
        assert!(!caps
            .effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        let linux = spec.linux().as_ref().unwrap();
        assert!(!linux.masked_paths().as_ref().unwrap().is_empty());

        let sandbox = Sandbox {
            privileged: true,
            hostname: Some("builder-7".into()),
            rlimits: vec![Rlimit {
                name: "nofile".into(),
                soft: 4096,
                hard: 8192,
            }],
        };
        let spec = spec_in(NetworkMode::Host, &[], &sandbox);
        assert_eq!(spec.hostname().as_deref(), Some("builder-7"));
        let process = spec.process().as_ref().unwrap();
        let limits = process.rlimits().as_ref().unwrap();
        assert_eq!(limits[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((limits[0].soft(), limits[0].hard()), (4096, 8192));
        let caps = process.capabilities().as_ref().unwrap();
        assert!(caps
            .effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
        let devices = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert!(devices[0].allow());
        let sys = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == std::path::Path::new("/sys"))
            .unwrap();
        assert!(!sys.options().as_ref().unwrap().iter().any(|o| o == "ro"));
    }

    #[test]
    fn capability_masks_follow_the_kernels_numbering() {
        let caps = capabilities_in(0b1 | 1 << 21 | 1 << 40);
        let expected: HashSet<_> = [
            Capability::Chown,
            Capability::SysAdmin,
            Capability::CheckpointRestore,
        ]
        .into_iter()
        .collect();
        assert_eq!(caps, expected);
        assert_eq!(capabilities_in(u64::MAX).len(), 41);
    }

    #[test]
    fn host_network_shares_the_host_namespace() {
        let spec = spec_for(NetworkMode::Host, &[]);
        let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(!namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network));
        let spec = spec_for(NetworkMode::None, &[]);
        let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network));
    }

    #[test]
    fn process_has_user_cwd_and_default_path() {
        let spec = spec_for(NetworkMode::Host, &[]);
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.user().uid(), 1000);
        assert_eq!(process.user().additional_gids().clone().unwrap(), vec![50]);
        assert_eq!(process.cwd().to_str(), Some("/"));
        assert_eq!(process.env().clone().unwrap()[0], DEFAULT_PATH);
    }

    #[test]
    fn extra_mounts_are_placed() {
        let mounts = [
            ExtraMount {
                destination: "/cache".into(),
                source: MountSource::Tmpfs {
                    size_bytes: Some(1024),
                },
            },
            ExtraMount {
                destination: "/src".into(),
                source: MountSource::Bind {
                    source: "/root/m/src".into(),
                    readonly: true,
                },
            },
        ];
        let spec = spec_for(NetworkMode::Host, &mounts);
        let json = serde_json::to_string(&spec).unwrap();
        assert!(
            json.contains(r#""destination":"/cache","type":"tmpfs""#),
            "{json}"
        );
        assert!(json.contains(r#""source":"/root/m/src""#), "{json}");
        assert!(json.contains(r#""cgroupsPath":"/k8s.io/c1""#), "{json}");
    }
}
