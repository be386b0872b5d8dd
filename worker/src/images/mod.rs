//! Image resolution: a reference resolves in the host image store first (what the kubelet
//! pulled is reused as is) and from its registry only when absent there.

mod credentials;
mod distribution;
mod hosts;
mod manifest;
mod parsed;
mod pull;
mod push;
mod reader;
mod reference;
mod resolve;
mod store;

pub use credentials::{CredentialSource, Credentials, NoClient};
pub use distribution::error_chain;
pub use hosts::{HostConfig, RegistryHosts};
pub use manifest::{select_manifest, ImageManifestSet};
pub use parsed::ParsedImages;
pub use pull::fetch_blob;
pub use push::{Pushed, Pusher, SOURCE_ANNOTATION};
pub use reader::RegistryReader;
pub use reference::normalize_reference;
pub use resolve::{from_content, resolve, ImageOrigin, ResolveMode, ResolvedImage};
pub use store::{get_image, put_image_record, ImageRecord};
