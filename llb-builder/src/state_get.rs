//! Reading a state's settings.

use nodekit_proto::pb;

use crate::state::State;

impl State {
    /// The value of an environment variable.
    pub fn get_env(&self, key: &str) -> Option<&str> {
        self.meta.env.get_str(key)
    }

    /// The environment as `KEY=value` strings, in the order runs get it.
    pub fn env_list(&self) -> Vec<String> {
        self.meta
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// The working directory.
    pub fn get_dir(&self) -> &str {
        &self.meta.dir
    }

    /// The user later runs run as ("" for the image's default).
    pub fn get_user(&self) -> &str {
        &self.meta.user
    }

    /// The hostname of later runs ("" for the default).
    pub fn get_hostname(&self) -> &str {
        &self.meta.hostname
    }

    /// The arguments set with [`State::args`].
    pub fn get_args(&self) -> &[String] {
        &self.meta.args
    }

    /// The network mode of later runs.
    pub fn get_network(&self) -> pb::NetMode {
        self.meta.network
    }

    /// The security mode of later runs.
    pub fn get_security(&self) -> pb::SecurityMode {
        self.meta.security
    }

    /// The state's platform, if it has one (else ops get the marshal default).
    pub fn get_platform(&self) -> Option<&pb::Platform> {
        self.meta.platform.as_ref()
    }

    /// The extra `/etc/hosts` entries of later runs.
    pub fn get_extra_hosts(&self) -> &[pb::HostIp] {
        &self.meta.extra_hosts
    }

    /// The resource limits of later runs.
    pub fn get_ulimits(&self) -> &[pb::Ulimit] {
        &self.meta.ulimits
    }

    /// The parent cgroup of later runs ("" for the default).
    pub fn get_cgroup_parent(&self) -> &str {
        &self.meta.cgroup_parent
    }
}
