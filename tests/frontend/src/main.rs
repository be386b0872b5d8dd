//! A BuildKit frontend for nodekit's tests, run as a frontend image (`gateway.v0`): it talks
//! to the LLBBridge over its stdin and stdout as any frontend does, reads `greeting` from the
//! client's context, and returns an image of its own making: the base image (build argument
//! `BASE`) with `/from-frontend` saying what it read and how it was called.
//!
//! Build arguments steer the failure paths the tests check: `FAIL` returns an error through
//! `Return`; `EXIT` exits with that code without returning; `SLEEP` waits that many seconds
//! first.

mod bridge;

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use nodekit_llb_builder::{image, marshal, FileAction, Local, Mkfile};
use nodekit_proto::google::rpc::Status;
use nodekit_proto::moby::buildkit::v1::frontend::{
    self as gateway, llb_bridge_client::LlbBridgeClient, result::Result as Refs, PingRequest,
    ReadFileRequest, ReturnRequest, SolveRequest,
};
use nodekit_proto::pb;
use prost::Message;
use tonic::transport::Channel;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let outcome = match &runtime {
        Ok(runtime) => runtime.block_on(frontend()),
        Err(error) => Err(anyhow::anyhow!("no tokio runtime: {error}")),
    };
    // Exit at once: dropping the runtime would wait for its thread blocked reading stdin,
    // which the daemon keeps open.
    std::process::exit(match outcome {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("test frontend: {error:#}");
            1
        }
    })
}

async fn frontend() -> anyhow::Result<()> {
    let options = options_from_env();
    let session = std::env::var("BUILDKIT_SESSION_ID").context("no BUILDKIT_SESSION_ID")?;
    let mut client = LlbBridgeClient::new(bridge::channel().await?);
    let pong = client.ping(PingRequest {}).await?.into_inner();
    if pong.frontend_api_caps.is_empty() {
        bail!("the bridge lists no capabilities");
    }
    if let Some(code) = options.get("build-arg:EXIT") {
        eprintln!("the test frontend exits with {code}, as asked");
        std::process::exit(code.parse().unwrap_or(1));
    }
    if let Some(seconds) = options.get("build-arg:SLEEP") {
        tokio::time::sleep(std::time::Duration::from_secs(seconds.parse()?)).await;
    }
    if options.contains_key("build-arg:FAIL") {
        return give_back(&mut client, Err("the test frontend was asked to fail")).await;
    }
    let greeting = read_greeting(&mut client, &session).await?;
    let inputs = client.inputs(gateway::InputsRequest {}).await?.into_inner();
    let text = format!(
        "greeting: {}\ncmdline: {}\ninputs: {}\nown source: {}\n",
        greeting.trim_end(),
        options.get("cmdline").map_or("", String::as_str),
        inputs
            .definitions
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(","),
        own_source()?,
    );
    let base = options
        .get("build-arg:BASE")
        .map_or("nodekit.test/busybox:1", String::as_str);
    let made = image(base).file(FileAction::new(Mkfile::new("/from-frontend", 0o644, text)));
    let id = solve(&mut client, marshal(&made)?).await?;
    give_back(&mut client, Ok(id)).await
}

/// The image source of the frontend's own definition, which the daemon hands it as
/// `/run/config/buildkit/metadata/frontend.bin` ("none" where it cannot: an image whose `/run`
/// is this program).
fn own_source() -> anyhow::Result<String> {
    let bytes = match std::fs::read("/run/config/buildkit/metadata/frontend.bin") {
        Ok(bytes) => bytes,
        Err(error) if is_absent(&error) => return Ok("none".into()),
        Err(error) => return Err(error.into()),
    };
    let definition = pb::Definition::decode(bytes.as_slice())?;
    for op in &definition.def {
        if let Some(pb::op::Op::Source(source)) = pb::Op::decode(op.as_slice())?.op {
            return Ok(source.identifier);
        }
    }
    bail!("frontend.bin holds no source op")
}

/// No such file, or `/run` not a directory.
fn is_absent(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// The frontend's options (`BUILDKIT_FRONTEND_OPT_<n>=KEY=VALUE`).
fn options_from_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(name, _)| name.starts_with("BUILDKIT_FRONTEND_OPT_"))
        .filter_map(|(_, pair)| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

/// `greeting` of the client's context, through a local source of the build's session.
async fn read_greeting(
    client: &mut LlbBridgeClient<Channel>,
    session: &str,
) -> anyhow::Result<String> {
    let context = Local::new("context")
        .session_id(session)
        .follow_paths(&["greeting".to_string()])
        .shared_key_hint("context")
        .into_state();
    let id = solve(client, marshal(&context)?).await?;
    let read = client
        .read_file(ReadFileRequest {
            r#ref: id,
            file_path: "greeting".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(String::from_utf8(read.data)?)
}

async fn solve(
    client: &mut LlbBridgeClient<Channel>,
    definition: pb::Definition,
) -> anyhow::Result<String> {
    let response = client
        .solve(SolveRequest {
            definition: Some(definition),
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    match response.result.and_then(|r| r.result) {
        Some(Refs::Ref(reference)) => Ok(reference.id),
        other => bail!("unexpected solve result {other:?}"),
    }
}

/// Returns the build's result, or its error.
async fn give_back(
    client: &mut LlbBridgeClient<Channel>,
    outcome: Result<String, &str>,
) -> anyhow::Result<()> {
    let request = match outcome {
        Ok(id) => ReturnRequest {
            result: Some(gateway::Result {
                result: Some(Refs::Ref(gateway::Ref { id, def: None })),
                metadata: BTreeMap::from([(
                    "containerimage.config".to_string(),
                    image_config().into_bytes(),
                )]),
                ..Default::default()
            }),
            error: None,
        },
        Err(message) => ReturnRequest {
            result: None,
            error: Some(Status {
                code: 3, // InvalidArgument
                message: message.to_string(),
                details: Vec::new(),
            }),
        },
    };
    client.r#return(request).await?;
    Ok(())
}

/// The image's config: the base image's runtime config is not carried over, a PATH is enough.
fn image_config() -> String {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": []},
    })
    .to_string()
}
