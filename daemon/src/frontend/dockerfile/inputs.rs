//! The Dockerfile frontend's inputs from the client: the Dockerfile (from the `dockerfile`
//! local directory) and the ignore patterns (`<Dockerfile>.dockerignore` beside it, else the
//! context's `.dockerignore`), each fetched through the session as a filtered local source.

use nodekit_llb_builder::{marshal, Local};

use crate::gateway::{read_file, GatewayBuild};
use crate::solver::SolveError;

/// The local directory names buildctl uses.
pub const CONTEXT: &str = "context";
pub const DOCKERFILE_DIR: &str = "dockerfile";
/// The Dockerfile's name when the client gives none.
pub const DEFAULT_NAME: &str = "Dockerfile";

pub struct DockerfileSource {
    /// The Dockerfile's name as the client gave it (for error messages).
    pub name: String,
    pub text: String,
    /// The context's ignore patterns (dockerignore syntax).
    pub ignore: Vec<String>,
    /// The vertex that read the Dockerfile: warnings about it are shown there.
    pub vertex: String,
}

/// Fetches the Dockerfile `filename` and the ignore patterns.
pub async fn read(build: &GatewayBuild, filename: &str) -> Result<DockerfileSource, SolveError> {
    let own_ignore = format!("{filename}.dockerignore");
    let mut files = vec![filename.to_string(), own_ignore.clone()];
    // With the default name, a lower-case `dockerfile` does too (as upstream).
    let fallback = (filename == DEFAULT_NAME).then(|| DEFAULT_NAME.to_lowercase());
    files.extend(fallback.clone());
    let shown = format!("[internal] load build definition from {filename}");
    let (dir, vertex) = fetch(build, DOCKERFILE_DIR, &files, "dockerfile", &shown).await?;
    let found = read_file(dir.path(), filename, None).or_else(|e| {
        fallback
            .as_deref()
            .map_or(Err(e), |name| read_file(dir.path(), name, None))
    });
    let text = match found {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| SolveError::InvalidDefinition(format!("{filename} is not UTF-8 text")))?,
        Err(_) => {
            return Err(SolveError::InvalidDefinition(format!(
                "failed to read dockerfile: open {filename}: no such file or directory"
            )))
        }
    };
    let ignore = match read_file(dir.path(), &own_ignore, None) {
        Ok(bytes) => bytes,
        Err(_) => {
            let (context, _) = fetch(
                build,
                CONTEXT,
                &[".dockerignore".to_string()],
                "dockerignore",
                "[internal] load .dockerignore",
            )
            .await?;
            read_file(context.path(), ".dockerignore", None).unwrap_or_default()
        }
    };
    Ok(DockerfileSource {
        name: filename.to_string(),
        text,
        ignore: nodekit_patterns::read_ignore_file(&String::from_utf8_lossy(&ignore)),
        vertex,
    })
}

/// Syncs only `files` of local directory `name` and mounts the result; also returns the digest
/// of the vertex that did it (shown in progress as `shown`, upstream's name for it).
async fn fetch(
    build: &GatewayBuild,
    name: &str,
    files: &[String],
    hint: &str,
    shown: &str,
) -> Result<(std::sync::Arc<crate::worker::ViewMount>, String), SolveError> {
    let state = Local::new(name)
        .include_patterns(files)
        .shared_key_hint(hint)
        .custom_name(shown)
        .into_state();
    let definition = marshal(&state).map_err(|e| SolveError::Other(e.to_string()))?;
    let vertex = nodekit_llb::load(&definition)
        .ok()
        .and_then(|graph| graph.root().map(|root| root.digest.clone()))
        .unwrap_or_default();
    let id = build.solve(&definition).await?;
    Ok((build.view(&id).await?, vertex))
}
