//! The containerd worker: everything that talks to the node's containerd. Images resolve from
//! the host image store, steps run as containerd containers on snapshots, results become layers
//! and images in the same store.

pub mod cache_leases;
pub mod cache_mounts;
pub mod chains;
mod channel;
mod codec;
mod compress;
mod connection;
mod content;
mod context;
mod descriptor;
mod disk;
pub mod emulation;
mod error;
pub mod exec;
mod hostmount;
mod image_history;
mod image_index;
mod image_writer;
pub mod images;
mod layer_blobs;
pub mod layers;
pub mod leases;
mod leftovers;
mod overlay_mount;
mod snapshots;
mod stats;
mod upperdir;
mod views;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;

pub use channel::ContainerdChannel;
pub use compress::LayerCompression;
pub use connection::{connect, connect_with_backoff, ContainerdInfo};
pub use context::CallContext;
pub use descriptor::Descriptor;
use error::StatusExt;
pub use error::{RegistryOperation, WorkerError, WorkerResult};
pub use exec::{ExecOutcome, ExecRequest, OutputChunk, OutputStream};
pub use image_index::{IndexEntry, IndexWrite};
pub use image_writer::{ImageWrite, ManifestAnnotations, ManifestFormat, NewLayer, WrittenImage};
pub use images::{
    CredentialSource, Credentials, HostConfig, ImageOrigin, NoClient, RegistryHosts, ResolveMode,
    ResolvedImage,
};
pub use layers::{CommittedLayer, Compression};
pub use leases::Lease;
pub use snapshots::{ActiveSnapshot, Mounts, Snapshots};
pub use stats::{LayersWritten, StatsSnapshot};
pub use views::ViewMount;

use nodekit_oci::Platform;

/// How long [`Worker::check`] waits for containerd.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How to reach and use containerd.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub socket: PathBuf,
    pub namespace: String,
    pub snapshotter: String,
    pub registry_hosts: RegistryHosts,
    /// Every host path bind-mounted into a step lives below this directory.
    pub mount_source_root: PathBuf,
    /// How steps of foreign platforms run.
    pub emulation: emulation::Emulation,
    /// The daemon's proxy settings, given to steps whose LLB carries none.
    pub proxy: Option<nodekit_proto::pb::ProxyEnv>,
    /// What steps resolve names with (`[dns]`); empty: the host's resolv.conf.
    pub dns: exec::Dns,
    /// The value of the owner label on this worker's leases: leftovers of an earlier run of the
    /// same daemon (a crash) are recognised by it and released at start.
    pub owner: String,
}

/// A handle on the containerd worker; cheap to clone.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    channel: ContainerdChannel,
    stats: Arc<stats::WorkerStats>,
    ctx: CallContext,
    config: WorkerConfig,
    containerd: ContainerdInfo,
    /// Deletions of dropped leases still in flight (and other short background work).
    releases: TaskTracker,
    /// Steps running or being torn down (see [`Worker::spawn_step`]).
    steps: TaskTracker,
    parsed_images: images::ParsedImages,
}

impl Worker {
    /// Connects once, failing within seconds with an error naming the socket.
    pub async fn connect(config: WorkerConfig) -> WorkerResult<Worker> {
        let (channel, info) = connect(&config.socket).await?;
        Worker::with_channel(config, channel, info)
    }

    pub fn with_channel(
        config: WorkerConfig,
        channel: Channel,
        containerd: ContainerdInfo,
    ) -> WorkerResult<Worker> {
        prepare_mount_source_root(&config.mount_source_root)?;
        let stats = Arc::new(stats::WorkerStats::default());
        Ok(Worker {
            inner: Arc::new(Inner {
                channel: ContainerdChannel::new(channel, stats.clone(), &config.socket),
                stats,
                ctx: CallContext::new(config.namespace.clone()),
                config,
                containerd,
                releases: TaskTracker::new(),
                steps: TaskTracker::new(),
                parsed_images: Default::default(),
            }),
        })
    }

    /// The channel to containerd (it counts failed calls for [`Worker::stats`]).
    pub fn channel(&self) -> &ContainerdChannel {
        &self.inner.channel
    }

