//! Layer blobs in the compression an export asks for. containerd 1.6's Diff service cannot
//! write zstd, and nodekit keeps intermediate layers uncompressed anyway (it compresses only
//! what is exported). A blob streams out of the content store through the decoder and encoder
//! (`codec`) into a scratch file, hashed as it goes, and is written back as its own blob,
//! labelled with its diff ID; the source blob gets a GC label naming that copy, which later
//! exports reuse.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::Path;

use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;

use super::codec::{self, Written, GZIP_LEVEL, ZSTD_LEVEL};
use super::content;
use super::context::CallContext;
use super::error::{WorkerError, WorkerResult};
use super::layers::Compression;
use super::Worker;
use crate::Descriptor;

/// How an export wants its layers compressed (BuildKit's `compression`, `compression-level`,
/// `force-compression`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerCompression {
    pub compression: Compression,
    /// An explicit level; None: the compressor's default. A level equal to the default is
    /// None too, so that both share one kept copy.
    pub level: Option<i32>,
    /// `force-compression`: only a copy made at this very level is reused (see [`kept_copy`]).
    /// Which layers are converted at all is the exporter's business.
    pub force: bool,
}

impl LayerCompression {
    pub fn new(compression: Compression) -> Self {
        LayerCompression {
            compression,
            level: None,
            force: false,
        }
    }

    /// The levels `compression` has, as BuildKit documents them: gzip 0 (stored) to 9, zstd
    /// 0 (its default) to 22. zstd's are libzstd's own: BuildKit's Go encoder has four speeds
    /// and maps a level onto the nearest (below 3, 3-5, 6-9, 10 and up), nodekit's encoder
    /// has every level, so `compression-level=19` is what `zstd -19` makes.
    pub fn levels(compression: Compression) -> Option<RangeInclusive<i32>> {
        match compression {
            Compression::Uncompressed => None,
            Compression::Gzip => Some(0..=9),
            Compression::Zstd => Some(0..=22),
        }
    }

    /// This compression at `level`; an error saying which levels there are otherwise.
    pub fn with_level(self, level: i32) -> Result<Self, String> {
        let name = self.compression.as_str();
        let Some(levels) = Self::levels(self.compression) else {
            return Err(format!("compression={name} has no levels"));
        };
        if !levels.contains(&level) {
            return Err(format!(
                "out of range for {name} ({}-{})",
                levels.start(),
                levels.end()
            ));
        }
        let default =
            level == self.default_level() || (self.compression, level) == (Compression::Zstd, 0);
        Ok(LayerCompression {
            level: (!default).then_some(level),
            ..self
        })
    }

    fn default_level(self) -> i32 {
        match self.compression {
            Compression::Zstd => ZSTD_LEVEL,
            _ => GZIP_LEVEL,
        }
    }

    fn effective_level(self) -> i32 {
        self.level.unwrap_or_else(|| self.default_level())
    }
}

/// Writes the `compression` copy of the uncompressed layer `tar` and returns its descriptor
/// (`tar` itself for `Uncompressed`).
pub async fn compress_layer(
    worker: &Worker,
    ctx: &CallContext,
    tar: &Descriptor,
    compression: Compression,
) -> WorkerResult<Descriptor> {
    let target = LayerCompression::new(compression);
    convert_layer(worker, ctx, tar, &tar.digest, target).await
}

