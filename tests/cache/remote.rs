//! `--export-cache` / `--import-cache` between two nodes: node A builds six steps over a
//! 2,000-file context and exports its cache; node B, cold, imports it and runs nothing, writes
//! the same image, and after a one-file change re-runs only what reads the file.

use std::path::Path;

use nodekit::build::CacheEntry;
use nodekit_test_support::{TestDaemon, TestEnv};

use crate::common::{build_dockerfile_with, context, unique, Built};
use crate::nodes::{change_a_txt, node, remove_node, six_steps, two_thousand_files, AFTER_CHANGE};

fn entry(text: &str) -> CacheEntry {
    CacheEntry::parse(text).expect("a cache entry")
}

async fn build_with_cache(
    daemon: &TestDaemon,
    dir: &Path,
    image: Option<&str>,
    exports: &[String],
    imports: &[String],
) -> Built {
    build_dockerfile_with(daemon, dir, &[], image, |request| {
        request.cache_exports = exports.iter().map(|e| entry(e)).collect();
        request.cache_imports = imports.iter().map(|i| entry(i)).collect();
    })
    .await
}

/// The names of the steps `built` reported, with whether they failed.
fn step_errors(built: &Built) -> Vec<(String, String)> {
    let mut seen = std::collections::BTreeMap::new();
    for vertex in built.updates.iter().flat_map(|u| u.vertexes.iter()) {
        seen.insert(vertex.name.clone(), vertex.error.clone());
    }
    seen.into_iter().collect()
}

/// Node A exports its cache with `export`; node B imports it with `import` and runs nothing.
async fn cache_travels(name: &str, export: &str, import: &str) {
    cache_travels_with(name, export, import, None).await
}

/// [`cache_travels`], node A's image named `pushed` and pushed (an inline cache's way).
async fn cache_travels_with(name: &str, export: &str, import: &str, pushed: Option<&str>) {
    let env = TestEnv::get();
    let nonce = unique();
    let dir = context(&six_steps(&env.registry_image), &[("a.txt", &nonce)]);
    two_thousand_files(dir.path());
    let (ns_a, ns_b) = (
        format!("nk-{name}-a-{nonce}"),
        format!("nk-{name}-b-{nonce}"),
    );
    let image = format!("nodekit.test/{name}:{nonce}");
    let a = node(&format!("{name}-a"), &ns_a).await;
    let b = node(&format!("{name}-b"), &ns_b).await;

    let built_a = match pushed {
        Some(pushed) => {
            build_dockerfile_with(&a, dir.path(), &[], None, |request| {
                request.exporters = vec![("image".into(), push_attrs(pushed))];
                request.cache_exports = vec![entry(export)];
            })
            .await
        }
        None => build_with_cache(&a, dir.path(), Some(&image), &[export.into()], &[]).await,
    };
    let response = built_a.result.as_ref().expect("node A's build");
    assert!(
        pushed.is_some() || response.contains_key("cache.manifest"),
        "{response:?} {:?}",
        step_errors(&built_a)
    );
    let digest_a = response["containerimage.digest"].clone();

    let built_b = match pushed {
        // Built as A built it: the same image, pushed with its inline cache.
        Some(pushed) => {
            build_dockerfile_with(&b, dir.path(), &[], None, |request| {
                request.exporters = vec![("image".into(), push_attrs(pushed))];
                request.cache_exports = vec![entry(export)];
                request.cache_imports = vec![entry(import)];
            })
            .await
        }
        None => build_with_cache(&b, dir.path(), Some(&image), &[], &[import.into()]).await,
    };
    let response = built_b.result.as_ref().expect("node B's build");
    assert_eq!(
        built_b.ran(),
        Vec::<String>::new(),
        "every step cached on B: {:?}",
        step_errors(&built_b)
    );
    assert_eq!(
        response["containerimage.digest"], digest_a,
        "the same image"
    );

    change_a_txt(dir.path());
    let changed = build_with_cache(&b, dir.path(), None, &[], &[import.into()]).await;
    changed.result.as_ref().expect("the changed build");
    assert_eq!(changed.ran(), AFTER_CHANGE);
    remove_node(a, &ns_a).await;
    remove_node(b, &ns_b).await;
}