    /// The worker's counters now: layer blobs written, failed containerd calls.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    pub(crate) fn counters(&self) -> &stats::WorkerStats {
        &self.inner.stats
    }

    /// Calls in the worker's namespace, without a lease.
    pub fn ctx(&self) -> &CallContext {
        &self.inner.ctx
    }

    pub fn snapshotter(&self) -> &str {
        &self.inner.config.snapshotter
    }

    pub fn snapshots(&self) -> Snapshots {
        Snapshots::new(self.inner.channel.clone(), &self.inner.config.snapshotter)
    }

    pub fn registry_hosts(&self) -> &RegistryHosts {
        &self.inner.config.registry_hosts
    }

    pub fn mount_source_root(&self) -> &Path {
        &self.inner.config.mount_source_root
    }

    pub fn containerd(&self) -> &ContainerdInfo {
        &self.inner.containerd
    }

    /// Images already read from the content store, by target digest and platform.
    pub fn parsed_images(&self) -> &images::ParsedImages {
        &self.inner.parsed_images
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// Whether containerd answers now (its Version call, within a few seconds): readiness
    /// while nodekitd runs, e.g. during a restart of containerd.
    pub async fn check(&self) -> WorkerResult<()> {
        use containerd_client::services::v1::version_client::VersionClient;
        let mut client = VersionClient::new(self.inner.channel.clone());
        let asked = client.version(());
        match tokio::time::timeout(CHECK_TIMEOUT, asked).await {
            Ok(answer) => answer.op("version").map(drop),
            Err(_) => Err(WorkerError::Unreachable {
                socket: self.inner.config.socket.clone(),
                reason: format!("no answer within {CHECK_TIMEOUT:?}"),
            }),
        }
    }

    /// A lease protecting what is created through its context; release it when done.
    pub async fn lease(&self, purpose: &str) -> WorkerResult<Lease> {
        Lease::create(
            self.inner.channel.clone(),
            &self.inner.ctx,
            purpose,
            &self.inner.config.owner,
        )
        .await
        .map(|lease| lease.tracked_by(&self.inner.releases))
    }

    /// Runs `work` as one of the background tasks [`Worker::settle`] waits for, so a shutdown
    /// does not cut it off between containerd's answer and our bookkeeping: a lease's creation
    /// or release, the record of a build its client left.
    pub fn spawn_tracked<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.releases.spawn(work)
    }

    /// Runs a step (its container's life, from creation to deletion) as one of the tasks
    /// [`Worker::finish_steps`] waits for. Apart from [`Worker::spawn_tracked`]'s: a prune
    /// settles the releases but must not wait for steps, which may run for long.
    pub(crate) fn spawn_step<F>(&self, step: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.steps.spawn(step)
    }

    /// Runs containerd's garbage collection and waits for it (containerd 1.6 offers it only as
    /// the synchronous deletion of a lease, so an empty one is made and deleted), as upstream
    /// does after a prune: what was released is off the disk when this returns.
    pub async fn collect_garbage(&self) -> WorkerResult<()> {
        self.lease("gc").await?.release_and_collect().await
    }

    /// Waits (up to `limit`) for the tracked background work still in flight (see
    /// [`Worker::spawn_tracked`]), e.g. the deletions of dropped leases.
    pub async fn settle(&self, limit: std::time::Duration) {
        if !wait_tracked(&self.inner.releases, limit).await {
            tracing::warn!("some leases were not released in time");
        }
    }

    /// Waits (up to `limit`) for every step to end and be torn down (a stopping daemon, whose
    /// builds were cancelled: their tasks and containers must not outlive it).
    pub async fn finish_steps(&self, limit: std::time::Duration) {
        if !wait_tracked(&self.inner.steps, limit).await {
            tracing::warn!("some steps were not torn down in time; left for the next start");
        }
    }

    /// Resolves an image for `platform`: host image store first, registry when absent.
    pub async fn resolve_image(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> WorkerResult<ResolvedImage> {
        images::resolve(self, reference, platform, ResolveMode::Default, &NoClient).await
    }

    /// Resolves an image for `platform` the way `mode` asks (see [`ResolveMode`]); a pull asks
    /// `credentials` (the build's client) first.
    pub async fn resolve_image_with(
        &self,
        reference: &str,
        platform: &Platform,
        mode: ResolveMode,
        credentials: &dyn CredentialSource,
    ) -> WorkerResult<ResolvedImage> {
        images::resolve(self, reference, platform, mode, credentials).await
    }

    /// A whole blob of the content store (a config, a manifest).
    pub async fn read_blob(&self, digest: &str) -> WorkerResult<Vec<u8>> {
        content::read_blob(self.channel(), self.ctx(), digest).await
    }

    /// The size of blob `digest` in the content store, or None when it has no such blob.
    pub async fn blob_size(&self, digest: &str) -> WorkerResult<Option<u64>> {
        let info = content::info(self.channel(), self.ctx(), digest).await?;
        Ok(info.map(|info| info.size.max(0) as u64))
    }

    /// Streams blob `digest` into `sink` in containerd's chunks (bounded memory).
    pub async fn read_blob_into(
        &self,
        digest: &str,
        sink: mpsc::Sender<Vec<u8>>,
    ) -> WorkerResult<()> {
        content::read_blob_chunks(self.channel(), self.ctx(), digest, sink).await
    }

    /// Writes a blob of `size` bytes from `chunks` under `lease`; containerd verifies `digest`
    /// on commit. Returns whether it was written (false: the store had it).
    pub async fn write_blob_from<S, B>(
        &self,
        lease: &Lease,
        digest: &str,
        size: u64,
        chunks: S,
    ) -> WorkerResult<bool>
    where
        S: futures::Stream<Item = Result<B, std::io::Error>> + Send + 'static,
        B: AsRef<[u8]> + Send + 'static,
    {
        let size = i64::try_from(size)
            .map_err(|_| WorkerError::Exec(format!("blob {digest}: size {size} too large")))?;
        content::write_blob_stream(
            self.channel(),
            &lease.context(),
            digest,
            size,
            chunks,
            Default::default(),
        )
        .await
    }

    /// Unpacks the image's layers as chain-ID snapshots; returns the top one.
    pub async fn unpack(
        &self,
        lease: &Lease,
        image: &ResolvedImage,
    ) -> WorkerResult<Option<String>> {
        snapshots::unpack(self, &lease.context(), image).await
    }

    /// A writable snapshot on top of `parent` (a committed snapshot; None for scratch).
    pub async fn prepare(
        &self,
        lease: &Lease,
        parent: Option<&str>,
    ) -> WorkerResult<ActiveSnapshot> {
        let key = format!("nodekit-active-{}", random_suffix());
        let mounts = self
            .snapshots()
            .prepare(&lease.context(), &key, parent)
            .await?;
        Ok(ActiveSnapshot {
            key,
            parent: parent.map(str::to_string),
            mounts: Mounts(mounts),
        })
    }

    /// Removes an active snapshot that is not going to be committed.
    pub async fn discard(&self, active: ActiveSnapshot) -> WorkerResult<()> {
        self.snapshots().remove(self.ctx(), &active.key).await
    }

    /// Runs a process on an active snapshot; see [`exec::exec`].
    pub async fn exec(
        &self,
        request: ExecRequest,
        output: Option<mpsc::Sender<OutputChunk>>,
        cancel: CancellationToken,
    ) -> WorkerResult<ExecOutcome> {
        exec::exec(self, request, output, cancel).await
    }

    /// Computes the layer of `active` and commits it under its chain ID.
    pub async fn commit_layer(
        &self,
        lease: &Lease,
        active: ActiveSnapshot,
        compression: Compression,
    ) -> WorkerResult<CommittedLayer> {
        layers::commit_layer(self, &lease.context(), active, compression).await
    }

    /// Makes sure the stack `layers` exists as chain-ID snapshots; returns the top chain ID.
    pub async fn apply_chain(
        &self,
        lease: &Lease,
        layers: &[chains::LayerBlob],
        what: &str,
    ) -> WorkerResult<Option<String>> {
        chains::apply_chain(self, &lease.context(), layers, what).await
    }

    /// The uncompressed layer between two committed snapshots (None: empty).
    pub async fn diff_snapshots(
        &self,
        lease: &Lease,
        lower: Option<&str>,
        upper: Option<&str>,
    ) -> WorkerResult<Descriptor> {
        layers::diff_snapshots(self, &lease.context(), lower, upper).await
    }

    /// Makes sure the content store has `blob`, the uncompressed layer a step committed as
    /// `snapshot` (see [`layer_blobs`]), held by `lease`.
    pub async fn ensure_layer_blob(
        &self,
        lease: &Lease,
        snapshot: &str,
        blob: &Descriptor,
    ) -> WorkerResult<()> {
        layer_blobs::ensure_built_blob(self, &lease.context(), snapshot, blob).await
    }

    /// The `compression` copy of an uncompressed layer blob (the blob itself for Uncompressed).
    pub async fn compress_layer(
        &self,
        lease: &Lease,
        tar: &Descriptor,
        compression: Compression,
    ) -> WorkerResult<Descriptor> {
        compress::compress_layer(self, &lease.context(), tar, compression).await
    }

    /// `source`, a layer blob whose tar is `diff_id`, in the compression `target` asks for:
    /// itself when it is in that compression, else a kept or new copy.
    pub async fn convert_layer(
        &self,
        lease: &Lease,
        source: &Descriptor,
        diff_id: &str,
        target: LayerCompression,
    ) -> WorkerResult<Descriptor> {
        compress::convert_layer(self, &lease.context(), source, diff_id, target).await
    }

    /// Writes config, manifest and image records into the image store.
    pub async fn write_image(
        &self,
        lease: &Lease,
        request: &ImageWrite<'_>,
    ) -> WorkerResult<WrittenImage> {
        image_writer::write_image(self, &lease.context(), request).await
    }

    /// Writes an image index over per-platform manifests and points its names at it.
    pub async fn write_index(
        &self,
        lease: &Lease,
        request: &IndexWrite<'_>,
    ) -> WorkerResult<Descriptor> {
        image_index::write_index(self, &lease.context(), request).await
    }
}

/// Creates local-mount-source-root, readable by root alone: secrets, step files and emulators
/// live below it (runc, running as root, still binds them into containers).
fn prepare_mount_source_root(root: &Path) -> WorkerResult<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root)
        .and_then(|_| std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| WorkerError::io(format!("preparing {}", root.display()), e))?;
    let mounts = leftovers::clear_mount_source_root(root);
    if mounts > 0 {
        tracing::info!(mounts, "unmounted what an earlier run left mounted");
    }
    Ok(())
}

/// A short random hex string for unique object names.
pub fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Waits up to `limit` for the tasks of `tracker` (those spawned meanwhile too); returns whether
/// they all ended. The tracker takes new tasks again afterwards.
async fn wait_tracked(tracker: &TaskTracker, limit: std::time::Duration) -> bool {
    tracker.close();
    let ended = tokio::time::timeout(limit, tracker.wait()).await.is_ok();
    tracker.reopen();
    ended
}