/// `source`, a layer blob in any compression whose tar is `diff_id`, as `target` asks: itself
/// when it is in that compression already (whatever its level: BuildKit keeps such blobs, even
/// with force-compression), else a copy an earlier conversion kept, else a new copy.
pub async fn convert_layer(
    worker: &Worker,
    ctx: &CallContext,
    source: &Descriptor,
    diff_id: &str,
    target: LayerCompression,
) -> WorkerResult<Descriptor> {
    let from = Compression::of_media_type(&source.media_type).ok_or_else(|| {
        WorkerError::Exec(format!(
            "layer {} has media type {:?}, which nodekitd cannot recompress",
            source.digest, source.media_type
        ))
    })?;
    if from == target.compression {
        return Ok(source.clone());
    }
    if let Some(kept) = kept_copy(worker, ctx, source, target).await? {
        return Ok(kept);
    }
    let scratch = worker
        .mount_source_root()
        .join(format!(".layer-{}", super::random_suffix()));
    let converted = convert_to_file(worker, ctx, (source, from, diff_id), &scratch, target).await;
    let result = match converted {
        Ok(written) => store_file(worker, ctx, &scratch, &written, (source, diff_id), target).await,
        Err(error) => Err(error),
    };
    let _ = tokio::fs::remove_file(&scratch).await;
    result
}

/// The label on a layer blob naming its copy in `target`'s compression: a containerd GC
/// reference, so the copy lives as long as the layer does (a later push or cache export sends
/// it again without compressing it again). A copy at an explicit level has the level after
/// the compression's name.
fn copy_label(target: LayerCompression) -> String {
    let name = target.compression.as_str();
    match target.level {
        None => format!("containerd.io/gc.ref.content.nodekit.{name}"),
        Some(level) => format!("containerd.io/gc.ref.content.nodekit.{name}.{level}"),
    }
}

