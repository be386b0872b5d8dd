use super::*;

fn entry(kind: &str, attrs: &[(&str, &str)]) -> CacheOptionsEntry {
    CacheOptionsEntry {
        r#type: kind.into(),
        attrs: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn options(exports: Vec<CacheOptionsEntry>) -> CacheOptions {
    CacheOptions {
        exports,
        ..Default::default()
    }
}

#[test]
fn an_export_gets_buildkits_defaults() {
    let read = exports(&options(vec![entry("local", &[("dest", "/tmp/c")])])).unwrap();
    assert_eq!(
        read,
        [CacheExport {
            target: ExportTarget::Local {
                dest: "/tmp/c".into()
            },
            mode: Mode::Min,
            compression: LayerCompression {
                kind: "gzip".into(),
            },
            oci_mediatypes: true,
            image_manifest: true,
            ignore_error: false,
        }]
    );
}

#[test]
fn registry_refs_are_normalized_and_attributes_read() {
    let read = exports(&options(vec![entry(
        "registry",
        &[
            ("ref", "team/cache"),
            ("mode", "max"),
            ("compression", "zstd"),
            ("oci-mediatypes", "false"),
            ("ignore-error", "yes please"),
        ],
    )]))
    .unwrap();
    let export = &read[0];
    assert_eq!(
        export.target,
        ExportTarget::Registry {
            reference: "docker.io/team/cache:latest".into(),
        }
    );
    assert_eq!(export.mode, Mode::Max);
    assert_eq!(export.compression.kind, "zstd");
    // Without OCI media types the default is an index (a Docker manifest list).
    assert!(!export.oci_mediatypes && !export.image_manifest);
    assert!(!export.ignore_error, "not a bool: false, as buildkitd");
}

#[test]
fn the_old_export_fields_are_a_registry_export() {
    let cache = CacheOptions {
        export_ref_deprecated: "127.0.0.1:5000/cache".into(),
        export_attrs_deprecated: [("mode".to_string(), "max".to_string())].into(),
        ..Default::default()
    };
    let read = exports(&cache).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].mode, Mode::Max);
    assert!(
        matches!(&read[0].target, ExportTarget::Registry { reference, .. } if reference == "127.0.0.1:5000/cache:latest")
    );
}

#[test]
fn bad_exports_fail_naming_the_problem() {
    let cases: [(Vec<CacheOptionsEntry>, &str); 7] = [
        (vec![entry("nope", &[])], "unknown cache exporter: \"nope\""),
        (
            vec![entry("local", &[])],
            "local cache exporter requires dest",
        ),
        (vec![entry("registry", &[])], "missing ref"),
        (
            vec![entry(
                "registry",
                &[("ref", "a/b"), ("oci-mediatypes", "maybe")],
            )],
            "failed to parse oci-mediatypes",
        ),
        (
            vec![entry(
                "registry",
                &[
                    ("ref", "a/b"),
                    ("oci-mediatypes", "false"),
                    ("image-manifest", "true"),
                ],
            )],
            "OCI mediatypes are required",
        ),
        (
            vec![entry("local", &[("dest", "d"), ("compression", "lz4")])],
            "unsupported compression type lz4",
        ),
        (vec![entry("gha", &[])], "no gha cache backend"),
    ];
    for (entries, says) in cases {
        let error = exports(&options(entries)).unwrap_err();
        assert!(error.contains(says), "{error}");
    }
}

#[test]
fn duplicates_fail_and_extra_inline_exports_are_dropped() {
    let error = exports(&options(vec![
        entry("registry", &[("ref", "a/b")]),
        entry("registry", &[("ref", "a/b"), ("mode", "max")]),
    ]))
    .unwrap_err();
    assert_eq!(error, "duplicate cache exports [registry]");
    let read = exports(&options(vec![
        entry("inline", &[]),
        entry("inline", &[]),
        entry("local", &[("dest", "d")]),
    ]))
    .unwrap();
    assert_eq!(read.len(), 2);
}

#[test]
fn each_import_is_read_on_its_own() {
    let read = imports(&[
        entry("local", &[("src", "/c"), ("digest", "sha256:ab")]),
        entry("local", &[("src", "/c")]),
        entry(
            "registry",
            &[
                ("ref", "127.0.0.1:5000/c:v1"),
                ("registry.insecure", "true"),
            ],
        ),
        entry("what", &[]),
    ]);
    assert_eq!(
        read[0],
        Ok(ImportSource::Local {
            src: "/c".into(),
            digest: "sha256:ab".into()
        })
    );
    assert!(read[1]
        .as_ref()
        .unwrap_err()
        .contains("requires explicit digest"));
    assert!(read[2]
        .as_ref()
        .unwrap_err()
        .contains("registry.insecure=true is not supported by nodekitd"));
    assert!(read[3]
        .as_ref()
        .unwrap_err()
        .contains("unknown cache importer"));
}

#[test]
fn settings_nodekitd_cannot_honour_are_refused_by_name() {
    for (key, value) in [
        ("compression", "estargz"),
        ("compression-level", "3"),
        ("force-compression", "true"),
        ("mode", "maximum"),
    ] {
        let error = exports(&options(vec![entry(
            "local",
            &[("dest", "/tmp/c"), (key, value)],
        )]))
        .unwrap_err();
        assert!(error.contains(key) || error.contains(value), "{error}");
    }
}
