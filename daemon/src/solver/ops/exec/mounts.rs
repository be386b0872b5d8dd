//! The mounts of one step: the root and writable bind mounts become active snapshots, read-only
//! ones views, a selector binds a sub-path of a host-mounted snapshot, and cache, tmpfs, secret
//! and SSH agent mounts come from their own places. Everything held for the step is in [`MountPlan`].

use nodekit_proto::pb::{self, CacheSharingOpt, ExecOp, MountType};

use super::{secrets, ssh};
use crate::solver::error::SolveError;
use crate::solver::ops::OpContext;
use crate::solver::result::Ref;
use crate::worker::cache_mounts::CacheMount;
use crate::worker::exec::{ExtraMount, MountSource};
use crate::worker::{ActiveSnapshot, Mounts, ViewMount};

/// A writable snapshot the step runs on, and the output it becomes (if any).
pub struct Writable {
    pub active: ActiveSnapshot,
    pub input: Ref,
    pub output: Option<usize>,
}

#[derive(Default)]
pub struct MountPlan {
    /// Root first.
    pub writables: Vec<Writable>,
    pub extra: Vec<ExtraMount>,
    /// Host mounts (selectors, secret files) that must stay while the step runs.
    host_mounts: Vec<ViewMount>,
    /// Cache snapshots in use (and their turns) while the step runs.
    caches: Vec<CacheMount>,
    /// SSH agents forwarded into the step.
    agents: Vec<ssh::Forwarded>,
}

impl MountPlan {
    /// Prepares every mount; returns the root's snapshot.
    pub async fn prepare(
        &mut self,
        op: &OpContext<'_>,
        exec: &ExecOp,
        inputs: &[Ref],
    ) -> Result<ActiveSnapshot, SolveError> {
        let mut rootfs = None;
        for mount in &exec.mounts {
            match MountType::try_from(mount.mount_type) {
                Ok(MountType::Bind) if mount.dest == "/" => {
                    rootfs = Some(self.writable(op, mount, inputs).await?)
                }
                Ok(MountType::Bind) => self.bind(op, mount, inputs).await?,
                Ok(MountType::Tmpfs) => self.extra.push(tmpfs(mount)),
                Ok(MountType::Cache) => self.cache(op, mount, inputs).await?,
                Ok(MountType::Secret) => {
                    if let Some((extra, held)) = secrets::mount(op, mount).await? {
                        self.extra.push(extra);
                        self.host_mounts.push(held);
                    }
                }
                Ok(MountType::Ssh) => {
                    if let Some((extra, forwarded)) = ssh::mount(op, mount).await? {
                        self.extra.push(extra);
                        self.agents.push(forwarded);
                    }
                }
                Err(_) => {
                    return Err(SolveError::InvalidDefinition(format!(
                        "mount {} has an unknown type",
                        mount.dest
                    )))
                }
            }
        }
        rootfs.ok_or_else(|| SolveError::InvalidDefinition("exec has no root mount".into()))
    }

    /// Drops what was held for the step; returns the writable snapshots.
    pub fn release(self) -> Vec<Writable> {
        drop((self.agents, self.host_mounts, self.caches));
        self.writables
    }

    async fn writable(
        &mut self,
        op: &OpContext<'_>,
        mount: &pb::Mount,
        inputs: &[Ref],
    ) -> Result<ActiveSnapshot, SolveError> {
        let input = mount_input(mount, inputs)?;
        let active = op.prepare(&input).await?;
        let output = usize::try_from(mount.output).ok();
        self.writables.push(Writable {
            active: active.clone(),
            input,
            output,
        });
        Ok(active)
    }

    async fn bind(
        &mut self,
        op: &OpContext<'_>,
        mount: &pb::Mount,
        inputs: &[Ref],
    ) -> Result<(), SolveError> {
        let (mounts, readonly, host) = if mount.readonly {
            let input = mount_input(mount, inputs)?;
            match selector(mount) {
                None => (view_mounts(op, mount, &input).await?, true, None),
                Some(_) => (Mounts::default(), true, Some(op.view(&input).await?)),
            }
        } else {
            let active = self.writable(op, mount, inputs).await?;
            match selector(mount) {
                None => (active.mounts.clone(), false, None),
                Some(_) => (Mounts::default(), false, Some(op.mount_active(&active)?)),
            }
        };
        let source = match (host, selector(mount)) {
            (Some(host), Some(path)) => {
                let source = resolve_selector(host.path(), path, &mount.dest)?;
                self.host_mounts.push(host);
                MountSource::Bind { source, readonly }
            }
            _ => MountSource::Snapshot { mounts, readonly },
        };
        self.extra.push(ExtraMount {
            destination: mount.dest.clone(),
            source,
        });
        Ok(())
    }

