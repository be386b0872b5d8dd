//! `State`: one output of the graph plus the settings ops built on it inherit.

use std::net::IpAddr;
use std::sync::Arc;

use nodekit_llb::pathutil;
use nodekit_proto::pb;

use crate::environment::Environment;
use crate::node::Output;
use crate::platform::normalize_platform;

/// An immutable handle on one output of the graph (or scratch: nothing), with the process
/// settings later [`run`](State::run)s use and the directory relative file paths resolve
/// against (BuildKit's `llb.State`). Cloning is cheap; every setter returns a new state.
#[derive(Debug, Clone)]
pub struct State {
    pub(crate) output: Option<Output>,
    pub(crate) meta: Arc<Meta>,
}

/// What a state carries besides its output (BuildKit's state values).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Meta {
    /// In the order BuildKit's client writes them: a key set again moves to the end.
    pub env: Environment,
    pub dir: String,
    pub user: String,
    pub hostname: String,
    pub args: Vec<String>,
    pub network: pb::NetMode,
    pub security: pb::SecurityMode,
    pub platform: Option<pb::Platform>,
    pub extra_hosts: Vec<pb::HostIp>,
    pub ulimits: Vec<pb::Ulimit>,
    pub cgroup_parent: String,
}

impl Default for Meta {
    fn default() -> Meta {
        Meta {
            env: Environment::default(),
            dir: "/".to_string(),
            user: String::new(),
            hostname: String::new(),
            args: Vec::new(),
            network: pb::NetMode::Unset,
            security: pb::SecurityMode::Sandbox,
            platform: None,
            extra_hosts: Vec::new(),
            ulimits: Vec::new(),
            cgroup_parent: String::new(),
        }
    }
}

impl State {
    /// A fresh state on `output` (BuildKit's `NewState`): default settings, working directory
    /// "/", and the output's platform if it has one.
    pub(crate) fn new(output: Option<Output>) -> State {
        let state = State {
            output: None,
            meta: Arc::new(Meta::default()),
        };
        match output {
            Some(output) => state.with_output(output),
            None => state,
        }
    }

    /// This state's settings on another output (BuildKit's `WithOutput`).
    pub(crate) fn with_output(&self, output: Output) -> State {
        let mut next = self.clone();
        if let Some(platform) = output.platform() {
            Arc::make_mut(&mut next.meta).platform = Some(normalize_platform(platform));
        }
        next.output = Some(output);
        next
    }

    /// Whether the state is empty (scratch).
    pub fn is_scratch(&self) -> bool {
        self.output.is_none()
    }

    /// Sets an environment variable for later runs (it moves to the end of the list).
    pub fn env(&self, key: impl Into<String>, value: impl Into<String>) -> State {
        let key: Arc<str> = Arc::from(key.into());
        let value: Arc<str> = Arc::from(value.into());
        self.with_meta(|m| {
            m.env.set(key, value);
        })
    }

    /// Sets the working directory; a relative one is joined to the current one.
    pub fn dir(&self, dir: impl Into<String>) -> State {
        let dir = dir.into();
        self.with_meta(|m| {
            if !dir.starts_with('/') {
                let prev = if m.dir.is_empty() {
                    "/"
                } else {
                    m.dir.as_str()
                };
                m.dir = pathutil::join(&[prev, &dir]);
            } else {
                m.dir = dir;
            }
        })
    }

    /// Sets the user later runs run as ("name", "uid", "uid:gid").
    pub fn user(&self, user: impl Into<String>) -> State {
        self.with_meta(|m| m.user = user.into())
    }

    /// Sets the hostname of later runs' containers.
    pub fn hostname(&self, hostname: impl Into<String>) -> State {
        self.with_meta(|m| m.hostname = hostname.into())
    }

    /// Sets the arguments later runs use when `run` is given none.
    pub fn args<I, S>(&self, args: I) -> State
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args = args.into_iter().map(Into::into).collect();
        self.with_meta(|m| m.args = args)
    }

    /// Sets the network mode of later runs.
    pub fn network(&self, mode: pb::NetMode) -> State {
        self.with_meta(|m| m.network = mode)
    }

    /// Sets the security mode of later runs (`Insecure` needs the daemon's entitlement).
    pub fn security(&self, mode: pb::SecurityMode) -> State {
        self.with_meta(|m| m.security = mode)
    }

    /// Sets the platform of later runs and of the image config an export writes (normalised).
    pub fn platform(&self, platform: pb::Platform) -> State {
        self.with_meta(|m| m.platform = Some(normalize_platform(&platform)))
    }

    /// Adds a host name to IP mapping to later runs' `/etc/hosts`.
    pub fn add_extra_host(&self, host: &str, ip: IpAddr) -> State {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        let entry = pb::HostIp {
            host: host.to_string(),
            ip: ip.to_string(),
        };
        self.with_meta(|m| m.extra_hosts.push(entry))
    }

    /// Adds a resource limit (`nofile`, `nproc`, …) to later runs.
    pub fn add_ulimit(&self, name: &str, soft: i64, hard: i64) -> State {
        let limit = pb::Ulimit {
            name: name.to_string(),
            soft,
            hard,
        };
        self.with_meta(|m| m.ulimits.push(limit))
    }

    /// Sets the parent cgroup of later runs' containers.
    pub fn cgroup_parent(&self, parent: impl Into<String>) -> State {
        self.with_meta(|m| m.cgroup_parent = parent.into())
    }

    fn with_meta(&self, change: impl FnOnce(&mut Meta)) -> State {
        let mut next = self.clone();
        change(Arc::make_mut(&mut next.meta));
        next
    }
}
