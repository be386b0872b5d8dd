//! Exec ops in protobuf form, as BuildKit's client writes them (`ExecOp.Marshal`).

use std::sync::Arc;

use nodekit_proto::pb;

use crate::error::BuildError;
use crate::exec::{ExecNode, MountSpec};
use crate::mount::{CacheSharing, MountKind, SecretTarget};
use crate::node::{op, InputList, Lowered, Resolve};
use crate::options::OpOptions;

/// The PATH BuildKit's client sets when the daemon doesn't (`system.DefaultPathEnvUnix`).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl ExecNode {
    /// The exec op, its inputs numbered in mount order, with the capabilities it needs.
    pub fn lower(&self, opts: &OpOptions, r: &dyn Resolve) -> Result<Lowered, BuildError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        if self.process.args.is_empty() {
            return Err(BuildError::NoArgs);
        }
        let mut caps = Vec::new();
        let meta = self.meta(r, &mut caps);
        let mut inputs = InputList::default();
        let mut mounts = Vec::with_capacity(self.mounts.len());
        for spec in &self.mounts {
            mount_caps(spec, &mut caps);
            mounts.push(self.mount(spec, &mut inputs, r)?);
        }
        mounts.extend(self.session_mounts(&mut caps));
        let exec = pb::ExecOp {
            meta: Some(meta),
            mounts,
            network: self.process.network as i32,
            security: self.process.security as i32,
            secretenv: self.secret_env(),
            cdi_devices: self.cdi_devices.clone(),
        };
        let platform = opts
            .platform
            .clone()
            .or_else(|| self.process.platform.clone());
        let platform = platform.unwrap_or_else(|| r.default_platform().clone());
        let op = op(inputs, pb::op::Op::Exec(exec), Some(platform));
        Ok(Lowered { op, caps })
    }

    fn meta(&self, r: &dyn Resolve, caps: &mut Vec<&'static str>) -> pb::Meta {
        let p = &self.process;
        let mut env = p.env.clone();
        if let Some(first) = self.ssh_targets().first() {
            if env.get("SSH_AUTH_SOCK").is_none() {
                env.set(Arc::from("SSH_AUTH_SOCK"), Arc::from(first.as_str()));
            }
        }
        if let Some(daemon_caps) = r.caps() {
            match daemon_caps.contains("exec.meta.setsdefaultpath") {
                true => caps.push("exec.meta.setsdefaultpath"),
                false if r.default_platform().os != "windows" => {
                    if env.get("PATH").is_none() {
                        env.set(Arc::from("PATH"), Arc::from(DEFAULT_PATH));
                    }
                }
                false => {}
            }
        }
        if self.valid_exit_codes.is_some() {
            caps.push("exec.validexitcode");
        }
        if !p.ulimits.is_empty() {
            caps.push("exec.meta.ulimit");
        }
        caps.extend(self.mode_caps());
        pb::Meta {
            args: p.args.clone(),
            env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            cwd: p.dir.clone(),
            user: p.user.clone(),
            proxy_env: self.proxy.clone(),
            extra_hosts: p.extra_hosts.clone(),
            hostname: p.hostname.clone(),
            ulimit: p.ulimits.clone(),
            cgroup_parent: p.cgroup_parent.clone(),
            remove_mount_stubs_recursive: true,
            valid_exit_codes: self.valid_exit_codes.clone().unwrap_or_default(),
        }
    }

    /// Capabilities for the network, security and proxy settings, and the base one.
    fn mode_caps(&self) -> Vec<&'static str> {
        let mut caps = Vec::new();
        if self.process.network != pb::NetMode::Unset {
            caps.push("exec.meta.network");
        }
        if self.process.security == pb::SecurityMode::Insecure {
            caps.push("exec.meta.security");
        }
        if self.proxy.is_some() {
            caps.push("exec.meta.proxyenv");
        }
        caps.push("exec.meta.base");
        caps
    }

    fn mount(
        &self,
        spec: &MountSpec,
        inputs: &mut InputList,
        r: &dyn Resolve,
    ) -> Result<pb::Mount, BuildError> {
        let input = match &spec.source {
            Some(source) => inputs.add(r.input(source)?),
            None => -1,
        };
        let mut mount = pb::Mount {
            input,
            selector: spec.selector.clone(),
            dest: spec.dest.clone(),
            output: spec.output.unwrap_or(-1),
            readonly: spec.readonly,
            ..pb::Mount::default()
        };
        match &spec.kind {
            MountKind::Bind => {}
            MountKind::Cache { id, sharing } => {
                mount.mount_type = pb::MountType::Cache as i32;
                let sharing = match sharing {
                    CacheSharing::Shared => pb::CacheSharingOpt::Shared,
                    CacheSharing::Private => pb::CacheSharingOpt::Private,
                    CacheSharing::Locked => pb::CacheSharingOpt::Locked,
                };
                let id = id.clone();
                mount.cache_opt = Some(pb::CacheOpt {
                    id,
                    sharing: sharing as i32,
                });
            }
            MountKind::Tmpfs { size } => {
                mount.mount_type = pb::MountType::Tmpfs as i32;
                mount.tmpfs_opt = Some(pb::TmpfsOpt { size: *size });
            }
        }
        Ok(mount)
    }

    /// Secret file mounts, then SSH socket mounts, after the sorted mounts.
    fn session_mounts(&self, caps: &mut Vec<&'static str>) -> Vec<pb::Mount> {
        let mut mounts = Vec::new();
        if !self.secrets.is_empty() {
            caps.push("exec.mount.secret");
        }
        if self
            .secrets
            .iter()
            .any(|s| matches!(s.target, SecretTarget::Env(_)))
        {
            caps.push("exec.secretenv");
        }
        for secret in &self.secrets {
            let SecretTarget::File(dest) = &secret.target else {
                continue;
            };
            let opt = pb::SecretOpt {
                id: secret.id.clone(),
                uid: secret.uid,
                gid: secret.gid,
                mode: secret.mode,
                optional: secret.optional,
            };
            mounts.push(session_mount(dest, pb::MountType::Secret, |m| {
                m.secret_opt = Some(opt)
            }));
        }
        if !self.ssh.is_empty() {
            caps.push("exec.mount.ssh");
        }
        for (ssh, dest) in self.ssh.iter().zip(self.ssh_targets()) {
            let opt = pb::SshOpt {
                id: ssh.id.clone(),
                uid: ssh.uid,
                gid: ssh.gid,
                mode: ssh.mode,
                optional: ssh.optional,
            };
            mounts.push(session_mount(&dest, pb::MountType::Ssh, |m| {
                m.ssh_opt = Some(opt)
            }));
        }
        if !self.cdi_devices.is_empty() {
            caps.push("exec.meta.cdi");
        }
        mounts
    }

    /// Where each SSH socket goes (default `/run/buildkit/ssh_agent.<n>`).
    fn ssh_targets(&self) -> Vec<String> {
        let target = |(i, ssh): (usize, &crate::mount::Ssh)| {
            if ssh.target.is_empty() {
                format!("/run/buildkit/ssh_agent.{i}")
            } else {
                ssh.target.clone()
            }
        };
        self.ssh.iter().enumerate().map(target).collect()
    }

    fn secret_env(&self) -> Vec<pb::SecretEnv> {
        let env = |s: &crate::mount::Secret| match &s.target {
            SecretTarget::Env(name) => Some(pb::SecretEnv {
                id: s.id.clone(),
                name: name.clone(),
                optional: s.optional,
            }),
            SecretTarget::File(_) => None,
        };
        self.secrets.iter().filter_map(env).collect()
    }
}

fn session_mount(dest: &str, kind: pb::MountType, set: impl FnOnce(&mut pb::Mount)) -> pb::Mount {
    let mut mount = pb::Mount {
        input: -1,
        dest: dest.to_string(),
        mount_type: kind as i32,
        ..pb::Mount::default()
    };
    set(&mut mount);
    mount
}

fn mount_caps(spec: &MountSpec, caps: &mut Vec<&'static str>) {
    if !spec.selector.is_empty() {
        caps.push("exec.mount.selector");
    }
    match &spec.kind {
        MountKind::Cache { .. } => caps.extend(["exec.mount.cache", "exec.mount.cache.sharing"]),
        MountKind::Tmpfs { size } => {
            caps.push("exec.mount.tmpfs");
            if *size > 0 {
                caps.push("exec.mount.tmpfs.size");
            }
        }
        MountKind::Bind if spec.source.is_some() => caps.push("exec.mount.bind"),
        MountKind::Bind => {}
    }
}
