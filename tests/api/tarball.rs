//! The `oci` and `docker` exporters: the image reaches the client as a tarball through its
//! session (FileSend), loads with `ctr images import` and runs; the OCI one reads as an OCI
//! layout (skopeo's `oci-archive:`).

use std::collections::BTreeMap;
use std::path::Path;

use nodekit::build::BuildRequest;
use nodekit_test_support::{ctr, TestDaemon, TestEnv};

use crate::helpers::{busybox, definition, run_build, run_in_image, skopeo_raw_manifest};

fn tarball_build(kind: &str, name: &str, dest: &Path, text: &str) -> BuildRequest {
    let state = busybox()
        .run(["sh", "-c", &format!("echo {text} > /exported")])
        .root();
    let attrs = BTreeMap::from([
        ("name".to_string(), name.to_string()),
        ("dest".to_string(), dest.display().to_string()),
    ]);
    BuildRequest {
        definition: Some(definition(&state)),
        exporters: vec![(kind.to_string(), attrs)],
        ..Default::default()
    }
}

/// The names of the tarball's entries.
fn entries(path: &Path) -> Vec<String> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// Imports `tarball` into the node's store and reads `/exported` from the image.
fn import_and_read(tarball: &Path, name: &str) -> String {
    let env = TestEnv::get();
    let imported = ctr(env, &["images", "import", &tarball.display().to_string()]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let text = run_in_image(name, &["cat", "/exported"]);
    ctr(env, &["images", "rm", name]);
    text
}

#[tokio::test]
async fn an_oci_tarball_is_a_layout_that_loads_and_runs() {
    let daemon = TestDaemon::start("tarball-oci").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("image.tar");
    let name = format!("nodekit.test/oci-tarball:{}", std::process::id());
    let (result, _) = run_build(&daemon, tarball_build("oci", &name, &dest, "oci")).await;
    let digest = result.unwrap()["containerimage.digest"].clone();
    let listed = entries(&dest);
    assert_eq!(listed[..2], ["oci-layout", "index.json"]);
    assert!(listed.contains(&format!("blobs/{}", digest.replacen(':', "/", 1))));

    let raw = skopeo_raw_manifest(&[], &format!("oci-archive:{}", dest.display()));
    assert_eq!(nodekitd::oci::sha256_digest(&raw), digest);
    assert_eq!(import_and_read(&dest, &name), "oci\n");
    daemon.stop().await;
}

#[tokio::test]
async fn a_docker_tarball_loads_and_runs() {
    let daemon = TestDaemon::start("tarball-docker").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("image.tar");
    let name = format!("nodekit.test/docker-tarball:{}", std::process::id());
    let (result, _) = run_build(&daemon, tarball_build("docker", &name, &dest, "docker")).await;
    result.unwrap();
    assert!(entries(&dest).contains(&"manifest.json".to_string()));
    assert_eq!(import_and_read(&dest, &name), "docker\n");
    daemon.stop().await;
}

/// `type=tar`: the result's filesystem as one tar (files with their modes, symlinks as links).
#[tokio::test]
async fn a_tar_output_holds_the_results_filesystem() {
    use std::io::Read;

    let daemon = TestDaemon::start("tarball-fs").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("fs.tar");
    let state = busybox()
        .run([
            "sh",
            "-c",
            "echo fs > /exported && chmod 0750 /exported && ln -s exported /link",
        ])
        .root();
    let attrs = BTreeMap::from([("dest".to_string(), dest.display().to_string())]);
    let request = BuildRequest {
        definition: Some(definition(&state)),
        exporters: vec![("tar".to_string(), attrs)],
        ..Default::default()
    };
    let (result, _) = run_build(&daemon, request).await;
    result.unwrap();
    let mut archive = tar::Archive::new(std::fs::File::open(&dest).unwrap());
    let (mut exported, mut link, mut shell) = (None, None, false);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let path = path.trim_start_matches("./").to_string();
        match path.as_str() {
            "exported" => {
                let mut text = String::new();
                entry.read_to_string(&mut text).unwrap();
                exported = Some((text, entry.header().mode().unwrap() & 0o777));
            }
            "link" => link = entry.link_name().unwrap().map(|l| l.display().to_string()),
            "bin/sh" => shell = true,
            _ => {}
        }
    }
    assert_eq!(exported, Some(("fs\n".to_string(), 0o750)));
    assert_eq!(link.as_deref(), Some("exported"));
    assert!(shell, "the base image's files are there too");
    daemon.stop().await;
}
