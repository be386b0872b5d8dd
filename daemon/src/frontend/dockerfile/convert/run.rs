//! RUN: the command (exec form, shell form or heredoc script), its mounts and network, the
//! build ARGs in its environment, and upstream's history line.

use nodekit_dockerfile::{
    Heredoc, Mount, MountType, NetworkMode, RunInstruction, SecurityMode, ShareMode,
};
use nodekit_llb_builder::{
    scratch, CacheSharing, Chown, FileAction, Mkdir, Mkfile, Mount as LlbMount, OpOptions, Run,
    Secret, Ssh, State,
};
use nodekit_proto::pb::{self, NetMode};

use super::stage::StageBuilder;
use crate::frontend::dockerfile::options::ForcedNetwork;
use crate::solver::SolveError;

/// Where heredoc scripts with a shebang are mounted (as upstream).
const PIPES: &str = "/dev/pipes";

pub fn apply(
    stage: &mut StageBuilder<'_>,
    run: &RunInstruction,
    original: &str,
) -> Result<(), SolveError> {
    let (args, script) = command(stage, run);
    let mut step = stage
        .state
        .run(args.clone())
        .options(stage.op_options(&stage.step_name(original)));
    for (key, value) in stage.scope.run_env() {
        if stage.state.get_env(&key).is_none() {
            step = step.env(&key, &value);
        }
    }
    for (host, ip) in &stage.stages.extra_hosts {
        let ip = ip.parse().map_err(|_| {
            stage.scope.error(format!(
                "invalid IP address {ip:?} for host {host} in add-hosts"
            ))
        })?;
        step = step.add_extra_host(host, ip);
    }
    let sandbox = &stage.stages.run_sandbox;
    for limit in &sandbox.ulimits {
        step = step.add_ulimit(&limit.name, limit.soft, limit.hard);
    }
    if let Some(hostname) = &sandbox.hostname {
        step = step.hostname(hostname);
    }
    if let Some(proxy) = proxy_env(stage) {
        step = step.proxy_env(proxy);
    }
    step = match (run.network, sandbox.forced_network) {
        (NetworkMode::None, _) | (NetworkMode::Default, Some(ForcedNetwork::None)) => {
            step.network(NetMode::None)
        }
        (NetworkMode::Host, _) | (NetworkMode::Default, Some(ForcedNetwork::Host)) => {
            step.network(NetMode::Host)
        }
        (NetworkMode::Default, None) => step,
    };
    // Both need the build's entitlement; the solver checks it before anything runs.
    if run.security == SecurityMode::Insecure {
        step = step.security(pb::SecurityMode::Insecure);
    }
    if let Some(device) = run.devices.first() {
        return Err(stage.scope.error(format!(
            "RUN --device={}: CDI devices are not supported by nodekitd",
            device.name
        )));
    }
    if let Some(script) = script {
        step = step.mount(PIPES, LlbMount::bind(&script).readonly());
    }
    let mounts = run
        .resolve_mounts(stage.scope.expander())
        .map_err(|e| stage.scope.error(e))?;
    for mount in &mounts {
        step = add_mount(stage, step, mount)?;
    }
    stage.state = step.root();
    let history = history_line(stage, &args);
    stage.image.add_history(&history, false);
    Ok(())
}

/// The process arguments, and a scratch holding the heredoc script when it has a shebang.
fn command(
    stage: &StageBuilder<'_>,
    run: &RunInstruction,
) -> (Vec<String>, Option<nodekit_llb_builder::State>) {
    let Some(cmd) = run.command.shell_command() else {
        return (run.command.args.clone(), None);
    };
    let mut args = stage.shell();
    match run.heredocs.as_slice() {
        [doc] if cmd.trim_start().starts_with("<<") && !cmd.trim().contains(' ') => {
            let body = body_of(doc);
            if body.starts_with("#!") {
                let script = scratch().file(Mkfile::new(&doc.name, 0o755, body));
                return (vec![format!("{PIPES}/{}", doc.name)], Some(script));
            }
            args.push(body);
        }
        [] => args.push(cmd.to_string()),
        docs => {
            // The shell reads the heredocs itself: hand it the whole script.
            let mut script = cmd.to_string();
            for doc in docs {
                script.push('\n');
                script.push_str(&doc.content);
                script.push_str(&doc.name);
            }
            args.push(script);
        }
    }
    (args, None)
}

/// Proxy build args, which RUN gets without an ARG (kept out of the cache key and history).
fn proxy_env(stage: &StageBuilder<'_>) -> Option<nodekit_proto::pb::ProxyEnv> {
    let value = |name: &str| {
        let upper = stage
            .scope
            .build_arg(&name.to_uppercase())
            .map(String::from);
        upper
            .or_else(|| stage.scope.build_arg(name).map(String::from))
            .unwrap_or_default()
    };
    let proxy = nodekit_proto::pb::ProxyEnv {
        http_proxy: value("http_proxy"),
        https_proxy: value("https_proxy"),
        ftp_proxy: value("ftp_proxy"),
        no_proxy: value("no_proxy"),
        all_proxy: value("all_proxy"),
    };
    (proxy != nodekit_proto::pb::ProxyEnv::default()).then_some(proxy)
}

