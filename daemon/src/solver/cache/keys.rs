//! LLB ops mapped onto the cache store's canonical key encoding (`cachestore::key`, version 1).
//!
//! Each op kind writes its semantic fields in a fixed order, omitting default values (so a
//! field added later keeps existing keys), then its platform and the keys of its inputs. Never
//! written: names, descriptions, progress groups (all in OpMetadata, which is not the op), an
//! ExecOp's ProxyEnv, a cache mount's contents, a secret's value. Sources are keyed by content
//! after they are read (see [`image_key`], [`content_key`]).

use cachestore::key::Fields;
use cachestore::{CacheKey, KeyEncoder};
use nodekit_proto::pb::{self, file_action::Action, op::Op as OpKind};

/// The key of an op that is not a source, over the keys of its inputs (in input order); None
/// for kinds that are not cached (build ops).
pub fn op_key(op: &pb::Op, inputs: &[CacheKey]) -> Option<CacheKey> {
    let mut key = match op.op.as_ref()? {
        OpKind::Exec(exec) => exec_fields(exec),
        OpKind::File(file) => file_fields(file),
        OpKind::Merge(merge) => {
            let mut key = KeyEncoder::new("merge");
            key.u64_list("inputs_order", merge.inputs.iter().map(|i| i.input as u64));
            key
        }
        OpKind::Diff(diff) => {
            let mut key = KeyEncoder::new("diff");
            key.opt_u64("lower", diff.lower.as_ref().map(|l| l.input as u64));
            key.opt_u64("upper", diff.upper.as_ref().map(|u| u.input as u64));
            key
        }
        _ => return None,
    };
    finish(&mut key, op.platform.as_ref(), inputs);
    Some(key.finish())
}

/// The key of an image source: its resolved manifest digest (never the tag) and platform.
pub fn image_key(
    manifest_digest: &str,
    platform: &crate::oci::Platform,
    layer_limit: Option<u64>,
) -> CacheKey {
    let mut key = KeyEncoder::new("source.image");
    key.str("manifest", manifest_digest);
    if let Some(limit) = layer_limit {
        key.u64("layer_limit", limit);
    }
    key.platform(
        &platform.os,
        &platform.architecture,
        platform.variant.as_deref().unwrap_or_default(),
    );
    key.finish()
}

/// The key of a source read by content (`local://`: the tree digest of the selected files;
/// `http(s)://`: the downloaded file's digest with its name, mode and owner).
pub fn content_key(kind: &str, content: &str, attrs: &[(&str, String)]) -> CacheKey {
    let mut key = KeyEncoder::new(kind);
    key.str("content", content);
    for (name, value) in attrs.iter().filter(|(_, v)| !v.is_empty()) {
        key.str(name, value);
    }
    key.finish()
}

/// The key of scratch (the empty result).
pub fn scratch_key() -> CacheKey {
    KeyEncoder::new("scratch").finish()
}

fn finish(key: &mut KeyEncoder, platform: Option<&pb::Platform>, inputs: &[CacheKey]) {
    if let Some(p) = platform.filter(|p| !p.os.is_empty()) {
        key.platform(&p.os, &p.architecture, &p.variant);
        if !p.os_version.is_empty() {
            key.str("os_version", &p.os_version);
        }
        if !p.os_features.is_empty() {
            key.str_list("os_features", &p.os_features);
        }
    }
    key.inputs(inputs);
}

fn exec_fields(exec: &pb::ExecOp) -> KeyEncoder {
    let mut key = KeyEncoder::new("exec");
    if let Some(meta) = &exec.meta {
        key.structure("meta", |f| meta_fields(f, meta));
    }
    key.struct_list("mounts", &exec.mounts, mount_fields);
    non_zero(&mut key, "network", exec.network as i64);
    non_zero(&mut key, "security", exec.security as i64);
    if !exec.secretenv.is_empty() {
        key.struct_list("secret_env", &exec.secretenv, |f, s| {
            f.str("id", &s.id).str("name", &s.name);
            flag(f, "optional", s.optional);
        });
    }
    if !exec.cdi_devices.is_empty() {
        key.struct_list("cdi_devices", &exec.cdi_devices, |f, d| {
            f.str("name", &d.name);
            flag(f, "optional", d.optional);
        });
    }
    key
}