    async fn cache(
        &mut self,
        op: &OpContext<'_>,
        mount: &pb::Mount,
        inputs: &[Ref],
    ) -> Result<(), SolveError> {
        let options = mount.cache_opt.as_ref().ok_or_else(|| {
            SolveError::InvalidDefinition(format!(
                "cache mount {} has no cache options",
                mount.dest
            ))
        })?;
        let sharing = CacheSharingOpt::try_from(options.sharing).unwrap_or(CacheSharingOpt::Shared);
        let base = mount_input(mount, inputs)?.chain_id();
        let id = if options.id.is_empty() {
            mount.dest.as_str()
        } else {
            options.id.as_str()
        };
        let cache = op
            .solver
            .cache_mounts
            .acquire(id, sharing, base.as_deref())
            .await
            .map_err(|e| SolveError::worker(format!("opening cache mount {id}"), e))?;
        let source = match selector(mount) {
            None => MountSource::Snapshot {
                mounts: cache.mounts.clone(),
                readonly: mount.readonly,
            },
            // A sub-directory of the cache (e.g. the owned `/cache` of `uid=`/`gid=`/`mode=`):
            // the cache is mounted on the host, the directory bound into the container.
            Some(path) => {
                let host = op
                    .solver
                    .worker
                    .mount_cache(&cache.mounts)
                    .map_err(|e| SolveError::worker(format!("mounting cache {id}"), e))?;
                let source = resolve_selector(host.path(), path, &mount.dest);
                self.host_mounts.push(host);
                MountSource::Bind {
                    source: source?,
                    readonly: mount.readonly,
                }
            }
        };
        self.extra.push(ExtraMount {
            destination: mount.dest.clone(),
            source,
        });
        self.caches.push(cache);
        Ok(())
    }
}

fn tmpfs(mount: &pb::Mount) -> ExtraMount {
    let size_bytes = mount
        .tmpfs_opt
        .as_ref()
        .map(|t| t.size)
        .filter(|s| *s > 0)
        .map(|s| s as u64);
    ExtraMount {
        destination: mount.dest.clone(),
        source: MountSource::Tmpfs { size_bytes },
    }
}

fn selector(mount: &pb::Mount) -> Option<&str> {
    Some(mount.selector.as_str()).filter(|s| !s.is_empty() && *s != "/" && *s != ".")
}

/// The host path of `selector` inside the mounted snapshot at `root` (symlinks stay inside).
fn resolve_selector(
    root: &std::path::Path,
    selector: &str,
    dest: &str,
) -> Result<std::path::PathBuf, SolveError> {
    let path = nodekit_fileop::resolve_in_root(root, selector, true)
        .map_err(|e| SolveError::Other(format!("mount {dest}: {e}")))?;
    if path.exists() {
        Ok(path)
    } else {
        Err(SolveError::InvalidDefinition(format!(
            "mount {dest}: {selector} does not exist in its source"
        )))
    }
}

fn mount_input(mount: &pb::Mount, inputs: &[Ref]) -> Result<Ref, SolveError> {
    if mount.input < 0 {
        return Ok(Ref::default()); // scratch
    }
    inputs.get(mount.input as usize).cloned().ok_or_else(|| {
        SolveError::InvalidDefinition(format!(
            "mount {} refers to missing input {}",
            mount.dest, mount.input
        ))
    })
}

async fn view_mounts(
    op: &OpContext<'_>,
    mount: &pb::Mount,
    input: &Ref,
) -> Result<Mounts, SolveError> {
    let key = format!("nodekit-view-{}", crate::worker::random_suffix());
    op.solver
        .worker
        .snapshots()
        .view_mounts(
            &op.lease().await?.context(),
            &key,
            input.chain_id().as_deref(),
        )
        .await
        .map_err(|e| SolveError::worker(format!("mounting {}", mount.dest), e))
}
