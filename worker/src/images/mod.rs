//! Image resolution: a reference resolves in the host image store first (what the kubelet
//! pulled is reused as is) and from its registry only when absent there.

mod credentials;
mod distribution;
mod hosts;
mod manifest;
mod parsed;
mod pull;
mod reference;
mod resolve;
mod store;

pub use credentials::{from_docker_config, CredentialSource, Credentials, NoClient};
pub use distribution::Transport;
pub use hosts::{is_loopback, Endpoint, HostConfig, RegistryHosts};
pub use manifest::{select_manifest, ImageManifestSet};
pub use parsed::ParsedImages;
pub use pull::fetch_blob;
pub use reference::normalize_reference;
pub use resolve::{from_content, resolve, ImageOrigin, ResolveMode, ResolvedImage};
pub use store::{get_image, put_image_record, ImageRecord};
