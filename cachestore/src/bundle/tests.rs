use super::*;

/// What a reader handed over, in order.
#[derive(Default, Debug, PartialEq)]
struct Collected {
    header: Option<BundleHeader>,
    blobs: Vec<(BlobHeader, Vec<u8>)>,
    records: Vec<Record>,
}

impl BundleVisitor for Collected {
    fn header(&mut self, header: &BundleHeader) -> Result<(), String> {
        self.header = Some(header.clone());
        Ok(())
    }

    fn blob(&mut self, header: &BlobHeader, data: &mut dyn Read) -> Result<(), String> {
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        self.blobs.push((header.clone(), bytes));
        Ok(())
    }

    fn record(&mut self, record: Record) -> Result<(), String> {
        self.records.push(record);
        Ok(())
    }
}

fn blob(content: &[u8]) -> (BlobHeader, Vec<u8>) {
    let header = BlobHeader {
        digest: format!("sha256:{}", hex::encode(Sha256::digest(content))),
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        size: content.len() as u64,
    };
    (header, content.to_vec())
}

fn record(n: u8) -> Record {
    Record {
        key: CacheKey::from_bytes([n; 32]),
        snapshot: format!("sha256:{n:02x}"),
        lease: "nodekit-cache-x".into(),
        description: format!("step {n}"),
        payload: vec![2, n, n],
        ..Record::default()
    }
}

/// A bundle of two blobs (one of 300 kB of incompressible bytes) and two records.
fn sample() -> (Vec<u8>, Collected) {
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let blobs = vec![blob(b"config"), blob(&noise)];
    let records = vec![record(1), record(2)];
    let header = BundleHeader::new("test", 7);
    let mut writer = BundleWriter::new(Vec::new(), &header).unwrap();
    for (blob_header, bytes) in &blobs {
        writer.blob(blob_header, &mut bytes.as_slice()).unwrap();
    }
    for record in &records {
        writer.record(record).unwrap();
    }
    let bytes = writer.finish().unwrap();
    let expected = Collected {
        header: Some(header),
        blobs,
        records,
    };
    (bytes, expected)
}

fn read(bytes: &[u8]) -> Result<Collected, BundleError> {
    let mut collected = Collected::default();
    let read = read_bundle(bytes, &mut collected).map(|_| collected);
    if let Some(dir) = std::env::var_os("NODEKIT_FUZZ_SEED_DIR") {
        write_fuzz_seeds(bytes, read.is_ok(), std::path::Path::new(&dir));
    }
    read
}

/// What the tests read, as seeds of fuzz/fuzz_targets/cache_bundle.rs (bench/fuzz.sh sets
/// NODEKIT_FUZZ_SEED_DIR): the bundle as it is (first byte 0), and its frame decompressed
/// (first byte 1, the target compresses it again). Large damaged ones add nothing small ones
/// do not, only time per run.
fn write_fuzz_seeds(bytes: &[u8], valid: bool, dir: &std::path::Path) {
    if !valid && bytes.len() > 16 << 10 {
        return;
    }
    let mut seeds = vec![[&[0u8][..], bytes].concat()];
    let frame = bytes.get(MAGIC.len() + 2..).unwrap_or_default();
    if let Ok(inner) = zstd::decode_all(frame) {
        seeds.push([&[1u8][..], &inner].concat());
    }
    for seed in seeds {
        let name = blake3::hash(&seed).to_hex();
        std::fs::write(dir.join(&name[..16]), seed).expect("write a fuzz seed");
    }
}

#[test]
fn a_bundle_reads_back_as_written() {
    let (bytes, expected) = sample();
    let collected = read(&bytes).unwrap();
    assert_eq!(collected, expected);
    // Stored forms round-trip: the key comes back from the section, not the record.
    assert_eq!(collected.records[1].key, CacheKey::from_bytes([2; 32]));
}

#[test]
fn a_bundle_cut_short_anywhere_is_refused() {
    let (bytes, _) = sample();
    let cuts = [
        0,
        5,
        MAGIC.len(),
        MAGIC.len() + 2,
        40,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 40,
        bytes.len() - 1,
    ];
    for cut in cuts {
        let error = read(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(
                error,
                BundleError::Truncated | BundleError::NotABundle | BundleError::Corrupt(_)
            ),
            "cut at {cut}: {error}"
        );
    }
    assert!(matches!(
        read(&bytes[..bytes.len() / 2]),
        Err(BundleError::Truncated)
    ));
}

