//! What a solved vertex output is: a stack of layers whose top is a committed containerd
//! snapshot named by its chain ID (so the kubelet and the image store share it), plus the image
//! config a source image brought along. A result holds the leases of the vertices that made its
//! layers: while any build holds the result, containerd keeps its snapshots.

use std::sync::Arc;

use cachestore::CacheKey;
use oci_spec::distribution::Reference;
use oci_spec::image::{Descriptor as OciDescriptor, ImageConfiguration};

use crate::oci::chain_ids;
use crate::worker::chains::LayerBlob;
use crate::worker::Descriptor;
use crate::worker::{CommittedLayer, Lease, ResolvedImage, ViewMount};

/// One layer of a result.
#[derive(Clone, Debug)]
pub enum Layer {
    /// A layer of a source image.
    Image(Box<ImageLayer>),
    /// A layer a build step produced.
    Built(CommittedLayer),
}

/// A layer of a source image, as its manifest lists it (fetched from `source` if its blob is
/// missing when the layer has to be applied again).
#[derive(Clone, Debug)]
pub struct ImageLayer {
    pub blob: OciDescriptor,
    pub diff_id: String,
    pub source: Reference,
}

impl Layer {
    pub fn diff_id(&self) -> &str {
        match self {
            Layer::Image(image) => &image.diff_id,
            Layer::Built(layer) => &layer.diff_id,
        }
    }

    /// The layer as something to apply onto a chain of snapshots.
    pub fn to_blob(&self) -> LayerBlob {
        match self {
            Layer::Image(image) => LayerBlob {
                blob: Descriptor {
                    media_type: image.blob.media_type().to_string(),
                    digest: image.blob.digest().to_string(),
                    size: image.blob.size() as i64,
                    annotations: Default::default(),
                },
                diff_id: image.diff_id.clone(),
                fetch: Some((image.source.clone(), image.blob.clone())),
                built_in: None,
            },
            Layer::Built(layer) => LayerBlob {
                blob: layer.blob.clone(),
                diff_id: layer.diff_id.clone(),
                fetch: None,
                built_in: Some(layer.chain_id.clone()),
            },
        }
    }
}

/// The layers of a source image, bottom first.
pub fn image_layers(image: &ResolvedImage) -> Vec<Layer> {
    image
        .layers()
        .iter()
        .zip(image.diff_ids())
        .map(|(blob, diff_id)| {
            Layer::Image(Box::new(ImageLayer {
                blob: blob.clone(),
                diff_id,
                source: image.reference.clone(),
            }))
        })
        .collect()
}

/// A solved output: layers bottom first; empty means scratch.
#[derive(Clone, Debug, Default)]
pub struct Ref {
    /// A read-only host mount of the result made by its first reader and kept while the result
    /// is, for results read build after build (a kept local source: the Dockerfile). Declared
    /// first so that it is unmounted before the leases below go.
    pub view: Option<Arc<SharedView>>,
    pub layers: Vec<Layer>,
    /// The source image this stack starts from (for its config and history).
    pub base: Option<Arc<ResolvedImage>>,
    /// The leases protecting the layers' snapshots (dropped with the last holder).
    pub owners: Vec<Arc<Lease>>,
    /// The cache key of the output this is (None: not keyed, so nothing built on it is cached).
    pub key: Option<CacheKey>,
    /// For a local source: every file it holds with its content hash, so that an op reading
    /// only some of them can be keyed by those alone.
    pub content: Option<Arc<LocalContent>>,
    /// The cache records this result came from: they stay in use (GC skips them) while held.
    pub cache_holds: Vec<Arc<CacheHold>>,
}

/// A host mount shared by the holders of a result, made on first use.
pub type SharedView = tokio::sync::OnceCell<Arc<ViewMount>>;

/// A local source's entries by relative path (as the file sync received them).
pub type LocalContent = std::collections::BTreeMap<String, nodekit_filesync::Entry>;

/// Marks a cache record as in use for as long as a result holds it.
pub struct CacheHold {
    pub key: CacheKey,
    pub(crate) release: Box<dyn Fn(&CacheKey) + Send + Sync>,
}

impl Drop for CacheHold {
    fn drop(&mut self) {
        (self.release)(&self.key);
    }
}

impl std::fmt::Debug for CacheHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CacheHold").field(&self.key).finish()
    }
}

impl Ref {
    pub fn from_image(image: ResolvedImage, owner: &Arc<Lease>) -> Ref {
        let layers = image_layers(&image);
        Ref {
            view: None,
            layers,
            base: Some(Arc::new(image)),
            owners: vec![owner.clone()],
            key: None,
            content: None,
            cache_holds: Vec::new(),
        }
    }

    /// The committed snapshot holding this result (None for scratch).
    pub fn chain_id(&self) -> Option<String> {
        let diff_ids: Vec<&str> = self.layers.iter().map(Layer::diff_id).collect();
        chain_ids(&diff_ids).pop()
    }

    /// This result with one more layer on top, made under `owner`.
    pub fn with_layer(&self, layer: CommittedLayer, owner: &Arc<Lease>) -> Ref {
        let mut layers = self.layers.clone();
        layers.push(Layer::Built(layer));
        let mut owners = self.owners.clone();
        owners.push(owner.clone());
        Ref {
            view: None,
            layers,
            base: self.base.clone(),
            owners,
            key: None,
            content: None,
            cache_holds: self.cache_holds.clone(),
        }
    }

    /// This result as the output with cache key `key`.
    pub fn keyed(mut self, key: CacheKey) -> Ref {
        self.key = Some(key);
        self
    }

    pub fn base_config(&self) -> Option<&ImageConfiguration> {
        self.base.as_ref().map(|b| &b.image.config)
    }
}
