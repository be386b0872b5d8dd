//! `compression-level` and `force-compression` of the image exporters, read back from the
//! loopback registry: a higher gzip level gives a smaller layer; a copy kept at another level
//! is reused unless compression is forced (as BuildKit reuses blobs); forcing zstd converts the
//! gzip base image's layers, which stay gzip otherwise.

use std::collections::BTreeMap;

use nodekit::build::BuildRequest;
use nodekit_test_support::{ctr, TestDaemon, TestEnv};
use serde_json::Value;

use crate::helpers::{busybox, definition, run_build, skopeo_raw_manifest};

/// A step whose layer is new to the node (`nonce`) and compresses better at higher levels
/// (a copy of the busybox binary).
fn build(nonce: &str, name: &str, attrs: &[(&str, &str)]) -> BuildRequest {
    let script = format!("cp /bin/busybox /data && echo {nonce} > /nonce");
    let state = busybox().run(["sh", "-c", &script]).root();
    let mut exporter: BTreeMap<String, String> = attrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    exporter.insert("name".into(), name.into());
    BuildRequest {
        definition: Some(definition(&state)),
        exporters: vec![("registry".into(), exporter)],
        ..Default::default()
    }
}

/// The manifest the loopback registry has under `name`.
fn pushed_manifest(name: &str) -> Value {
    let raw = skopeo_raw_manifest(&["--tls-verify=false"], &format!("docker://{name}"));
    serde_json::from_slice(&raw).unwrap()
}

/// Pushes the build of `nonce` as `{repository}:{tag}` with `attrs`; returns its manifest.
async fn push(
    daemon: &TestDaemon,
    nonce: &str,
    (repository, tag): (&str, &str),
    attrs: &[(&str, &str)],
) -> Value {
    let name = format!("{repository}:{tag}");
    let (result, _) = run_build(daemon, build(nonce, &name, attrs)).await;
    if let Err(error) = result {
        panic!("{tag}: {error}");
    }
    let manifest = pushed_manifest(&name);
    ctr(TestEnv::get(), &["images", "rm", &name]);
    manifest
}

/// The digest and size of the manifest's top layer.
fn top_layer(manifest: &Value) -> (String, u64) {
    let layer = manifest["layers"].as_array().unwrap().last().unwrap();
    (
        layer["digest"].as_str().unwrap().to_string(),
        layer["size"].as_u64().unwrap(),
    )
}

fn nonce() -> String {
    format!("{}-{:016x}", std::process::id(), rand::random::<u64>())
}

#[tokio::test]
async fn a_higher_gzip_level_gives_a_smaller_layer_when_it_is_made() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("compression-level").await;
    let nonce = nonce();
    let repository = format!("{}/nodekit/levels", env.registry);
    let at = |tag| (repository.as_str(), tag);
    let one = push(&daemon, &nonce, at("one"), &[("compression-level", "1")]).await;
    let (fast, fast_size) = top_layer(&one);

    // As BuildKit: without forcing, the layer's existing gzip blob is reused whatever its level.
    let reused = push(&daemon, &nonce, at("nine"), &[("compression-level", "9")]).await;
    assert_eq!(top_layer(&reused).0, fast, "the level-1 copy is reused");

    let forced = [("compression-level", "9"), ("force-compression", "true")];
    let nine = push(&daemon, &nonce, at("nine-forced"), &forced).await;
    let (best, best_size) = top_layer(&nine);
    assert_ne!(best, fast);
    assert!(
        best_size < fast_size,
        "level 9 ({best_size} bytes) is smaller than level 1 ({fast_size})"
    );
    assert_eq!(
        nine["config"]["digest"], one["config"]["digest"],
        "the same layer: the same diff IDs"
    );
    // A copy at the asked level is preferred over one at another level.
    let again = push(
        &daemon,
        &nonce,
        at("nine-again"),
        &[("compression-level", "9")],
    )
    .await;
    assert_eq!(top_layer(&again).0, best);

    let (result, _) = run_build(
        &daemon,
        build(
            &nonce,
            &format!("{repository}:bad"),
            &[("compression-level", "10")],
        ),
    )
    .await;
    let error = result.unwrap_err();
    assert!(
        error.contains("compression-level=10") && error.contains("0-9"),
        "{error}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn forcing_zstd_converts_the_gzip_base_layers() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("compression-force").await;
    let nonce = nonce();
    let repository = format!("{}/nodekit/forced", env.registry);
    let at = |tag| (repository.as_str(), tag);
    let media_types = |manifest: &Value| -> Vec<String> {
        let layers = manifest["layers"].as_array().unwrap();
        layers
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap().to_string())
            .collect()
    };
    const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

    let kept = push(&daemon, &nonce, at("zstd"), &[("compression", "zstd")]).await;
    let kept_types = media_types(&kept);
    let (top, base) = kept_types.split_last().unwrap();
    assert_eq!(top, ZSTD, "the new layer is zstd");
    assert!(
        !base.is_empty() && base.iter().all(|t| t == GZIP),
        "the base's layers stay gzip: {kept_types:?}"
    );

    let attrs = [("compression", "zstd"), ("force-compression", "true")];
    let forced = push(&daemon, &nonce, at("zstd-forced"), &attrs).await;
    let forced_types = media_types(&forced);
    assert!(
        forced_types.iter().all(|t| t == ZSTD),
        "every layer zstd: {forced_types:?}"
    );
    assert_eq!(forced["config"]["digest"], kept["config"]["digest"]);
    // The converted base layer is the base's tar: its zstd decompresses to the diff ID.
    let config = registry_blob(&repository, forced["config"]["digest"].as_str().unwrap());
    let config: Value = serde_json::from_slice(&config).unwrap();
    let first = forced["layers"][0]["digest"].as_str().unwrap();
    let tar = zstd::decode_all(&registry_blob(&repository, first)[..]).unwrap();
    assert_eq!(
        nodekitd::oci::sha256_digest(&tar),
        config["rootfs"]["diff_ids"][0].as_str().unwrap()
    );

    // Forcing the compression the base has already keeps its blobs, as BuildKit does.
    let attrs = [("compression", "gzip"), ("force-compression", "true")];
    let gzip = push(&daemon, &nonce, at("gzip-forced"), &attrs).await;
    let base_of = |manifest: &Value| {
        let layers = manifest["layers"].as_array().unwrap();
        layers[..layers.len() - 1].to_vec()
    };
    assert_eq!(base_of(&gzip), base_of(&kept));
    daemon.stop().await;
}

/// A blob of `repository` (`host/name`) in the loopback registry.
fn registry_blob(repository: &str, digest: &str) -> Vec<u8> {
    let (host, name) = repository.split_once('/').unwrap();
    let output = std::process::Command::new("curl")
        .args(["-sfL", &format!("http://{host}/v2/{name}/blobs/{digest}")])
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "fetching {digest} from {repository}"
    );
    output.stdout
}