/// The kept copies of a blob (its `labels`) that serve `target`, best first.
///
/// Without force-compression any copy in the compression serves, whatever its level, the one
/// at the asked level first: BuildKit reuses any existing blob of the asked compression
/// (levels only matter when it makes a new one), and a copy at another level is the same
/// layer. With force-compression only the copy at the asked level serves: the level is then
/// what was asked for, and forcing is the way to get it for a layer compressed before (where
/// BuildKit has none).
fn copy_candidates(labels: &HashMap<String, String>, target: LayerCompression) -> Vec<String> {
    let exact = copy_label(target);
    let mut found: Vec<String> = labels.get(&exact).cloned().into_iter().collect();
    if target.force {
        return found;
    }
    let any_level = copy_label(LayerCompression::new(target.compression));
    let mut others: Vec<(&String, &String)> = labels
        .iter()
        .filter(|(key, _)| **key != exact)
        .filter(|(key, _)| {
            key.strip_prefix(&any_level)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
        .collect();
    others.sort();
    found.extend(others.into_iter().map(|(_, digest)| digest.clone()));
    found
}

/// A copy an earlier conversion of `source` left that serves `target`, if one is still there.
async fn kept_copy(
    worker: &Worker,
    ctx: &CallContext,
    source: &Descriptor,
    target: LayerCompression,
) -> WorkerResult<Option<Descriptor>> {
    let Some(info) = content::info(worker.channel(), ctx, &source.digest).await? else {
        return Ok(None);
    };
    for digest in copy_candidates(&info.labels, target) {
        // Held by the caller's lease before it is looked for: a copy found present may be
        // garbage already (its layer released meanwhile), collected before the caller reads it.
        worker.hold_blob(ctx, &digest).await?;
        if let Some(copy) = content::info(worker.channel(), ctx, &digest).await? {
            return Ok(Some(Descriptor {
                media_type: target.compression.media_type().to_string(),
                digest,
                size: copy.size,
                annotations: HashMap::new(),
            }));
        }
    }
    Ok(None)
}

/// Converts `source` (compressed as `from`, its tar `diff_id`) into `scratch`.
async fn convert_to_file(
    worker: &Worker,
    ctx: &CallContext,
    (source, from, diff_id): (&Descriptor, Compression, &str),
    scratch: &Path,
    target: LayerCompression,
) -> WorkerResult<Written> {
    let (sender, receiver) = mpsc::channel::<Vec<u8>>(4);
    let path = scratch.to_path_buf();
    let to = (target.compression, target.effective_level());
    let encoder = tokio::task::spawn_blocking(move || codec::convert(receiver, path, from, to));
    let streamed = content::read_blob_chunks(worker.channel(), ctx, &source.digest, sender).await;
    let encoded = encoder
        .await
        .map_err(|e| WorkerError::Exec(format!("layer encoder failed: {e}")))?;
    streamed?;
    let written =
        encoded.map_err(|e| WorkerError::io(format!("converting layer {}", source.digest), e))?;
    // A layer decompressed here must be the one the image's config names.
    match &written.tar_digest {
        Some(tar) if tar != diff_id => Err(WorkerError::Exec(format!(
            "layer {} decompresses to {tar}, not to its diff ID {diff_id}",
            source.digest
        ))),
        _ => Ok(written),
    }
}

/// Writes the converted file as its own blob and labels `source` with it.
async fn store_file(
    worker: &Worker,
    ctx: &CallContext,
    path: &Path,
    written: &Written,
    (source, diff_id): (&Descriptor, &str),
    target: LayerCompression,
) -> WorkerResult<Descriptor> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| WorkerError::io(format!("opening {}", path.display()), e))?;
    let labels = HashMap::from([(content::UNCOMPRESSED_LABEL.to_string(), diff_id.to_string())]);
    let stream = ReaderStream::new(file);
    let stored = content::write_blob_stream(
        worker.channel(),
        ctx,
        &written.digest,
        written.size,
        stream,
        labels,
    )
    .await?;
    if stored {
        worker
            .counters()
            .layer_written(target.compression, written.size);
    }
    let label = HashMap::from([(copy_label(target), written.digest.clone())]);
    content::set_labels(worker.channel(), ctx, &source.digest, label).await?;
    Ok(Descriptor {
        media_type: target.compression.media_type().to_string(),
        digest: written.digest.clone(),
        size: written.size,
        annotations: HashMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip() -> LayerCompression {
        LayerCompression::new(Compression::Gzip)
    }

    #[test]
    fn levels_are_checked_and_the_default_level_is_no_level() {
        assert_eq!(gzip().with_level(9).unwrap().level, Some(9));
        assert_eq!(gzip().with_level(6).unwrap().level, None);
        let zstd = LayerCompression::new(Compression::Zstd);
        assert_eq!(zstd.with_level(0).unwrap().level, None);
        assert_eq!(zstd.with_level(3).unwrap().level, None);
        assert_eq!(zstd.with_level(22).unwrap().level, Some(22));
        assert!(gzip().with_level(10).unwrap_err().contains("gzip (0-9)"));
        assert!(zstd.with_level(-1).unwrap_err().contains("zstd (0-22)"));
        let plain = LayerCompression::new(Compression::Uncompressed);
        assert!(plain.with_level(1).unwrap_err().contains("no levels"));
    }

    #[test]
    fn a_kept_copy_at_another_level_serves_unless_forced() {
        let labels = HashMap::from([
            (copy_label(gzip()), "sha256:default".to_string()),
            (
                copy_label(gzip().with_level(1).unwrap()),
                "sha256:one".to_string(),
            ),
            (
                copy_label(LayerCompression::new(Compression::Zstd)),
                "sha256:zstd".to_string(),
            ),
            (
                "containerd.io/gc.ref.content.nodekit.gzipx".to_string(),
                "sha256:x".to_string(),
            ),
        ]);
        let nine = gzip().with_level(9).unwrap();
        assert_eq!(
            copy_candidates(&labels, nine),
            ["sha256:default", "sha256:one"]
        );
        let one = gzip().with_level(1).unwrap();
        assert_eq!(
            copy_candidates(&labels, one),
            ["sha256:one", "sha256:default"]
        );
        let forced = |c: LayerCompression| LayerCompression { force: true, ..c };
        assert!(copy_candidates(&labels, forced(nine)).is_empty());
        assert_eq!(copy_candidates(&labels, forced(one)), ["sha256:one"]);
        assert_eq!(copy_candidates(&labels, forced(gzip())), ["sha256:default"]);
    }
}
