//! Source ops: images, any identifier; and scratch. Local sources are in `local`.

use std::collections::BTreeMap;

use nodekit_proto::pb;

use crate::error::BuildError;
use crate::node::{op, InputList, Lowered, Node, NodeKind, Output, Resolve};
use crate::options::OpOptions;
use crate::reference::normalize_image_ref;
use crate::state::State;

const LOCAL_SESSION: &str = "local.session";
const LOCAL_UNIQUE: &str = "local.unique";

/// A source op.
#[derive(Debug)]
pub(crate) struct SourceNode {
    pub identifier: String,
    pub attrs: BTreeMap<String, String>,
    pub caps: Vec<&'static str>,
    /// For local sources: the `local.unique` value to use when there is no session id.
    pub local_unique: Option<String>,
    /// Why the source can't be marshalled (reported by `marshal`, as BuildKit's client does).
    pub error: Option<BuildError>,
}

impl SourceNode {
    /// The source op; `local.unique` is added here, as BuildKit's client does at marshal time.
    pub fn lower(&self, opts: &OpOptions, r: &dyn Resolve) -> Result<Lowered, BuildError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        let mut attrs = self.attrs.clone();
        let mut caps = self.caps.clone();
        if self.identifier.starts_with("local://") && !attrs.contains_key(LOCAL_SESSION) {
            let unique = self.local_unique.as_deref().or(r.local_unique_id());
            if let Some(unique) = unique.filter(|u| !u.is_empty()) {
                attrs.insert(LOCAL_UNIQUE.to_string(), unique.to_string());
                caps.push("source.local.unique");
            }
        }
        let platform = platform_specific(&self.identifier).then(|| {
            opts.platform
                .clone()
                .unwrap_or_else(|| r.default_platform().clone())
        });
        let kind = pb::op::Op::Source(pb::SourceOp {
            identifier: self.identifier.clone(),
            attrs,
        });
        let op = op(InputList::default(), kind, platform);
        Ok(Lowered { op, caps })
    }

    /// A source node with no local unique id and no error.
    pub fn new(
        identifier: String,
        attrs: BTreeMap<String, String>,
        caps: Vec<&'static str>,
    ) -> Self {
        let error = identifier
            .is_empty()
            .then_some(BuildError::EmptySourceIdentifier);
        SourceNode {
            identifier,
            attrs,
            caps,
            local_unique: None,
            error,
        }
    }

    /// A state on the source's only output.
    pub fn into_state(self, opts: OpOptions) -> State {
        let node = Node {
            kind: NodeKind::Source(self),
            opts,
        };
        State::new(Some(Output::new(node, 0)))
    }
}

/// Only image sources depend on the platform; BuildKit's client drops it from the others.
fn platform_specific(identifier: &str) -> bool {
    identifier.starts_with("docker-image://") || identifier.starts_with("oci-layout://")
}

/// The empty filesystem.
pub fn scratch() -> State {
    State::new(None)
}

/// An image from a registry: `image("busybox")` is `docker-image://docker.io/library/busybox:latest`.
pub fn image(reference: &str) -> State {
    Image::new(reference).into_state()
}

/// Any source identifier with its attributes, e.g. `git://…` or `https://…`, and the
/// capability ids it needs. Empty attribute values are dropped (BuildKit's client never sends
/// them).
pub fn source(identifier: &str, attrs: &BTreeMap<String, String>, caps: &[&'static str]) -> State {
    source_with(identifier, attrs, caps, OpOptions::default())
}

/// [`source`] with op options (a platform, a name).
pub fn source_with(
    identifier: &str,
    attrs: &BTreeMap<String, String>,
    caps: &[&'static str],
    options: OpOptions,
) -> State {
    let attrs = attrs.iter().filter(|(_, v)| !v.is_empty());
    let attrs = attrs.map(|(k, v)| (k.clone(), v.clone())).collect();
    SourceNode::new(identifier.to_string(), attrs, caps.to_vec()).into_state(options)
}

/// How an image source resolves its reference (`image.resolvemode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolveMode {
    #[default]
    Default,
    /// Always ask the registry.
    ForcePull,
    /// Use a local image when there is one.
    PreferLocal,
}

impl ResolveMode {
    /// The attribute value (`default`, `pull`, `local`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResolveMode::Default => "default",
            ResolveMode::ForcePull => "pull",
            ResolveMode::PreferLocal => "local",
        }
    }
}