fn body_of(doc: &Heredoc) -> String {
    if doc.chomp {
        nodekit_dockerfile::chomp_heredoc_content(&doc.content)
    } else {
        doc.content.clone()
    }
}

fn add_mount(stage: &StageBuilder<'_>, step: Run, mount: &Mount) -> Result<Run, SolveError> {
    let target = mount.target.clone().unwrap_or_default();
    let from = || {
        stage
            .stages
            .source_state(mount.from.as_deref(), &stage.scope)
    };
    Ok(match mount.mount_type {
        MountType::Bind => {
            let mut bind =
                LlbMount::bind(&from()?).selector(mount.source.as_deref().unwrap_or("/"));
            bind = if mount.read_only {
                bind.readonly()
            } else {
                bind.no_output()
            };
            step.mount(&target, bind)
        }
        MountType::Cache => {
            let id = mount.cache_id.clone().unwrap_or_else(|| target.clone());
            let mut cache = LlbMount::cache(&id, sharing(mount.sharing));
            let source = mount.source.as_deref().filter(|s| clean_abs(s) != "/");
            let owned = mount.uid.is_some() || mount.gid.is_some() || mount.mode.is_some();
            if source.is_none() && owned {
                let base = if mount.from.is_some() {
                    from()?
                } else {
                    scratch()
                };
                cache = cache
                    .from(&owned_cache_base(base, mount))
                    .selector("/cache");
            } else if mount.from.is_some() {
                cache = cache.from(&from()?).selector(source.unwrap_or("/"));
            }
            if mount.read_only {
                cache = cache.readonly();
            }
            step.mount(&target, cache)
        }
        MountType::Tmpfs => step.mount(&target, LlbMount::tmpfs(mount.size_limit.unwrap_or(0))),
        MountType::Secret => step.secret(secret(mount)),
        MountType::Ssh => step.ssh(ssh(mount)),
    })
}

/// The base of a cache mount with `uid`, `gid` or `mode`: a `/cache` directory with that owner
/// and mode (upstream's way), mounted by selector. Its time is fixed so that the base, and so
/// the cache it starts, is the same in every build.
fn owned_cache_base(base: State, mount: &Mount) -> State {
    let owner = Chown::ids(mount.uid.unwrap_or(0), mount.gid.unwrap_or(0));
    let mkdir = Mkdir::new("/cache", mount.mode.unwrap_or(0o755))
        .chown(owner)
        .created(0);
    let name = "[internal] setting cache mount permissions";
    base.file_with(FileAction::new(mkdir), OpOptions::new().custom_name(name))
}

fn clean_abs(path: &str) -> String {
    nodekit_llb::pathutil::clean(&format!("/{path}"))
}

fn sharing(mode: Option<ShareMode>) -> CacheSharing {
    match mode {
        Some(ShareMode::Private) => CacheSharing::Private,
        Some(ShareMode::Locked) => CacheSharing::Locked,
        _ => CacheSharing::Shared,
    }
}

/// A secret mount: id defaults to the target's base name, target to /run/secrets/<id>.
fn secret(mount: &Mount) -> Secret {
    let id = mount.cache_id.clone().unwrap_or_else(|| {
        let target = mount.target.as_deref().unwrap_or_default();
        target.rsplit('/').next().unwrap_or_default().to_string()
    });
    let mut secret = match (&mount.env, &mount.target) {
        (Some(env), None) => Secret::env(&id, if env.is_empty() { &id } else { env }),
        (_, target) => Secret::file(
            &id,
            &target
                .clone()
                .unwrap_or_else(|| format!("/run/secrets/{id}")),
        ),
    };
    if let Some(mode) = mount.mode {
        secret = secret.mode(mode);
    }
    if mount.uid.is_some() || mount.gid.is_some() {
        secret = secret.owner(mount.uid.unwrap_or(0), mount.gid.unwrap_or(0));
    }
    if mount.required {
        secret
    } else {
        secret.optional()
    }
}

/// `--mount=type=ssh`: agent `id` (default `default`), at `target` (default
/// `/run/buildkit/ssh_agent.N`), optional unless `required`.
fn ssh(mount: &Mount) -> Ssh {
    let mut ssh = Ssh::new().id(mount.cache_id.as_deref().unwrap_or("default"));
    if let Some(target) = &mount.target {
        ssh = ssh.target(target);
    }
    if let Some(mode) = mount.mode {
        ssh = ssh.mode(mode);
    }
    if mount.uid.is_some() || mount.gid.is_some() {
        ssh = ssh.owner(mount.uid.unwrap_or(0), mount.gid.unwrap_or(0));
    }
    if mount.required {
        ssh
    } else {
        ssh.optional()
    }
}

/// `RUN |N A=1 B=2 /bin/sh -c cmd # buildkit`, as upstream records it.
fn history_line(stage: &StageBuilder<'_>, args: &[String]) -> String {
    let declared: Vec<String> = stage
        .scope
        .declared
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or_default()))
        .collect();
    let mut words = Vec::new();
    if !declared.is_empty() {
        words.push(format!("|{}", declared.len()));
        words.extend(declared);
    }
    words.extend(args.iter().cloned());
    format!("RUN {} # buildkit", words.join(" "))
}
