//! `/run/config/buildkit/metadata/frontend.bin`: the frontend's own LLB definition (its image
//! source), which buildkitd hands every frontend image read-only, so a frontend can run itself
//! again (as the Dockerfile frontend does for other platforms). The file lives under the
//! local-mount-source-root, where the host's containerd sees it, until the frontend has run.

use std::path::Path;

use nodekit_proto::pb;
use prost::Message;

use crate::solver::SolveError;
use crate::worker::exec::{ExtraMount, MountSource};

/// Where the frontend finds the directory.
const DESTINATION: &str = "/run/config/buildkit/metadata";

/// The directory holding `frontend.bin`; removed when dropped.
pub struct FrontendMetadata {
    dir: tempfile::TempDir,
}

impl FrontendMetadata {
    /// Writes `definition` as `frontend.bin` (mode 0400) in a new directory under `root`.
    pub fn write(root: &Path, definition: &pb::Definition) -> Result<FrontendMetadata, SolveError> {
        let failed = |e: std::io::Error| {
            SolveError::Other(format!(
                "writing the frontend's metadata under {}: {e}",
                root.display()
            ))
        };
        let dir = tempfile::Builder::new()
            .prefix("nodekit-frontend-")
            .tempdir_in(root)
            .map_err(failed)?;
        let file = dir.path().join("frontend.bin");
        std::fs::write(&file, definition.encode_to_vec()).map_err(failed)?;
        let read_only = std::os::unix::fs::PermissionsExt::from_mode(0o400);
        std::fs::set_permissions(&file, read_only).map_err(failed)?;
        Ok(FrontendMetadata { dir })
    }

    /// The read-only mount of the directory.
    pub fn mount(&self) -> ExtraMount {
        ExtraMount {
            destination: DESTINATION.to_string(),
            source: MountSource::Bind {
                source: self.dir.path().to_path_buf(),
                readonly: true,
            },
        }
    }
}
