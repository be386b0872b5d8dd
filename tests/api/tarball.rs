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

/// One entry of a tree: its kind (`d`, `f`, `l` with its target), mode and size.
type Tree = BTreeMap<String, (String, u32, u64)>;

/// The tree under `root` as it is on disk (hard-linked files are files).
fn disk_tree(root: &Path) -> Tree {
    use std::os::unix::fs::MetadataExt;
    let mut tree = Tree::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let kind = if meta.is_dir() {
                pending.push(path.clone());
                "d".to_string()
            } else if meta.file_type().is_symlink() {
                format!("l {}", std::fs::read_link(&path).unwrap().display())
            } else {
                "f".to_string()
            };
            let size = if meta.is_file() { meta.size() } else { 0 };
            tree.insert(name, (kind, meta.mode() & 0o7777, size));
        }
    }
    tree
}

/// The tree a tar holds; a hard link counts as the file it links to, and the pairs of names
/// the tar made hard links of are returned too.
fn tar_tree(path: &Path) -> (Tree, Vec<(String, String)>) {
    let mut tree = Tree::new();
    let mut links = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        let name = entry.path().unwrap().display().to_string();
        let name = name.trim_end_matches('/').to_string();
        let mode = header.mode().unwrap() & 0o7777;
        let kind = match header.entry_type() {
            tar::EntryType::Directory => "d".to_string(),
            tar::EntryType::Symlink => {
                format!("l {}", entry.link_name().unwrap().unwrap().display())
            }
            tar::EntryType::Link => {
                let target = entry.link_name().unwrap().unwrap().display().to_string();
                links.push((name.clone(), target));
                "f".to_string()
            }
            _ => "f".to_string(),
        };
        tree.insert(name, (kind, mode, header.size().unwrap()));
    }
    for (name, target) in &links {
        let size = tree[target].2;
        tree.get_mut(name).unwrap().2 = size;
    }
    (tree, links)
}

/// `type=tar`: the result's filesystem as one tar, entry for entry the image's own (kinds,
/// modes, sizes, link targets), hard links written as links.
#[tokio::test]
async fn a_tar_output_holds_the_images_filesystem() {
    let daemon = TestDaemon::start("tarball-fs").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("fs.tar");
    let state = busybox()
        .run([
            "sh",
            "-c",
            "echo fs > /exported && chmod 0750 /exported && ln -s exported /link \
             && ln /exported /hard && mkdir -m 1777 /shared",
        ])
        .root();
    let name = format!("nodekit.test/tar-fs:{}", std::process::id());
    let tar = BTreeMap::from([("dest".to_string(), dest.display().to_string())]);
    let image = BTreeMap::from([("name".to_string(), name.clone())]);
    let request = BuildRequest {
        definition: Some(definition(&state)),
        exporters: vec![("tar".to_string(), tar), ("image".to_string(), image)],
        ..Default::default()
    };
    let (result, _) = run_build(&daemon, request).await;
    result.unwrap();

    let (from_tar, links) = tar_tree(&dest);
    assert_eq!(links, [("hard".to_string(), "exported".to_string())]);
    assert_eq!(from_tar["exported"], ("f".to_string(), 0o750, 3));
    assert_eq!(from_tar["shared"].1, 0o1777);
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let env = TestEnv::get();
    let mounted = ctr(env, &["images", "mount", &name, rootfs.to_str().unwrap()]);
    assert!(
        mounted.status.success(),
        "{}",
        String::from_utf8_lossy(&mounted.stderr)
    );
    let on_disk = disk_tree(&rootfs);
    ctr(
        env,
        &["images", "unmount", "--rm", rootfs.to_str().unwrap()],
    );
    ctr(env, &["images", "rm", &name]);
    assert!(
        on_disk.contains_key("bin/sh"),
        "the base's files are there too"
    );
    assert_eq!(from_tar, on_disk);
    daemon.stop().await;
}
