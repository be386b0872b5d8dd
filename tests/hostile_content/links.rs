//! A base image whose layer holds links out of the rootfs (absolute, `..`, to `/`), pointing at
//! a canary directory on the host: COPY, ADD and WORKDIR through them, and `COPY --from` of
//! them, resolve inside the rootfs (as upstream's `fs.RootPath`); the canary is untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nodekit_test_support::{ctr, run_in_image, TestDaemon, TestEnv};

use crate::build::{assert_still_serving, dockerfile, dockerfile_with};
use crate::oci_archive;

const HOSTILE_IMAGE: &str = "nodekit.test/hostile-links:1";
const RESULT_IMAGE: &str = "nodekit.test/hostile-links-result:1";
/// An image whose layer itself writes through a link and hard-links out of the rootfs.
const LAYER_IMAGE: &str = "nodekit.test/hostile-layer-links:1";
const LAYER_RESULT_IMAGE: &str = "nodekit.test/hostile-layer-links-result:1";
const SECRET: &str = "host secret\n";

/// A host directory the image's links point at, holding one file.
struct Canary {
    dir: PathBuf,
}

impl Canary {
    fn new(test: &str) -> Canary {
        let dir = PathBuf::from(format!("/tmp/nodekit-canary-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("canary"), SECRET).unwrap();
        Canary { dir }
    }

    /// The canary's path inside a rootfs, without its leading `/`.
    fn in_root(&self) -> String {
        self.dir
            .display()
            .to_string()
            .trim_start_matches('/')
            .to_string()
    }

    fn assert_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["canary"],
            "nothing was written into the host's canary directory"
        );
        let content = std::fs::read_to_string(self.dir.join("canary")).unwrap();
        assert_eq!(content, SECRET, "the host's canary file is unchanged");
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The hostile layer: links leading out of the rootfs, to the canary and to `/`.
fn hostile_layer(canary: &Canary) -> Vec<u8> {
    let abs = canary.dir.display().to_string();
    let up = format!("../../../../../../..{abs}");
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_cksum();
    tar.append_data(&mut dir, "etc/", std::io::empty()).unwrap();
    for (name, target) in [
        ("etc/evil", format!("{abs}/canary")),
        ("abs", abs.clone()),
        ("rel", up.clone()),
        ("root", "/".to_string()),
        ("etc/up", format!("{up}/canary")),
    ] {
        let mut link = tar::Header::new_ustar();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_mode(0o777);
        link.set_size(0);
        tar.append_link(&mut link, name, target).unwrap();
    }
    tar.into_inner().unwrap()
}

fn entry(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(size);
    header
}

/// A layer that writes a file through a symlinked parent (`esc/…`, `esc` leading to the
/// canary's host path) and hard-links `h` to the canary by a `..` path: containerd's differ
/// must resolve both inside the rootfs.
fn write_through_layer(canary: &Canary) -> Vec<u8> {
    let abs = canary.dir.display().to_string();
    let mut tar = tar::Builder::new(Vec::new());
    let mut link = entry(tar::EntryType::Symlink, 0);
    tar.append_link(&mut link, "esc", &abs).unwrap();
    for (name, content) in [
        ("esc/canary", "layer canary\n"),
        ("esc/through-layer", "layer\n"),
    ] {
        let mut file = entry(tar::EntryType::Regular, content.len() as u64);
        tar.append_data(&mut file, name, content.as_bytes())
            .unwrap();
    }
    let mut hard = entry(tar::EntryType::Link, 0);
    let target = format!("../../../../../../..{abs}/canary");
    tar.append_link(&mut hard, "h", target).unwrap();
    tar.into_inner().unwrap()
}

fn import_image(dir: &Path, name: &str, layer: &[u8]) {
    let archive = dir.join("hostile.tar");
    oci_archive::write(&archive, name, layer);
    let out = ctr(
        TestEnv::get(),
        &["images", "import", archive.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn remove_images(images: &[&str]) {
    for image in images {
        let _ = ctr(TestEnv::get(), &["images", "rm", "--sync", image]);
    }
}

/// Writes through every link, then copies the links and what they lead to into a busybox image.
fn hostile_dockerfile(canary: &Canary) -> String {
    let c = canary.in_root();
    let base = &TestEnv::get().local_image;
    format!(
        "FROM {HOSTILE_IMAGE} AS hostile
COPY hello.txt /abs/via-abs
COPY hello.txt /rel/via-rel
COPY hello.txt /etc/evil
ADD hello.txt /etc/up
WORKDIR /root/{c}/workdir
ADD hello.txt ./via-workdir

FROM {base}
COPY --from=hostile / /probe/
COPY --from=hostile /rel/via-rel /followed-rel
COPY --from=hostile /etc/evil /followed-evil
COPY --from=hostile /abs /followed-abs
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_out_of_a_base_image_resolve_inside_its_rootfs() {
    let canary = Canary::new("copy");
    let dir = tempfile::tempdir().unwrap();
    remove_images(&[HOSTILE_IMAGE, RESULT_IMAGE]);
    import_image(dir.path(), HOSTILE_IMAGE, &hostile_layer(&canary));
    let daemon = TestDaemon::start("hostile-links").await;
    std::fs::write(dir.path().join("hello.txt"), "hello\n").unwrap();
    std::fs::write(dir.path().join("Dockerfile"), hostile_dockerfile(&canary)).unwrap();
    let built = dockerfile(&daemon, dir.path(), Some(RESULT_IMAGE)).await;
    canary.assert_untouched();
    built.expect("the build through the links succeeds");

    let c = canary.in_root();
    let script = format!(
        "cd /probe/{c} && ls -1 . && ls -1 workdir && cat via-abs via-rel canary workdir/via-workdir && \
         cat /followed-rel /followed-evil && ls -1 /followed-abs && readlink /probe/etc/evil && readlink /probe/rel"
    );
    let seen = run_in_image(RESULT_IMAGE, None, &["sh", "-c", &script]);
    let abs = canary.dir.display();
    let expected = format!(
        "canary\nvia-abs\nvia-rel\nworkdir\nvia-workdir\nhello\nhello\nhello\nhello\n\
         hello\nhello\ncanary\nvia-abs\nvia-rel\nworkdir\n{abs}/canary\n../../../../../../..{abs}\n"
    );
    assert_eq!(seen, expected);
    canary.assert_untouched();
    export_hostile_stage(&daemon, dir.path(), &canary).await;
    assert_still_serving(&daemon).await;
    daemon.stop().await;
    remove_images(&[HOSTILE_IMAGE, RESULT_IMAGE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_writing_through_links_unpacks_inside_its_rootfs() {
    let canary = Canary::new("layer");
    let dir = tempfile::tempdir().unwrap();
    remove_images(&[LAYER_IMAGE, LAYER_RESULT_IMAGE]);
    import_image(dir.path(), LAYER_IMAGE, &write_through_layer(&canary));
    let daemon = TestDaemon::start("hostile-layer-links").await;
    let base = &TestEnv::get().local_image;
    let text = format!("FROM {LAYER_IMAGE} AS layer\nFROM {base}\nCOPY --from=layer / /probe/\n");
    std::fs::write(dir.path().join("Dockerfile"), text).unwrap();
    let built = dockerfile(&daemon, dir.path(), Some(LAYER_RESULT_IMAGE)).await;
    canary.assert_untouched();
    built.expect("the build on the layer succeeds");
    let c = canary.in_root();
    let script = format!("cat /probe/h /probe/{c}/canary /probe/{c}/through-layer");
    let seen = run_in_image(LAYER_RESULT_IMAGE, None, &["sh", "-c", &script]);
    assert_eq!(seen, "layer canary\nlayer canary\nlayer\n");
    canary.assert_untouched();
    assert_still_serving(&daemon).await;
    daemon.stop().await;
    remove_images(&[LAYER_IMAGE, LAYER_RESULT_IMAGE]);
}

/// The hostile stage exported to a local directory: its links are written as links (their
/// targets unchanged, as upstream's local exporter) and nothing is written through them.
async fn export_hostile_stage(daemon: &TestDaemon, dir: &Path, canary: &Canary) {
    let dest = dir.join("exported");
    let attrs = BTreeMap::from([("target".to_string(), "hostile".to_string())]);
    let local = BTreeMap::from([("dest".to_string(), dest.display().to_string())]);
    let exporters = vec![("local".to_string(), local)];
    dockerfile_with(daemon, dir, attrs, exporters)
        .await
        .expect("the hostile stage exports");
    canary.assert_untouched();
    let abs = canary.dir.display().to_string();
    assert_eq!(std::fs::read_link(dest.join("abs")).unwrap(), canary.dir);
    assert_eq!(
        std::fs::read_link(dest.join("etc/evil")).unwrap(),
        PathBuf::from(format!("{abs}/canary"))
    );
    let inside = dest.join(canary.in_root());
    let content = std::fs::read_to_string(inside.join("workdir/via-workdir")).unwrap();
    assert_eq!(content, "hello\n");
    assert_eq!(
        std::fs::read_to_string(inside.join("canary")).unwrap(),
        "hello\n"
    );
}
