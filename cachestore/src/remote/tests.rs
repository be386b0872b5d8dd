use super::*;

fn record(n: u8, parents: &[u8]) -> Record {
    Record {
        key: CacheKey::from_bytes([n; 32]),
        snapshot: format!("sha256:snap{n}"),
        description: format!("step {n}"),
        created_ms: 1_700_000_000_000 + u64::from(n),
        parents: parents
            .iter()
            .map(|p| CacheKey::from_bytes([*p; 32]))
            .collect(),
        payload: vec![2, n],
        ..Record::default()
    }
}

fn blobs(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("sha256:{n}")).collect()
}

/// Three steps on one base: two share the base layers, one has an empty result.
fn sample() -> (Vec<Record>, Vec<Vec<String>>) {
    let records = vec![record(3, &[]), record(1, &[3]), record(2, &[1, 9])];
    let chains = vec![
        blobs(&["base", "a"]),
        blobs(&["base", "a", "b"]),
        Vec::new(),
    ];
    (records, chains)
}

fn exported<'a>(records: &'a [Record], chains: &[Vec<String>]) -> Vec<ExportRecord<'a>> {
    records
        .iter()
        .zip(chains)
        .map(|(record, chain)| ExportRecord {
            record,
            chain: chain.clone(),
        })
        .collect()
}

#[test]
fn records_come_back_with_their_chains() {
    let (records, chains) = sample();
    let config = build(&exported(&records, &chains)).unwrap();
    let json = serde_json::to_vec(&config).unwrap();
    let (imported, foreign) = parse(&json).unwrap();
    assert_eq!(foreign, 0);
    let mut imported: Vec<(CacheKey, Vec<String>)> = imported
        .into_iter()
        .map(|i| (i.record.key, i.chain))
        .collect();
    imported.sort();
    let mut expected: Vec<(CacheKey, Vec<String>)> =
        records.iter().map(|r| r.key).zip(chains).collect();
    expected.sort();
    assert_eq!(imported, expected);
}

#[test]
fn shared_prefixes_are_one_layer_each_and_the_shape_is_buildkits() {
    let (records, chains) = sample();
    let config = build(&exported(&records, &chains)).unwrap();
    assert_eq!(config.layers.len(), 3, "base, base+a, base+a+b");
    let json: serde_json::Value = serde_json::to_value(&config).unwrap();
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers[0]["blob"], "sha256:base");
    assert_eq!(layers[0]["parent"], -1);
    // A parent of 0 is omitted, as Go's omitempty does.
    assert!(layers[1].get("parent").is_none(), "{json}");
    let first = &json["records"][0];
    assert_eq!(first["digest"], format!("blake3:{}", "01".repeat(32)));
    assert_eq!(first["layers"][0]["layer"], 2);
    assert_eq!(first["layers"][0]["createdAt"], "2023-11-14T22:13:20.001Z");
    assert_eq!(first["inputs"][0][0]["link"], 2, "record 3 sorts last");
    // Record 2's parent 9 is not exported: no input for it, never an empty one.
    assert_eq!(json["records"][1]["inputs"].as_array().unwrap().len(), 1);
    assert!(
        json["records"][1].get("layers").is_none(),
        "an empty result"
    );
}

#[test]
fn the_same_records_give_the_same_bytes() {
    let (records, chains) = sample();
    let one = serde_json::to_vec(&build(&exported(&records, &chains)).unwrap()).unwrap();
    let mut reversed: Vec<(Record, Vec<String>)> = records.into_iter().zip(chains).collect();
    reversed.reverse();
    let (records, chains): (Vec<Record>, Vec<Vec<String>>) = reversed.into_iter().unzip();
    let two = serde_json::to_vec(&build(&exported(&records, &chains)).unwrap()).unwrap();
    assert_eq!(one, two);
}

#[test]
fn buildkits_own_records_are_counted_not_imported() {
    let json = br#"{"layers":[{"blob":"sha256:aa","parent":-1},{"blob":"sha256:bb"}],
        "records":[{"digest":"sha256:1111","layers":[{"layer":1,"createdAt":"2024-01-01T00:00:00Z"}]},
                   {"digest":"sha256:2222","inputs":[[{"selector":"/x","link":0}]],
                    "chains":[{"layers":[0,1],"createdAt":"2024-01-01T00:00:00Z"}]}]}"#;
    assert_eq!(parse(json).unwrap(), (Vec::new(), 2));
}

#[test]
fn a_damaged_config_is_refused_with_what_is_wrong() {
    let cases: [(&[u8], &str); 5] = [
        (b"not json", "not JSON"),
        (
            br#"{"layers":[{"blob":"sha256:aa","parent":5}]}"#,
            "parent 5",
        ),
        (
            br#"{"layers":[{"blob":"sha256:aa","parent":1},{"blob":"sha256:bb"}]}"#,
            "loop",
        ),
        (
            br#"{"records":[{"digest":"sha256:1","inputs":[[]]}]}"#,
            "without links",
        ),
        (
            br#"{"records":[{"digest":"sha256:1","inputs":[[{"link":4}]]}]}"#,
            "record 4",
        ),
    ];
    for (json, says) in cases {
        let error = parse(json).unwrap_err().to_string();
        assert!(error.contains(says), "{error}");
    }
}

#[test]
fn a_nodekit_record_naming_a_missing_layer_is_refused() {
    let (records, _) = sample();
    let stored = base64::engine::general_purpose::STANDARD.encode(records[0].encode().unwrap());
    let json = format!(
        r#"{{"records":[{{"digest":"blake3:{}","layers":[{{"layer":3,"createdAt":""}}],"nodekit":"{stored}"}}]}}"#,
        records[0].key.to_hex()
    );
    let error = parse(json.as_bytes()).unwrap_err().to_string();
    assert!(error.contains("layer 3, which does not exist"), "{error}");
}

#[test]
fn an_inline_cache_names_image_layers_by_index_and_parses_back_on_the_manifests_blobs() {
    let (records, _) = sample();
    // Records 3 and 1 are the image's bottom 2 and 3 layers; 2 has none (left out).
    let inline = build_inline(&[(&records[0], 2), (&records[1], 3), (&records[2], 0)]).unwrap();
    let raw: Vec<serde_json::Value> = serde_json::from_slice(&inline).unwrap();
    assert_eq!(raw.len(), 2);
    assert!(raw.iter().all(|r| r.get("layers").is_some()));
    let layers = blobs(&["base0", "base1", "top"]);
    let (imported, foreign) = parse_inline(&inline, &layers).unwrap();
    assert_eq!(foreign, 0);
    let chain_of = |key: CacheKey| {
        imported
            .iter()
            .find(|r| r.record.key == key)
            .map(|r| r.chain.clone())
            .unwrap()
    };
    assert_eq!(chain_of(records[0].key), layers[..2].to_vec());
    assert_eq!(chain_of(records[1].key), layers);
    // A layer index past the image's is refused, as a config's would be.
    assert!(parse_inline(&inline, &layers[..1]).is_err());
}
