//! `nodekit build`: flags in buildctl's spelling, turned into a [`BuildRequest`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use nodekit::build::{build, BuildRequest, CacheEntry, PlainProgress};
use nodekit::session::SessionServices;
use nodekit_proto::pb;
use prost::Message;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// LLB definition file as `buildctl build` reads it from stdin; `-` for stdin.
    #[arg(long)]
    llb: Option<PathBuf>,
    /// Daemon-side frontend, e.g. dockerfile.v0.
    #[arg(long)]
    frontend: Option<String>,
    /// Frontend option key=value; repeatable.
    #[arg(long = "opt")]
    opts: Vec<String>,
    /// Local directory name=path offered to the build; repeatable.
    #[arg(long = "local")]
    locals: Vec<String>,
    /// Secret id=ID,src=FILE or id=ID,env=VAR; repeatable.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// SSH agent to forward: default (the agent of $SSH_AUTH_SOCK), ID=SOCKET or default=SOCKET;
    /// repeatable.
    #[arg(long = "ssh")]
    ssh: Vec<String>,
    /// Exporter, e.g. type=image,name=example.com/app:1; repeatable.
    #[arg(long)]
    output: Vec<String>,
    /// Entitlement to ask for (security.insecure, network.host); repeatable.
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    allow: Vec<String>,
    /// Cache export, e.g. type=local,dest=DIR,mode=max or type=registry,ref=REF; repeatable.
    #[arg(long = "export-cache")]
    export_cache: Vec<String>,
    /// Cache import, e.g. type=local,src=DIR or type=registry,ref=REF; repeatable.
    #[arg(long = "import-cache")]
    import_cache: Vec<String>,
    /// Write the build's reference to FILE (for `nodekit cache export --build`), as buildctl.
    #[arg(long = "ref-file", value_name = "FILE")]
    ref_file: Option<PathBuf>,
}

/// `--ssh` values as buildctl reads them: `ID` (the agent of `$SSH_AUTH_SOCK`) or `ID=SOCKET`;
/// key files (buildctl's `ID=KEYFILE`) are refused by name.
fn ssh_agents(values: &[String]) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut agents = BTreeMap::new();
    for value in values {
        let (id, path) = match value.split_once('=') {
            Some((id, path)) => (id.to_string(), PathBuf::from(path)),
            None => {
                let socket = std::env::var_os("SSH_AUTH_SOCK").with_context(|| {
                    format!("--ssh {value}: no agent socket given and SSH_AUTH_SOCK is not set")
                })?;
                (value.clone(), PathBuf::from(socket))
            }
        };
        if path.to_string_lossy().contains(',') {
            bail!("--ssh {value}: several sockets or keys for one id are not supported by nodekit yet");
        }
        let is_socket = std::fs::metadata(&path).map(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        });
        match is_socket {
            Ok(true) => {}
            Ok(false) => bail!(
                "--ssh {value}: {} is not an agent socket (key files are not supported by nodekit yet; add the key to an ssh-agent)",
                path.display()
            ),
            Err(e) => bail!("--ssh {value}: {}: {e}", path.display()),
        }
        agents.insert(id, path);
    }
    Ok(agents)
}

pub async fn run(target: &nodekit::connect::Target, args: BuildArgs) -> anyhow::Result<()> {
    let request = BuildRequest {
        definition: args.llb.as_ref().map(read_definition).transpose()?,
        frontend: args.frontend.clone(),
        frontend_attrs: key_values(&args.opts, "--opt")?,
        services: SessionServices {
            locals: key_values(&args.locals, "--local")?
                .into_iter()
                .map(|(k, v)| (k, PathBuf::from(v)))
                .collect(),
            secrets: args
                .secrets
                .iter()
                .map(|s| secret(s))
                .collect::<anyhow::Result<_>>()?,
            docker_config: nodekit::session::default_docker_config(),
            // The local cache directories and output files are added by the build.
            content_stores: Default::default(),
            outputs: Default::default(),
            ssh_agents: ssh_agents(&args.ssh)?,
        },
        exporters: args
            .output
            .iter()
            .map(|o| exporter(o))
            .collect::<anyhow::Result<_>>()?,
        build_ref: nodekit::session::random_id(),
        entitlements: args.allow.clone(),
        cache_exports: cache_entries(&args.export_cache)?,
        cache_imports: cache_entries(&args.import_cache)?,
    };
    if request.definition.is_none() && request.frontend.is_none() {
        bail!("give --llb FILE or --frontend NAME");
    }
    if let Some(path) = &args.ref_file {
        std::fs::write(path, &request.build_ref)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let channel = nodekit::connect::open(target).await?;
    let mut printer = PlainProgress::default();
    let response = build(channel, request, |update| {
        printer.print(update, &mut std::io::stderr())
    })
    .await?;
    for (key, value) in response {
        println!("{key}={value}");
    }
    Ok(())
}

fn cache_entries(texts: &[String]) -> anyhow::Result<Vec<CacheEntry>> {
    texts.iter().map(|t| CacheEntry::parse(t)).collect()
}

fn read_definition(path: &PathBuf) -> anyhow::Result<pb::Definition> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading the definition from stdin")?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    pb::Definition::decode(bytes.as_slice())
        .context("the LLB file is not a protobuf-encoded pb.Definition")
}

fn key_values(items: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => bail!("{flag} {item:?}: expected key=value"),
        })
        .collect()
}

/// `id=ID,src=FILE` or `id=ID,env=VAR`.
fn secret(spec: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let fields = csv_fields(spec);
    let id = fields
        .get("id")
        .with_context(|| format!("--secret {spec:?}: id= is missing"))?;
    let value = match (
        fields.get("src").or(fields.get("source")),
        fields.get("env"),
    ) {
        (Some(path), _) => {
            std::fs::read(path).with_context(|| format!("reading secret {id} from {path}"))?
        }
        (None, Some(var)) => std::env::var(var)
            .with_context(|| format!("secret {id}: ${var} is not set"))?
            .into_bytes(),
        (None, None) => bail!("--secret {spec:?}: give src=FILE or env=VAR"),
    };
    Ok((id.clone(), value))
}

/// `type=image,name=a,b,unpack=true` → ("image", {name: "a,b", unpack: "true"}).
fn exporter(spec: &str) -> anyhow::Result<(String, BTreeMap<String, String>)> {
    let mut fields = csv_fields(spec);
    let kind = fields
        .remove("type")
        .with_context(|| format!("--output {spec:?}: type= is missing"))?;
    Ok((kind, fields))
}

/// Comma-separated key=value pairs; a piece without `=` continues the previous value, so
/// `name=a,b` keeps both names as buildctl does with its quoted CSV.
fn csv_fields(spec: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut last: Option<String> = None;
    for piece in spec.split(',') {
        match (piece.split_once('='), &last) {
            (Some((k, v)), _) => {
                fields.insert(k.trim().to_string(), v.to_string());
                last = Some(k.trim().to_string());
            }
            (None, Some(key)) => {
                if let Some(value) = fields.get_mut(key) {
                    value.push(',');
                    value.push_str(piece);
                }
            }
            (None, None) => {}
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keeps_several_names() {
        let (kind, attrs) = exporter("type=image,name=a:1,b:2,unpack=true").unwrap();
        assert_eq!(kind, "image");
        assert_eq!(attrs["name"], "a:1,b:2");
        assert_eq!(attrs["unpack"], "true");
    }

    #[test]
    fn output_without_type_is_an_error() {
        assert!(exporter("name=a").is_err());
    }
}