/// An image source with options (BuildKit's `llb.Image` and its `ImageOption`s).
#[derive(Debug, Clone)]
pub struct Image {
    pub(crate) reference: String,
    pub(crate) resolve_mode: ResolveMode,
    pub(crate) resolve_digest: bool,
    pub(crate) layer_limit: Option<i64>,
    pub(crate) checksum: Option<String>,
    pub(crate) record_type: Option<String>,
    pub(crate) opts: OpOptions,
}

impl Image {
    /// The image `reference` (normalised: `busybox` is `docker.io/library/busybox:latest`).
    pub fn new(reference: &str) -> Image {
        Image {
            reference: reference.to_string(),
            resolve_mode: ResolveMode::Default,
            resolve_digest: false,
            layer_limit: None,
            checksum: None,
            record_type: None,
            opts: OpOptions::default(),
        }
    }

    /// The platform to pull (default: the marshal default); later runs inherit it.
    pub fn platform(mut self, platform: pb::Platform) -> Image {
        self.opts = self.opts.platform(platform);
        self
    }

    /// How the daemon resolves the reference (`image.resolvemode`).
    pub fn resolve_mode(mut self, mode: ResolveMode) -> Image {
        self.resolve_mode = mode;
        self
    }

    /// With [`Image::resolve`]: pin the resolved digest into the identifier.
    pub fn resolve_digest(mut self, pin: bool) -> Image {
        self.resolve_digest = pin;
        self
    }

    /// Use only the first `limit` layers (`image.layerlimit`).
    pub fn layer_limit(mut self, limit: i64) -> Image {
        self.layer_limit = Some(limit);
        self
    }

    /// Require this manifest digest (`image.checksum`).
    pub fn checksum(mut self, digest: &str) -> Image {
        self.checksum = Some(digest.to_string());
        self
    }

    /// Marks the image as internal to the build (`image.recordtype=internal`).
    pub fn internal(mut self) -> Image {
        self.record_type = Some("internal".to_string());
        self
    }

    /// The name progress output shows for the pull.
    pub fn custom_name(mut self, name: &str) -> Image {
        self.opts = self.opts.custom_name(name);
        self
    }

    /// Replaces the op options (name, platform, …).
    pub fn options(mut self, opts: OpOptions) -> Image {
        self.opts = opts;
        self
    }

    /// The source as a state (an invalid reference fails at marshal time).
    pub fn into_state(self) -> State {
        let (identifier, error) = match normalize_image_ref(&self.reference) {
            Ok(normal) => (format!("docker-image://{normal}"), None),
            Err(reason) => (
                format!("docker-image://{}", self.reference),
                Some(BuildError::InvalidImageRef {
                    reference: self.reference.clone(),
                    reason,
                }),
            ),
        };
        let (attrs, caps) = self.attrs();
        let mut node = SourceNode::new(identifier, attrs, caps);
        node.error = error;
        node.into_state(self.opts)
    }

    fn attrs(&self) -> (BTreeMap<String, String>, Vec<&'static str>) {
        let mut caps = vec!["source.image"];
        let mut attrs = BTreeMap::new();
        if self.resolve_mode != ResolveMode::Default {
            attrs.insert(
                "image.resolvemode".into(),
                self.resolve_mode.as_str().into(),
            );
            if self.resolve_mode == ResolveMode::ForcePull {
                caps.push("source.image.resolvemode");
            }
        }
        if let Some(record_type) = &self.record_type {
            attrs.insert("image.recordtype".into(), record_type.clone());
        }
        if let Some(limit) = self.layer_limit {
            attrs.insert("image.layerlimit".into(), limit.to_string());
            caps.push("source.image.layerlimit");
        }
        if let Some(checksum) = &self.checksum {
            attrs.insert("image.checksum".into(), checksum.clone());
            caps.push("source.image.checksum");
        }
        (attrs, caps)
    }
}
