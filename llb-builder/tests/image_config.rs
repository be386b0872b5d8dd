//! Image configs and the metadata resolver.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use std::cell::RefCell;

use common::{build, result, source_of};
use nodekit_llb_builder::{
    scratch, BuildError, Image, ImageConfig, ImageMetaResolver, ResolveImageOpt, ResolveMode,
    ResolvedImageConfig,
};
use nodekit_proto::pb;

const CONFIG: &str = r#"{
  "architecture": "arm64", "os": "linux", "variant": "v8",
  "config": {"User": "app", "Env": ["PATH=/usr/bin", "EMPTY=", "NOVALUE", "=skipped", "A=b=c"],
             "WorkingDir": "/work", "Cmd": ["sh"], "Entrypoint": null, "Labels": null},
  "rootfs": {"type": "layers", "diff_ids": []}
}"#;

struct Fake {
    digest: Option<String>,
    asked: RefCell<Vec<(String, ResolveImageOpt)>>,
}

impl ImageMetaResolver for Fake {
    fn resolve_image_config(
        &self,
        reference: &str,
        opt: &ResolveImageOpt,
    ) -> Result<ResolvedImageConfig, String> {
        self.asked
            .borrow_mut()
            .push((reference.to_string(), opt.clone()));
        if reference.contains("missing") {
            return Err("not found".into());
        }
        Ok(ResolvedImageConfig {
            reference: reference.to_string(),
            digest: self.digest.clone(),
            config: CONFIG.as_bytes().to_vec(),
        })
    }
}

fn fake(digest: Option<&str>) -> Fake {
    Fake {
        digest: digest.map(str::to_string),
        asked: RefCell::new(Vec::new()),
    }
}

#[test]
fn parses_configs_with_nulls() {
    let config = ImageConfig::parse(CONFIG.as_bytes()).expect("parses");
    assert_eq!(config.config.user, "app");
    assert_eq!(config.config.cmd, ["sh"]);
    assert!(config.config.entrypoint.is_empty());
    let platform = config.platform().expect("platform");
    assert_eq!(
        (platform.architecture.as_str(), platform.variant.as_str()),
        ("arm64", "v8")
    );
    assert!(ImageConfig::parse(b"{}")
        .expect("empty")
        .platform()
        .is_none());
    assert!(matches!(
        ImageConfig::parse(b"[1]"),
        Err(BuildError::InvalidImageConfig { .. })
    ));
}

#[test]
fn with_image_config_sets_env_dir_and_platform_but_not_user() {
    let config = ImageConfig::parse(CONFIG.as_bytes()).expect("parses");
    let state = scratch().dir("/old").with_image_config(&config);
    assert_eq!(
        state.env_list(),
        ["PATH=/usr/bin", "EMPTY=", "NOVALUE=", "A=b=c"]
    );
    assert_eq!(state.get_dir(), "/work");
    let arm64 = pb::Platform {
        os: "linux".into(),
        architecture: "arm64".into(),
        ..Default::default()
    };
    assert_eq!(state.get_platform(), Some(&arm64));
    assert_eq!(
        state.get_user(),
        "",
        "like BuildKit, the user is left to the caller"
    );
}

#[test]
fn resolve_applies_the_config() {
    let resolver = fake(None);
    let image = Image::new("busybox").resolve_mode(ResolveMode::PreferLocal);
    let resolved = image.resolve(&resolver).expect("resolves");
    let asked = resolver.asked.borrow();
    assert_eq!(asked[0].0, "docker.io/library/busybox:latest");
    assert_eq!(asked[0].1.resolve_mode, ResolveMode::PreferLocal);
    assert_eq!(resolved.config.config.user, "app");
    let def = build(&resolved.state.run(["env"]).root());
    let (op, _) = result(&def);
    assert_eq!(
        op.platform.as_ref().map(|p| p.architecture.as_str()),
        Some("arm64")
    );
    let meta = common::exec_of(&op).meta.clone().expect("meta");
    assert_eq!(meta.cwd, "/work");
    assert_eq!(meta.env[0], "PATH=/usr/bin");
}

#[test]
fn resolve_can_pin_the_digest() {
    let digest = format!("sha256:{}", "c".repeat(64));
    let resolver = fake(Some(&digest));
    let resolved = Image::new("busybox:1.36")
        .resolve_digest(true)
        .resolve(&resolver)
        .expect("resolves");
    let def = build(&resolved.state);
    let id = source_of(&common::ops(&def)[0]).identifier.clone();
    assert_eq!(
        id,
        format!("docker-image://docker.io/library/busybox:1.36@{digest}")
    );
    // Without resolve_digest the reference stays as written.
    let plain = Image::new("busybox:1.36")
        .resolve(&resolver)
        .expect("resolves");
    let id = source_of(&common::ops(&build(&plain.state))[0])
        .identifier
        .clone();
    assert_eq!(id, "docker-image://docker.io/library/busybox:1.36");
    assert_eq!(plain.digest, Some(digest));
}

#[test]
fn resolve_errors() {
    let resolver = fake(None);
    let err = Image::new("missing").resolve(&resolver).err();
    assert!(
        matches!(err, Some(BuildError::ResolveImageConfig { .. })),
        "{err:?}"
    );
    let err = Image::new("UPPER").resolve(&resolver).err();
    assert!(
        matches!(err, Some(BuildError::InvalidImageRef { .. })),
        "{err:?}"
    );
}
