//! Definition metadata, marshal options, source maps, JSON round trip and digest stability.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::{build, build_with, caps, digests, options};
use nodekit_llb_builder::{
    definition_from_json, definition_to_json, image, local, Mkdir, Mount, OpOptions, SourceMap,
};
use nodekit_proto::pb;

#[test]
fn op_metadata_and_terminal_caps() {
    let opts = OpOptions::new()
        .custom_name("make dir")
        .ignore_cache()
        .export_cache(true)
        .progress_group("g1", "group", true);
    let state = image("busybox").file_with(Mkdir::new("/d", 0o755), opts);
    let def = build(&state);
    let file = &def.metadata[&digests(&def)[1]];
    assert!(file.ignore_cache);
    assert_eq!(file.description["llb.customname"], "make dir");
    assert_eq!(file.export_cache, Some(pb::ExportCache { value: true }));
    assert_eq!(
        file.progress_group.as_ref().map(|g| g.id.as_str()),
        Some("g1")
    );
    let want = [
        "constraints",
        "meta.description",
        "meta.exportcache",
        "meta.ignorecache",
        "platform",
    ];
    assert_eq!(caps(&def, &digests(&def)[2]), want);
    // Names are metadata: they don't change the op's digest.
    assert_eq!(
        digests(&def)[1],
        digests(&build(&image("busybox").file(Mkdir::new("/d", 0o755))))[1]
    );
}

#[test]
fn marshal_options_apply_to_every_op() {
    let mut opts = options();
    opts.op_options = OpOptions::new().ignore_cache().require("labels.gpu==true");
    let state = image("busybox")
        .run(["true"])
        .options(OpOptions::new().require("x"))
        .root();
    let def = build_with(&state, &opts);
    let all = common::ops(&def);
    let filters = |i: usize| {
        all[i]
            .constraints
            .as_ref()
            .map(|c| c.filter.clone())
            .unwrap_or_default()
    };
    assert_eq!(filters(0), ["labels.gpu==true"]);
    assert_eq!(filters(1), ["labels.gpu==true", "x"]);
    assert!(digests(&def)[..2]
        .iter()
        .all(|d| def.metadata[d].ignore_cache));
}

#[test]
fn source_locations() {
    let dockerfile = SourceMap::new(
        "Dockerfile",
        "Dockerfile",
        b"FROM busybox\nRUN true\n".to_vec(),
    );
    let range = |line| pb::Range {
        start: Some(pb::Position { line, character: 0 }),
        end: Some(pb::Position { line, character: 0 }),
    };
    let from = image("busybox");
    let run = from
        .run(["true"])
        .options(OpOptions::new().location(&dockerfile, vec![range(2)]));
    let same_file = SourceMap::new(
        "Dockerfile",
        "Dockerfile",
        b"FROM busybox\nRUN true\n".to_vec(),
    );
    let out = run.root().file_with(
        Mkdir::new("/x", 0o755),
        OpOptions::new().location(&same_file, vec![range(3)]),
    );
    let def = build(&out);
    let source = def.source.as_ref().expect("source");
    assert_eq!(source.infos.len(), 1, "equal maps are stored once");
    assert_eq!(source.infos[0].filename, "Dockerfile");
    let at = &source.locations[&digests(&def)[1]].locations[0];
    assert_eq!((at.source_index, at.ranges.clone()), (0, vec![range(2)]));
    assert!(source.locations.contains_key(&digests(&def)[2]));
}

#[test]
fn json_round_trip() {
    let state = image("busybox")
        .run(["sh", "-c", "echo hi > /out/x"])
        .mount("/out", Mount::scratch())
        .custom_name("write")
        .finish()
        .get_mount("/out")
        .expect("mount");
    let def = build(&state);
    let text = definition_to_json(&def);
    let back = definition_from_json(&text).expect("parses");
    assert_eq!(back.def, def.def);
    assert_eq!(back.metadata, def.metadata);
    assert!(text.contains("\"llb.customname\": \"write\""), "{text}");
    assert!(definition_from_json(r#"{"def": [1]}"#).is_err());
    assert!(definition_from_json(r#"{"def": ["%%"]}"#).is_err());
}

/// A Dockerfile-like graph: context, base image, a run with a cache mount, copies.
fn app_graph() -> nodekit_llb_builder::State {
    let context = local("context");
    let base = image("golang:1.22").env("CGO_ENABLED", "0").dir("/src");
    let source =
        base.file(nodekit_llb_builder::Copy::new(&context, ".", ".").create_dest_path(true));
    let built = source
        .run_shlex("go build -o /out/app .")
        .mount(
            "/root/.cache/go-build",
            Mount::cache("go-build", Default::default()),
        )
        .root();
    let copy = nodekit_llb_builder::Copy::new(&built, "/out/app", "/usr/local/bin/app");
    image("gcr.io/distroless/static").file(copy)
}

#[test]
fn digests_are_stable() {
    let first = build(&app_graph());
    let second = build(&app_graph());
    assert_eq!(first, second);
    // Regression pins: any change to how these ops are encoded changes these digests. (The
    // wire tests derive single-op bytes independently; these guard whole graphs.)
    let pinned = digests(&first);
    assert_eq!(pinned.len(), 7);
    assert_eq!(
        pinned,
        PINNED.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    if std::env::var_os("DUMP_LLB").is_some() {
        eprintln!("{:#?}", common::ops(&first));
    }
}

const PINNED: [&str; 7] = [
    "sha256:838010b88902f79d13aac23daeaf1d905a239bead0cb94ba0246116af084cc26",
    "sha256:97325b5d6a2e8baad073fc900a6dadbcb4a4f1a2f63419c52b8298c3e45df9ba",
    "sha256:1c696f1034a56761ca7e1da8da578acad87558b3bf7cb2e1ec90943383ced9c5",
    "sha256:e95a1990d961917cdda1e8c5bbe446408b09e6469df2c21d9a358374dda9a2bb",
    "sha256:531d7196ed50cf37a43ad9a2086bea9c1407c49d979301a2733462e80a3d32ba",
    "sha256:47ad22c4ce68a7374fdf8b9d3e35bd70c2d405d9f88d416f4d9bb97377122a8e",
    "sha256:4662480e51e8a84d05f8193ac5fae78fccae673fadb28381258f3b2592f1ddca",
];
