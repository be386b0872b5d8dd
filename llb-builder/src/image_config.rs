//! Image configs and resolving them: the settings an image's config gives the states built on
//! it (BuildKit's `State.WithImageConfig` and `llb.WithMetaResolver`).

use std::collections::BTreeMap;

use nodekit_proto::pb;
use serde::{Deserialize, Deserializer};

use crate::error::BuildError;
use crate::platform::host_platform;
use crate::reference::normalize_image_ref;
use crate::source::{Image, ResolveMode};
use crate::state::State;

/// The parts of an OCI image config (`application/vnd.oci.image.config.v1+json`) builds use.
/// JSON `null`s read as empty values.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    #[serde(deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(deserialize_with = "nullable")]
    pub os: String,
    #[serde(deserialize_with = "nullable")]
    pub variant: String,
    #[serde(rename = "os.version", deserialize_with = "nullable")]
    pub os_version: String,
    #[serde(rename = "os.features", deserialize_with = "nullable")]
    pub os_features: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub config: ContainerConfig,
}

/// The `config` object of an image config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(deserialize_with = "nullable")]
    pub user: String,
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub entrypoint: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub cmd: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub working_dir: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub stop_signal: String,
    #[serde(deserialize_with = "nullable")]
    pub shell: Vec<String>,
}

fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl ImageConfig {
    /// Parses image config JSON.
    pub fn parse(json: &[u8]) -> Result<ImageConfig, BuildError> {
        serde_json::from_slice(json).map_err(|e| BuildError::InvalidImageConfig {
            reason: e.to_string(),
        })
    }

    /// The config's platform, if it names an OS and architecture.
    pub fn platform(&self) -> Option<pb::Platform> {
        (!self.architecture.is_empty() && !self.os.is_empty()).then(|| pb::Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
        })
    }
}

impl State {
    /// Applies an image config as BuildKit's `WithImageConfig` does: its env (in order), its
    /// working directory, and its platform. The user is not applied (the Dockerfile frontend
    /// applies it as a `USER` would: `state.user(&config.config.user)`).
    pub fn with_image_config(&self, config: &ImageConfig) -> State {
        let mut state = self.clone();
        for entry in &config.config.env {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            if !key.is_empty() {
                state = state.env(key, value);
            }
        }
        state = state.dir(config.config.working_dir.as_str());
        match config.platform() {
            Some(platform) => state.platform(platform),
            None => state,
        }
    }
}

/// What an image resolver is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolveImageOpt {
    pub platform: pb::Platform,
    pub resolve_mode: ResolveMode,
}

/// What an image resolver answers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedImageConfig {
    /// The reference resolved (may be the one asked for).
    pub reference: String,
    /// The manifest digest, if known (`sha256:…`).
    pub digest: Option<String>,
    /// The image config JSON.
    pub config: Vec<u8>,
}

/// Looks up image configs (in a registry, a content store, …): BuildKit's
/// `ImageMetaResolver`, implemented by the caller.
pub trait ImageMetaResolver {
    fn resolve_image_config(
        &self,
        reference: &str,
        opt: &ResolveImageOpt,
    ) -> Result<ResolvedImageConfig, String>;
}

/// An image source with its config applied.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub state: State,
    pub config: ImageConfig,
    pub digest: Option<String>,
}

impl Image {
    /// Resolves the image's config with `resolver` for the image's platform (default: the
    /// host's) and applies it to the state ([`State::with_image_config`]). With
    /// [`resolve_digest`](Image::resolve_digest) and no digest in the reference, the resolved
    /// digest is pinned into the source identifier.
    pub fn resolve(self, resolver: &dyn ImageMetaResolver) -> Result<ResolvedImage, BuildError> {
        let normal =
            normalize_image_ref(&self.reference).map_err(|reason| BuildError::InvalidImageRef {
                reference: self.reference.clone(),
                reason,
            })?;
        let opt = ResolveImageOpt {
            platform: self.opts.platform.clone().unwrap_or_else(host_platform),
            resolve_mode: self.resolve_mode,
        };
        let resolved = resolver
            .resolve_image_config(&normal, &opt)
            .map_err(|reason| BuildError::ResolveImageConfig {
                reference: normal.clone(),
                reason,
            })?;
        let config = ImageConfig::parse(&resolved.config)?;
        let pin = self.resolve_digest && !normal.contains('@');
        let image = match (pin, &resolved.digest) {
            (true, Some(digest)) => {
                let name = resolved.reference.split('@').next().unwrap_or_default();
                Image {
                    reference: format!("{name}@{digest}"),
                    ..self
                }
            }
            _ => self,
        };
        let state = image.into_state().with_image_config(&config);
        Ok(ResolvedImage {
            state,
            config,
            digest: resolved.digest,
        })
    }
}