fn push_attrs(name: &str) -> std::collections::BTreeMap<String, String> {
    [("name", name), ("push", "true")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_registry_cache_carries_the_cache_to_another_node() {
    let env = TestEnv::get();
    let reference = format!("{}/nodekit/cache-{}:max", env.registry, unique());
    cache_travels(
        "registry-cache",
        &format!("type=registry,ref={reference},mode=max"),
        &format!("type=registry,ref={reference}"),
    )
    .await;
}

/// The image carries its own cache: node B imports it from the pushed image.
#[tokio::test]
async fn an_inline_cache_carries_the_cache_to_another_node() {
    let env = TestEnv::get();
    let reference = format!("{}/nodekit/inline-{}:1", env.registry, unique());
    cache_travels_with(
        "inline-cache",
        "type=inline",
        &format!("type=registry,ref={reference}"),
        Some(&reference),
    )
    .await;
}

#[tokio::test]
async fn a_local_cache_directory_carries_the_cache_to_another_node() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache = cache.display();
    cache_travels(
        "local-cache",
        &format!("type=local,dest={cache},mode=max"),
        &format!("type=local,src={cache}"),
    )
    .await;
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cache/index.json")).unwrap())
            .unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
}

/// An import that cannot be read is reported on its own step and the build runs without it.
#[tokio::test]
async fn an_unreadable_import_fails_its_step_not_the_build() {
    let env = TestEnv::get();
    let nonce = unique();
    let dir = context(
        &format!("FROM {}\nRUN echo {nonce}\n", env.registry_image),
        &[],
    );
    let namespace = format!("nk-bad-import-{nonce}");
    let daemon = node("bad-import", &namespace).await;
    let empty = tempfile::tempdir().unwrap();
    // The client resolved a digest the directory does not have.
    let import = format!(
        "type=local,src={},digest=sha256:{}",
        empty.path().display(),
        "0".repeat(64)
    );
    let built = build_with_cache(&daemon, dir.path(), None, &[], &[import]).await;
    built
        .result
        .as_ref()
        .expect("the build succeeds without the cache");
    let errors = step_errors(&built);
    let (_, error) = errors
        .iter()
        .find(|(name, _)| name.starts_with("importing cache manifest from local:"))
        .expect("the import's step");
    assert!(error.contains("not in the cache's directory"), "{error}");
    assert_eq!(built.ran().len(), 1);
    remove_node(daemon, &namespace).await;
}

/// An export that cannot be written fails the build naming the registry, unless the export
/// says `ignore-error=true`: then its step shows the error and the build succeeds.
#[tokio::test]
async fn a_failed_export_fails_the_build_unless_its_errors_are_ignored() {
    let env = TestEnv::get();
    let nonce = unique();
    let dir = context(
        &format!("FROM {}\nRUN echo {nonce}\n", env.registry_image),
        &[],
    );
    let namespace = format!("nk-export-down-{nonce}");
    let daemon = node("export-down", &namespace).await;
    // Nothing listens on port 1.
    let down = "type=registry,ref=127.0.0.1:1/nodekit/cache:down";
    let built = build_with_cache(&daemon, dir.path(), None, &[down.into()], &[]).await;
    let error = built.result.expect_err("the export fails the build");
    assert!(
        error.contains("exporting cache to registry") && error.contains("127.0.0.1:1"),
        "{error}"
    );
    let ignored = format!("{down},ignore-error=true");
    let built = build_with_cache(&daemon, dir.path(), None, &[ignored], &[]).await;
    let response = built.result.as_ref().expect("the build succeeds");
    assert!(!response.contains_key("cache.manifest"));
    let errors = step_errors(&built);
    let (_, error) = errors
        .iter()
        .find(|(name, _)| name == "exporting cache to registry")
        .expect("the export's step");
    assert!(error.contains("127.0.0.1:1"), "{error}");
    remove_node(daemon, &namespace).await;
}
