//! What a cache key resolves to: a [`Record`], and its compact stored form.
//!
//! Stored form: one version byte ([`RECORD_VERSION`]), then the record's fields (all but the key,
//! which is the table key) in postcard, a compact serde format (varints, length-prefixed
//! strings). A record that does not decode is an error, never a panic.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::key::CacheKey;

/// The version byte of the stored form.
pub const RECORD_VERSION: u8 = 1;

/// A cached result: a committed containerd snapshot, protected by a lease nodekit owns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The output key this record is stored under (not part of the stored value).
    #[serde(skip)]
    pub key: CacheKey,
    /// Which output of its op this is (informational; the key already includes it).
    pub output_index: u32,
    /// The containerd snapshot key of the result.
    pub snapshot: String,
    /// The containerd lease that protects the snapshot; released when the record goes.
    pub lease: String,
    /// The layer blob, once computed.
    pub layer: Option<LayerDescriptor>,
    /// Bytes the snapshot uses on disk (its own layer, not its parents').
    pub size: u64,
    /// When the record was created, in milliseconds since the UNIX epoch.
    pub created_ms: u64,
    /// When the record was last hit (or created), in milliseconds since the UNIX epoch.
    pub last_used_ms: u64,
    /// How many times the record was hit.
    pub hit_count: u64,
    /// The platform the result is for (`linux/amd64`).
    pub platform: String,
    /// What kind of record this is (BuildKit's usage record types).
    pub kind: RecordKind,
    /// A description for `du` (the op's name, `local source for context`, ...).
    pub description: String,
    /// The records whose snapshots this one's is built on (its snapshot parent, merge inputs).
    pub parents: Vec<CacheKey>,
    /// The daemon's own description of the result (its layer stack), opaque to the store.
    pub payload: Vec<u8>,
}

/// A layer blob in the content store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDescriptor {
    /// `sha256:...` of the (possibly compressed) blob.
    pub digest: String,
    /// The blob's OCI media type.
    pub media_type: String,
    /// The blob's size in bytes.
    pub size: u64,
}

/// BuildKit's usage record types, as `du` shows them and prune filters (`type==...`) match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordKind {
    /// An op's result (`regular`).
    #[default]
    Regular,
    /// A local source's files (`source.local`).
    SourceLocal,
    /// A pulled image's layers (`source.image`; BuildKit files these as `regular`).
    SourceImage,
    /// A git checkout (`source.git.checkout`).
    SourceGitCheckout,
    /// A `RUN --mount=type=cache` directory (`exec.cachemount`).
    ExecCacheMount,
    /// A frontend's own files (`frontend`).
    Frontend,
    /// nodekit's own bookkeeping (`internal`).
    Internal,
}

impl RecordKind {
    /// Every kind, in declaration order.
    pub const ALL: [RecordKind; 7] = [
        RecordKind::Regular,
        RecordKind::SourceLocal,
        RecordKind::SourceImage,
        RecordKind::SourceGitCheckout,
        RecordKind::ExecCacheMount,
        RecordKind::Frontend,
        RecordKind::Internal,
    ];

    /// BuildKit's string for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Regular => "regular",
            RecordKind::SourceLocal => "source.local",
            RecordKind::SourceImage => "source.image",
            RecordKind::SourceGitCheckout => "source.git.checkout",
            RecordKind::ExecCacheMount => "exec.cachemount",
            RecordKind::Frontend => "frontend",
            RecordKind::Internal => "internal",
        }
    }

    /// The kind a BuildKit string names (unknown strings are `regular`, as in BuildKit).
    pub fn parse(s: &str) -> RecordKind {
        RecordKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or_default()
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Record {
    /// The stored form: the version byte, then postcard.
    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_extend(self, vec![RECORD_VERSION]).map_err(|e| Error::Encode {
            key: self.key.to_hex(),
            reason: e.to_string(),
        })
    }

    /// The record stored under `key` with the stored form `bytes`.
    pub fn decode(key: CacheKey, bytes: &[u8]) -> Result<Record> {
        let corrupt = |reason: String| Error::CorruptRecord {
            key: key.to_hex(),
            reason,
        };
        match bytes.split_first() {
            None => Err(corrupt("empty value".into())),
            Some((&RECORD_VERSION, body)) => {
                let (mut record, rest): (Record, &[u8]) =
                    postcard::take_from_bytes(body).map_err(|e| corrupt(e.to_string()))?;
                if !rest.is_empty() {
                    return Err(corrupt(format!("{} trailing bytes", rest.len())));
                }
                record.key = key;
                Ok(record)
            }
            Some((v, _)) => Err(corrupt(format!("unknown record version {v}"))),
        }
    }

    /// `description`, or a stand-in naming the kind when empty.
    pub fn describe(&self) -> String {
        if self.description.is_empty() {
            format!("{} {}", self.kind, self.snapshot)
        } else {
            self.description.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            key: CacheKey::from_bytes([7; 32]),
            output_index: 1,
            snapshot: "nodekit/abc".into(),
            lease: "nodekit-cache-abc".into(),
            layer: Some(LayerDescriptor {
                digest: "sha256:00".into(),
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                size: 1234,
            }),
            size: 4096,
            created_ms: 1_700_000_000_000,
            last_used_ms: 1_700_000_001_000,
            hit_count: 3,
            platform: "linux/amd64".into(),
            kind: RecordKind::ExecCacheMount,
            description: "RUN make".into(),
            parents: vec![CacheKey::from_bytes([1; 32]), CacheKey::from_bytes([2; 32])],
            payload: b"daemon".to_vec(),
        }
    }

    #[test]
    fn round_trips() {
        let r = sample();
        let bytes = r.encode().unwrap();
        assert_eq!(bytes[0], RECORD_VERSION);
        assert_eq!(Record::decode(r.key, &bytes).unwrap(), r);
    }

    #[test]
    fn stored_form_is_compact() {
        let bytes = sample().encode().unwrap();
        // 2 keys of 33 bytes, the strings, and a handful of varints.
        assert!(bytes.len() < 220, "{} bytes", bytes.len());
    }

    #[test]
    fn damaged_values_are_errors() {
        let key = CacheKey::from_bytes([7; 32]);
        let bytes = sample().encode().unwrap();
        assert!(Record::decode(key, &[]).is_err());
        assert!(Record::decode(key, &[9, 1, 2]).is_err());
        for cut in 1..bytes.len() {
            let err = Record::decode(key, &bytes[..cut]).unwrap_err();
            assert!(err.to_string().contains("corrupt"), "{err}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Record::decode(key, &longer).is_err());
    }

    #[test]
    fn kinds_use_buildkit_strings() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::parse(k.as_str()), k);
        }
        assert_eq!(
            RecordKind::parse("exec.cachemount").as_str(),
            "exec.cachemount"
        );
        assert_eq!(RecordKind::parse("whatever"), RecordKind::Regular);
    }
}