/// The process: its ProxyEnv is left out on purpose (proxies must not change keys).
fn meta_fields(f: &mut Fields, meta: &pb::Meta) {
    f.str_list("args", &meta.args).str_list("env", &meta.env);
    text(f, "cwd", &meta.cwd);
    text(f, "user", &meta.user);
    if !meta.extra_hosts.is_empty() {
        f.struct_list("extra_hosts", &meta.extra_hosts, |f, h| {
            f.str("host", &h.host).str("ip", &h.ip);
        });
    }
    text(f, "hostname", &meta.hostname);
    if !meta.ulimit.is_empty() {
        f.struct_list("ulimits", &meta.ulimit, |f, u| {
            f.str("name", &u.name)
                .i64("soft", u.soft)
                .i64("hard", u.hard);
        });
    }
    text(f, "cgroup_parent", &meta.cgroup_parent);
    flag(
        f,
        "remove_mount_stubs_recursive",
        meta.remove_mount_stubs_recursive,
    );
    if !meta.valid_exit_codes.is_empty() {
        let codes = meta.valid_exit_codes.iter().map(|c| *c as u64);
        f.u64_list("valid_exit_codes", codes);
    }
}

fn mount_fields(f: &mut Fields, mount: &pb::Mount) {
    f.i64("input", mount.input).str("dest", &mount.dest);
    text(f, "selector", &mount.selector);
    f.i64("output", mount.output);
    flag(f, "readonly", mount.readonly);
    non_zero(f, "type", mount.mount_type as i64);
    if let Some(tmpfs) = &mount.tmpfs_opt {
        f.structure("tmpfs", |f| non_zero(f, "size", tmpfs.size));
    }
    if let Some(cache) = &mount.cache_opt {
        f.structure("cache", |f| {
            f.str("id", &cache.id);
            non_zero(f, "sharing", cache.sharing as i64);
        });
    }
    if let Some(secret) = &mount.secret_opt {
        let owned = (
            &secret.id,
            secret.uid,
            secret.gid,
            secret.mode,
            secret.optional,
        );
        f.structure("secret", |f| owned_fields(f, owned));
    }
    if let Some(ssh) = &mount.ssh_opt {
        let owned = (&ssh.id, ssh.uid, ssh.gid, ssh.mode, ssh.optional);
        f.structure("ssh", |f| owned_fields(f, owned));
    }
}

/// A secret or SSH mount: its id, owner, mode and whether it may be missing.
fn owned_fields(f: &mut Fields, (id, uid, gid, mode, optional): (&String, u32, u32, u32, bool)) {
    f.str("id", id)
        .u64("uid", uid.into())
        .u64("gid", gid.into())
        .u64("mode", mode.into());
    flag(f, "optional", optional);
}

fn file_fields(file: &pb::FileOp) -> KeyEncoder {
    let mut key = KeyEncoder::new("file");
    key.struct_list("actions", &file.actions, |f, action| {
        f.i64("input", action.input)
            .i64("secondary_input", action.secondary_input)
            .i64("output", action.output);
        match &action.action {
            Some(Action::Copy(copy)) => {
                f.structure("copy", |f| copy_fields(f, copy));
            }
            Some(Action::Mkfile(mkfile)) => {
                f.structure("mkfile", |f| {
                    f.str("path", &mkfile.path)
                        .i64("mode", mkfile.mode.into())
                        .bytes("data", &mkfile.data);
                    owner(f, mkfile.owner.as_ref());
                    non_zero(f, "timestamp", mkfile.timestamp);
                });
            }
            Some(Action::Mkdir(mkdir)) => {
                f.structure("mkdir", |f| {
                    f.str("path", &mkdir.path).i64("mode", mkdir.mode.into());
                    flag(f, "make_parents", mkdir.make_parents);
                    owner(f, mkdir.owner.as_ref());
                    non_zero(f, "timestamp", mkdir.timestamp);
                });
            }
            Some(Action::Rm(rm)) => {
                f.structure("rm", |f| {
                    f.str("path", &rm.path);
                    flag(f, "allow_not_found", rm.allow_not_found);
                    flag(f, "allow_wildcard", rm.allow_wildcard);
                });
            }
            Some(Action::Symlink(link)) => {
                f.structure("symlink", |f| {
                    f.str("oldpath", &link.oldpath)
                        .str("newpath", &link.newpath);
                    owner(f, link.owner.as_ref());
                    non_zero(f, "timestamp", link.timestamp);
                });
            }
            None => {}
        }
    });
    key
}

