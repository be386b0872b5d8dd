//! `State::run`: setting up an exec op (BuildKit's `State.Run` and its `RunOption`s).

use nodekit_proto::pb;

use crate::error::BuildError;
use crate::exec::ExecState;
use crate::mount::{Mount, Secret, Ssh};
use crate::options::OpOptions;
use crate::shlex::shlex_split;
use crate::state::State;

/// A run being set up: `state.run(args)`, then mounts and options, then [`root`](Run::root)
/// or [`finish`](Run::finish). Settings changed here (env, dir, user, …) apply to this run
/// only; the resulting states keep the settings of the state `run` was called on.
#[derive(Debug, Clone)]
pub struct Run {
    pub(crate) origin: State,
    pub(crate) process: State,
    pub(crate) error: Option<BuildError>,
    pub(crate) mounts: Vec<(String, Mount)>,
    pub(crate) secrets: Vec<Secret>,
    pub(crate) ssh: Vec<Ssh>,
    pub(crate) proxy: Option<pb::ProxyEnv>,
    pub(crate) valid_exit_codes: Option<Vec<i32>>,
    pub(crate) cdi_devices: Vec<pb::CdiDevice>,
    pub(crate) readonly_rootfs: bool,
    pub(crate) opts: OpOptions,
}

impl State {
    /// Runs `args` exactly as given (no shell) with this state as root filesystem and its env,
    /// working directory, user, network and security mode. No arguments: the state's
    /// [`args`](State::args).
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Run {
            origin: self.clone(),
            process: self.clone(),
            error: None,
            mounts: Vec::new(),
            secrets: Vec::new(),
            ssh: Vec::new(),
            proxy: None,
            valid_exit_codes: None,
            cdi_devices: Vec::new(),
            readonly_rootfs: false,
            opts: OpOptions::default(),
        }
        .args(args)
    }

    /// Runs a command line split into words as `llb.Shlex` does (no shell is involved).
    pub fn run_shlex(&self, line: &str) -> Run {
        self.run(Vec::<String>::new()).shlex(line)
    }
}

impl Run {
    /// Replaces the arguments (ignored when empty).
    pub fn args<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        if !args.is_empty() {
            self.process = self.process.args(args);
        }
        self
    }

    /// Replaces the arguments with `line` split into words (`llb.Shlex`).
    pub fn shlex(mut self, line: &str) -> Run {
        match shlex_split(line) {
            Ok(words) => self.process = self.process.args(words),
            Err(reason) => {
                let command = line.to_string();
                self.error = Some(BuildError::Shlex { command, reason });
            }
        }
        self
    }

    /// Mounts `mount` at `dest`.
    pub fn mount(mut self, dest: &str, mount: Mount) -> Run {
        self.mounts.push((dest.to_string(), mount));
        self
    }

    /// Adds a session secret, as a file or an environment variable.
    pub fn secret(mut self, secret: Secret) -> Run {
        self.secrets.push(secret);
        self
    }

    /// Forwards an SSH agent socket.
    pub fn ssh(mut self, ssh: Ssh) -> Run {
        self.ssh.push(ssh);
        self
    }

    /// Mounts the root filesystem read-only: the run then has no root output, and
    /// [`root`](Run::root) is the state `run` was called on.
    pub fn readonly_rootfs(mut self) -> Run {
        self.readonly_rootfs = true;
        self
    }

    /// Proxy variables for the run, kept out of the cache key (`llb.WithProxy`).
    pub fn proxy_env(mut self, proxy: pb::ProxyEnv) -> Run {
        self.proxy = Some(proxy);
        self
    }

    /// Exit codes that count as success (default, and for an empty list: only 0).
    pub fn valid_exit_codes(mut self, codes: &[i32]) -> Run {
        self.valid_exit_codes = (!codes.is_empty()).then(|| codes.to_vec());
        self
    }

    /// Requests a CDI device (`vendor.com/class=name`).
    pub fn cdi_device(mut self, name: &str, optional: bool) -> Run {
        let name = name.to_string();
        self.cdi_devices.push(pb::CdiDevice { name, optional });
        self
    }

    /// Sets an environment variable for this run.
    pub fn env(self, key: &str, value: &str) -> Run {
        self.with_process(|s| s.env(key, value))
    }

    /// Sets the working directory of this run (relative: joined to the state's).
    pub fn dir(self, dir: &str) -> Run {
        self.with_process(|s| s.dir(dir))
    }

    /// Sets the user of this run.
    pub fn user(self, user: &str) -> Run {
        self.with_process(|s| s.user(user))
    }

    /// Sets the hostname of this run.
    pub fn hostname(self, hostname: &str) -> Run {
        self.with_process(|s| s.hostname(hostname))
    }

    /// Sets the network mode of this run.
    pub fn network(self, mode: pb::NetMode) -> Run {
        self.with_process(|s| s.network(mode))
    }

    /// Sets the security mode of this run.
    pub fn security(self, mode: pb::SecurityMode) -> Run {
        self.with_process(|s| s.security(mode))
    }

    /// Adds an `/etc/hosts` entry for this run.
    pub fn add_extra_host(self, host: &str, ip: std::net::IpAddr) -> Run {
        self.with_process(|s| s.add_extra_host(host, ip))
    }

    /// Adds a resource limit for this run.
    pub fn add_ulimit(self, name: &str, soft: i64, hard: i64) -> Run {
        self.with_process(|s| s.add_ulimit(name, soft, hard))
    }

    /// Sets the parent cgroup of this run.
    pub fn cgroup_parent(self, parent: &str) -> Run {
        self.with_process(|s| s.cgroup_parent(parent))
    }

    /// The platform of the exec op; the resulting states take it too.
    pub fn platform(mut self, platform: pb::Platform) -> Run {
        self.opts = self.opts.platform(platform);
        self
    }

    /// The name progress output shows for the run.
    pub fn custom_name(mut self, name: &str) -> Run {
        self.opts = self.opts.custom_name(name);
        self
    }

    /// Never take this run's result from the cache.
    pub fn ignore_cache(mut self) -> Run {
        self.opts = self.opts.ignore_cache();
        self
    }

    /// Replaces the op options (name, platform, cache hints, …).
    pub fn options(mut self, opts: OpOptions) -> Run {
        self.opts = opts;
        self
    }

    /// The root filesystem after the run.
    pub fn root(self) -> State {
        self.finish().root()
    }

    /// Creates the exec op.
    pub fn finish(self) -> ExecState {
        ExecState::build(self)
    }

    fn with_process(mut self, change: impl FnOnce(&State) -> State) -> Run {
        self.process = change(&self.process);
        self
    }
}