#[test]
fn a_flipped_byte_anywhere_in_the_frame_is_refused() {
    let (bytes, _) = sample();
    let start = MAGIC.len() + 2;
    for at in (start..bytes.len()).step_by(997).chain([bytes.len() - 1]) {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        let error = read(&damaged).expect_err(&format!("flip at {at} of {}", bytes.len()));
        assert!(
            matches!(
                error,
                BundleError::Corrupt(_)
                    | BundleError::BlobDigest { .. }
                    | BundleError::Truncated
                    | BundleError::KeyScheme { .. }
            ),
            "flip at {at}: {error}"
        );
    }
}

#[test]
fn a_newer_or_foreign_file_is_named_as_such() {
    let (mut bytes, _) = sample();
    bytes[MAGIC.len() + 1] = 2;
    let error = read(&bytes).unwrap_err();
    assert!(matches!(
        error,
        BundleError::NewerVersion {
            found: 2,
            supported: 1
        }
    ));
    assert!(error.to_string().contains("newer"), "{error}");
    assert!(matches!(
        read(b"{\"not\": \"a bundle\"}"),
        Err(BundleError::NotABundle)
    ));
    assert!(matches!(read(b""), Err(BundleError::NotABundle)));
}

#[test]
fn data_after_the_bundle_is_refused() {
    let (mut bytes, _) = sample();
    bytes.extend_from_slice(b"tail");
    assert!(matches!(read(&bytes), Err(BundleError::Corrupt(_))));
}

#[test]
fn records_of_another_key_scheme_are_refused() {
    let mut header = BundleHeader::new("test", 7);
    header.key_version = "nodekit-cache-key/v0".into();
    let bytes = BundleWriter::new(Vec::new(), &header)
        .unwrap()
        .finish()
        .unwrap();
    let error = read(&bytes).unwrap_err();
    assert!(matches!(error, BundleError::KeyScheme { .. }), "{error}");
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let (mut header, bytes) = blob(b"layer");
    header.digest = blob(b"other").0.digest;
    let mut writer = BundleWriter::new(Vec::new(), &BundleHeader::new("test", 7)).unwrap();
    writer.blob(&header, &mut bytes.as_slice()).unwrap();
    let error = read(&writer.finish().unwrap()).unwrap_err();
    assert!(matches!(error, BundleError::BlobDigest { .. }), "{error}");
}

#[test]
fn a_visitor_that_reads_part_of_a_blob_still_gets_it_verified() {
    struct Skimmer(usize);
    impl BundleVisitor for Skimmer {
        fn header(&mut self, _: &BundleHeader) -> Result<(), String> {
            Ok(())
        }
        fn blob(&mut self, _: &BlobHeader, data: &mut dyn Read) -> Result<(), String> {
            let mut first = [0u8; 4];
            data.read_exact(&mut first).map_err(|e| e.to_string())?;
            self.0 += 1;
            Ok(())
        }
        fn record(&mut self, _: Record) -> Result<(), String> {
            Ok(())
        }
    }
    let (bytes, _) = sample();
    let mut skimmer = Skimmer(0);
    read_bundle(bytes.as_slice(), &mut skimmer).unwrap();
    assert_eq!(skimmer.0, 2);
}

#[test]
fn a_blob_shorter_than_its_header_says_is_not_written() {
    let (header, bytes) = blob(b"layer");
    let mut writer = BundleWriter::new(Vec::new(), &BundleHeader::new("test", 7)).unwrap();
    assert!(writer.blob(&header, &mut &bytes[..3]).is_err());
}

#[test]
fn a_refused_blob_that_does_not_match_its_digest_is_the_bundles_fault() {
    struct Refuser;
    impl BundleVisitor for Refuser {
        fn header(&mut self, _: &BundleHeader) -> Result<(), String> {
            Ok(())
        }
        fn blob(&mut self, _: &BlobHeader, _: &mut dyn Read) -> Result<(), String> {
            Err("the store says the digest is wrong".into())
        }
        fn record(&mut self, _: Record) -> Result<(), String> {
            Ok(())
        }
    }
    let (mut header, bytes) = blob(b"layer");
    let mut writer = BundleWriter::new(Vec::new(), &BundleHeader::new("test", 7)).unwrap();
    writer.blob(&header, &mut bytes.as_slice()).unwrap();
    let good = writer.finish().unwrap();
    let error = read_bundle(good.as_slice(), &mut Refuser).unwrap_err();
    assert!(matches!(error, BundleError::Refused(_)), "{error}");
    header.digest = blob(b"other").0.digest;
    let mut writer = BundleWriter::new(Vec::new(), &BundleHeader::new("test", 7)).unwrap();
    writer.blob(&header, &mut bytes.as_slice()).unwrap();
    let bad = writer.finish().unwrap();
    let error = read_bundle(bad.as_slice(), &mut Refuser).unwrap_err();
    assert!(matches!(error, BundleError::BlobDigest { .. }), "{error}");
}