fn copy_fields(f: &mut Fields, copy: &pb::FileActionCopy) {
    f.str("src", &copy.src).str("dest", &copy.dest);
    owner(f, copy.owner.as_ref());
    non_zero(f, "mode", copy.mode.into());
    text(f, "mode_str", &copy.mode_str);
    for (name, set) in [
        ("follow_symlink", copy.follow_symlink),
        ("dir_copy_contents", copy.dir_copy_contents),
        ("attempt_unpack", copy.attempt_unpack_docker_compatibility),
        ("create_dest_path", copy.create_dest_path),
        ("allow_wildcard", copy.allow_wildcard),
        ("allow_empty_wildcard", copy.allow_empty_wildcard),
        ("always_replace", copy.always_replace_existing_dest_paths),
    ] {
        flag(f, name, set);
    }
    non_zero(f, "timestamp", copy.timestamp);
    for (name, list) in [
        ("include_patterns", &copy.include_patterns),
        ("exclude_patterns", &copy.exclude_patterns),
        ("required_paths", &copy.required_paths),
    ] {
        if !list.is_empty() {
            f.str_list(name, list);
        }
    }
}

fn owner(f: &mut Fields, owner: Option<&pb::ChownOpt>) {
    let Some(owner) = owner else {
        return;
    };
    f.structure("owner", |f| {
        for (name, user) in [("user", &owner.user), ("group", &owner.group)] {
            match user.as_ref().and_then(|u| u.user.as_ref()) {
                Some(pb::user_opt::User::ById(id)) => {
                    f.u64(name, (*id).into());
                }
                Some(pb::user_opt::User::ByName(named)) => {
                    f.structure(name, |f| {
                        f.str("name", &named.name).i64("input", named.input);
                    });
                }
                None => {}
            }
        }
    });
}

fn text(f: &mut Fields, name: &str, value: &str) {
    if !value.is_empty() {
        f.str(name, value);
    }
}

fn flag(f: &mut Fields, name: &str, value: bool) {
    if value {
        f.bool(name, true);
    }
}

fn non_zero(f: &mut Fields, name: &str, value: i64) {
    if value != 0 {
        f.i64(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(args: &[&str], proxy: Option<&str>) -> pb::Op {
        let meta = pb::Meta {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            proxy_env: proxy.map(|p| pb::ProxyEnv {
                http_proxy: p.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let root = pb::Mount {
            input: 0,
            dest: "/".into(),
            output: 0,
            ..Default::default()
        };
        let cache = pb::Mount {
            input: -1,
            dest: "/cache".into(),
            output: -1,
            mount_type: pb::MountType::Cache as i32,
            cache_opt: Some(pb::CacheOpt {
                id: "go".into(),
                sharing: 0,
            }),
            ..Default::default()
        };
        pb::Op {
            op: Some(OpKind::Exec(pb::ExecOp {
                meta: Some(meta),
                mounts: vec![root, cache],
                ..Default::default()
            })),
            platform: Some(pb::Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn key_of(op: &pb::Op) -> String {
        op_key(op, &[scratch_key()])
            .expect("an exec is cached")
            .to_hex()
    }

    /// Golden vectors: a change here changes every cached key on every node; make it on purpose.
    #[test]
    fn keys_are_pinned() {
        assert_eq!(
            key_of(&exec(&["sh", "-c", "make"], None)),
            "165a914dee4ab372281e23741b84133cbdfcc5901ac3b2f88ea70b4c91c13df2"
        );
        assert_eq!(
            scratch_key().to_hex(),
            "4015bc02e5b47a11a81544072237582d9cd1ae39c24127de46e9391838e34f7b"
        );
        let platform = crate::oci::Platform::new("linux", "arm64", None);
        assert_eq!(
            image_key(
                "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                &platform,
                None
            )
            .to_hex(),
            "7545c4790d175d01fcba067da53f71616ad5581be361382e10843761382af711"
        );
    }

    #[test]
    fn proxies_stay_out_of_keys_and_commands_go_in() {
        let plain = key_of(&exec(&["sh", "-c", "make"], None));
        assert_eq!(
            plain,
            key_of(&exec(&["sh", "-c", "make"], Some("http://proxy:3128")))
        );
        assert_ne!(plain, key_of(&exec(&["sh", "-c", "make all"], None)));
        let other_input = op_key(
            &exec(&["sh", "-c", "make"], None),
            &[content_key("x", "y", &[])],
        );
        assert_ne!(Some(plain), other_input.map(|k| k.to_hex()));
    }
}
