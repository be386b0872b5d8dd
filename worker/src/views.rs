//! Read-only host mounts of committed snapshots: the gateway reads result files through them
//! and file operations read their sources from them. The view snapshot belongs to the lease.

use super::error::WorkerResult;
use super::hostmount::HostMount;
use super::{random_suffix, Lease, Mounts, Worker};

pub use super::hostmount::HostMount as ViewMount;

impl Worker {
    /// Mounts the committed snapshot `chain_id` (None: an empty directory) read-only on the host,
    /// under local-mount-source-root; unmounted when the returned value drops.
    pub async fn mount_view(
        &self,
        lease: &Lease,
        chain_id: Option<&str>,
    ) -> WorkerResult<ViewMount> {
        let name = format!("nodekit-view-{}", random_suffix());
        let mounts = self
            .snapshots()
            .view(&lease.context(), &name, chain_id)
            .await?;
        let target = self.mount_source_root().join("views").join(&name);
        HostMount::mount(&mounts, &target)
    }
}

impl Worker {
    /// Mounts a writable snapshot on the host (for file operations and context copies);
    /// unmounted when the returned value drops, before the snapshot is committed.
    pub fn mount_active(&self, active: &super::ActiveSnapshot) -> WorkerResult<ViewMount> {
        let target = self.mount_source_root().join("active").join(&active.key);
        HostMount::mount(&active.mounts.0, &target)
    }

    /// A cache mount's snapshot (its containerd mounts) mounted on the host.
    pub fn mount_cache(&self, mounts: &Mounts) -> WorkerResult<ViewMount> {
        let target = self
            .mount_source_root()
            .join("caches")
            .join(random_suffix());
        HostMount::mount(&mounts.0, &target)
    }
}

impl Worker {
    /// A fresh private tmpfs under local-mount-source-root for a step's secret files, so
    /// secrets never touch the disk; unmounted and removed when dropped.
    pub fn secret_dir(&self) -> WorkerResult<ViewMount> {
        let target = self
            .mount_source_root()
            .join("secrets")
            .join(random_suffix());
        let tmpfs = containerd_client::types::Mount {
            r#type: "tmpfs".into(),
            source: "tmpfs".into(),
            options: ["nosuid", "nodev", "noexec", "mode=0700", "size=16m"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        };
        HostMount::mount(&[tmpfs], &target)
    }
}
