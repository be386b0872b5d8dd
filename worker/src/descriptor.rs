//! A content descriptor as the worker hands it out: media type, digest and size of a blob (with
//! annotations). containerd's own type stays inside the worker's calls to containerd.

use std::collections::HashMap;

use containerd_client::types::Descriptor as ContainerdDescriptor;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    pub annotations: HashMap<String, String>,
}

impl From<Descriptor> for ContainerdDescriptor {
    fn from(d: Descriptor) -> Self {
        ContainerdDescriptor {
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
            annotations: d.annotations,
        }
    }
}

impl From<ContainerdDescriptor> for Descriptor {
    fn from(d: ContainerdDescriptor) -> Self {
        Descriptor {
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
            annotations: d.annotations,
        }
    }
}
