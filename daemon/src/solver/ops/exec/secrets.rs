//! Secrets, fetched from the client's session when a step needs them: as files on a private
//! tmpfs bind-mounted read-only into the step, or as environment variables. Never written to a
//! snapshot, never part of a cache key.

use nodekit_proto::moby::buildkit::secrets::v1::secrets_client::SecretsClient;
use nodekit_proto::moby::buildkit::secrets::v1::GetSecretRequest;
use nodekit_proto::pb::{self, ExecOp};

use crate::solver::error::SolveError;
use crate::solver::ops::OpContext;
use crate::worker::exec::{ExtraMount, MountSource};
use crate::worker::ViewMount;

const GET_SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";
/// Mode of a secret file when the definition gives none (BuildKit's default).
const DEFAULT_MODE: u32 = 0o400;

/// The secret mount, or None for a missing optional secret.
pub async fn mount(
    op: &OpContext<'_>,
    mount: &pb::Mount,
) -> Result<Option<(ExtraMount, ViewMount)>, SolveError> {
    let options = mount.secret_opt.clone().unwrap_or_default();
    let Some(value) = fetch(op, &options.id, options.optional).await? else {
        return Ok(None);
    };
    let worker = &op.solver.worker;
    let dir = worker
        .secret_dir()
        .map_err(|e| SolveError::worker("preparing a secret", e))?;
    let file = dir.path().join("secret");
    let mode = if options.mode == 0 {
        DEFAULT_MODE
    } else {
        options.mode & 0o7777
    };
    write_secret(&file, &value, mode, options.uid, options.gid)
        .map_err(|e| SolveError::Other(format!("writing secret {}: {e}", options.id)))?;
    let extra = ExtraMount {
        destination: mount.dest.clone(),
        source: MountSource::Bind {
            source: file,
            readonly: true,
        },
    };
    Ok(Some((extra, dir)))
}

/// `NAME=value` for every secret the step takes as an environment variable.
pub async fn environment(op: &OpContext<'_>, exec: &ExecOp) -> Result<Vec<String>, SolveError> {
    let mut env = Vec::new();
    for secret in &exec.secretenv {
        if let Some(value) = fetch(op, &secret.id, secret.optional).await? {
            let value = String::from_utf8(value).map_err(|_| {
                SolveError::InvalidDefinition(format!(
                    "secret {} is not UTF-8 text, so it cannot be an environment variable",
                    secret.id
                ))
            })?;
            env.push(format!("{}={value}", secret.name));
        }
    }
    Ok(env)
}

/// The secret's value from the client; None if it is optional and the client has none.
pub(crate) async fn fetch(
    op: &OpContext<'_>,
    id: &str,
    optional: bool,
) -> Result<Option<Vec<u8>>, SolveError> {
    let session = op.session().await?;
    if !session.serves(GET_SECRET) {
        return missing(id, optional, "the client offers no secrets");
    }
    let request = GetSecretRequest {
        id: id.to_string(),
        ..Default::default()
    };
    match SecretsClient::new(session.channel.clone())
        .get_secret(request)
        .await
    {
        Ok(response) => Ok(Some(response.into_inner().data)),
        Err(status) if status.code() == tonic::Code::NotFound => {
            missing(id, optional, "the client does not have it")
        }
        Err(status) => Err(SolveError::Session(format!(
            "secret {id}: {}",
            status.message()
        ))),
    }
}

fn missing(id: &str, optional: bool, why: &str) -> Result<Option<Vec<u8>>, SolveError> {
    if optional {
        Ok(None)
    } else {
        Err(SolveError::Session(format!(
            "secret {id}: not found ({why})"
        )))
    }
}

fn write_secret(
    path: &std::path::Path,
    value: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, value)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    nix::unistd::chown(path, Some(uid.into()), Some(gid.into())).map_err(std::io::Error::from)
}
