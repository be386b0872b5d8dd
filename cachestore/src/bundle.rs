//! Cache bundles: a node's cache records and the blobs they need, in one self-describing,
//! versioned stream (`nodekit cache export` writes one, `nodekit cache import` reads it).
//!
//! Layout: [`MAGIC`], the format version (u16, big-endian), then one zstd frame (with zstd's
//! own checksum) holding sections, each a tag byte and its body:
//!
//! | tag | body |
//! |-----|------|
//! | [`TAG_HEADER`] (first) | u32 LE length, postcard [`BundleHeader`] |
//! | [`TAG_BLOB`]   | u32 LE length, postcard [`BlobHeader`], then the blob's `size` bytes |
//! | [`TAG_RECORD`] | u32 LE length, the 32-byte key, the record's stored form ([`Record::encode`]) |
//! | [`TAG_END`] (last) | blake3 of every byte of the frame before this tag |
//!
//! Blobs come before the records that need them, so a reader can store them as they stream and
//! make records visible only once the end's checksum matched. Everything is written and read in
//! bounded memory: a blob is streamed, never held whole. The version is outside the compressed
//! frame, so a file from a newer nodekit is named as such before anything is decompressed.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::key::{CacheKey, KEY_VERSION};
use crate::record::Record;

/// The first bytes of every bundle.
pub const MAGIC: &[u8; 21] = b"nodekit-cache-bundle\n";
/// The format version this build writes and reads.
pub const BUNDLE_VERSION: u16 = 1;

pub const TAG_HEADER: u8 = 1;
pub const TAG_BLOB: u8 = 2;
pub const TAG_RECORD: u8 = 3;
pub const TAG_END: u8 = 0xff;

/// Longest section body (header, blob header, record) a reader accepts: far above any real one,
/// so a corrupt length is an error rather than an allocation.
const MAX_SECTION: u32 = 16 << 20;
/// zstd level: fast enough to keep up with the disk, still a good ratio on layer tars.
const ZSTD_LEVEL: i32 = 3;

/// What a bundle says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleHeader {
    /// The cache key scheme of its records ([`KEY_VERSION`]): records of another scheme would
    /// never be hit, so a reader refuses them.
    pub key_version: String,
    /// Who wrote it (`nodekitd 0.1.0`), for messages.
    pub producer: String,
    /// When it was written, in milliseconds since the UNIX epoch.
    pub created_ms: u64,
}

impl BundleHeader {
    /// A header for records keyed by this build's scheme.
    pub fn new(producer: impl Into<String>, created_ms: u64) -> BundleHeader {
        BundleHeader {
            key_version: KEY_VERSION.to_string(),
            producer: producer.into(),
            created_ms,
        }
    }
}

/// A blob of the content store the records need (a layer, a manifest, a config).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobHeader {
    /// `sha256:<hex>` of the bytes that follow.
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// Why a bundle cannot be read. Each names what a user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a nodekit cache bundle (it does not start with the bundle signature)")]
    NotABundle,
    #[error("the bundle has format version {found}, newer than this nodekit reads ({supported}): import it with a nodekit at least as new as the one that exported it")]
    NewerVersion { found: u16, supported: u16 },
    #[error("the bundle has format version {found}, which this nodekit does not read (it reads {supported})")]
    UnknownVersion { found: u16, supported: u16 },
    #[error("the bundle's records use cache keys {found:?}, this nodekit {ours:?}: they would never be hit, so nothing was imported")]
    KeyScheme { found: String, ours: String },
    #[error(
        "the bundle is truncated: it ends before its end marker (an interrupted export or copy?)"
    )]
    Truncated,
    #[error("the bundle is corrupt: {0}")]
    Corrupt(String),
    #[error("the bundle is corrupt: blob {digest} has content {actual}")]
    BlobDigest { digest: String, actual: String },
    #[error("{0}")]
    Io(io::Error),
    /// The consumer of a section refused it (its message).
    #[error("{0}")]
    Refused(String),
}

impl From<io::Error> for BundleError {
    fn from(error: io::Error) -> BundleError {
        match error.kind() {
            io::ErrorKind::UnexpectedEof => BundleError::Truncated,
            // zstd reports a damaged frame (bad block, checksum) as InvalidData or Other.
            io::ErrorKind::InvalidData | io::ErrorKind::Other => {
                BundleError::Corrupt(error.to_string())
            }
            _ => BundleError::Io(error),
        }
    }
}

/// `inner`, with a blake3 hash of every byte that passes through.
struct Hashing<T> {
    inner: T,
    hash: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hash.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hash.update(&buf[..read]);
        Ok(read)
    }
}

/// Writes a bundle: [`BundleWriter::blob`]s, then the [`BundleWriter::record`]s that need
/// them, then [`BundleWriter::finish`].
pub struct BundleWriter<W: Write> {
    frame: Hashing<zstd::stream::write::Encoder<'static, W>>,
}

impl<W: Write> BundleWriter<W> {
    pub fn new(mut out: W, header: &BundleHeader) -> io::Result<BundleWriter<W>> {
        out.write_all(MAGIC)?;
        out.write_all(&BUNDLE_VERSION.to_be_bytes())?;
        let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
        encoder.include_checksum(true)?;
        let mut writer = BundleWriter {
            frame: Hashing {
                inner: encoder,
                hash: blake3::Hasher::new(),
            },
        };
        writer.section(TAG_HEADER, &encode(header)?)?;
        Ok(writer)
    }

    /// Copies a blob of `header.size` bytes from `data`; fewer or more bytes is an error.
    pub fn blob(&mut self, header: &BlobHeader, data: &mut impl Read) -> io::Result<()> {
        self.section(TAG_BLOB, &encode(header)?)?;
        let copied = io::copy(&mut data.take(header.size), &mut self.frame)?;
        if copied != header.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "blob {} ended after {copied} of {} bytes",
                    header.digest, header.size
                ),
            ));
        }
        Ok(())
    }

    pub fn record(&mut self, record: &Record) -> io::Result<()> {
        let stored = record
            .encode()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut body = Vec::with_capacity(32 + stored.len());
        body.extend_from_slice(record.key.as_bytes());
        body.extend_from_slice(&stored);
        self.section(TAG_RECORD, &body)
    }

    /// Writes the end marker and its checksum, ends the zstd frame; returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        let checksum = self.frame.hash.finalize();
        self.frame.inner.write_all(&[TAG_END])?;
        self.frame.inner.write_all(checksum.as_bytes())?;
        let mut out = self.frame.inner.finish()?;
        out.flush()?;
        Ok(out)
    }

    fn section(&mut self, tag: u8, body: &[u8]) -> io::Result<()> {
        let length = u32::try_from(body.len())
            .ok()
            .filter(|l| *l <= MAX_SECTION)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "section too large"))?;
        self.frame.write_all(&[tag])?;
        self.frame.write_all(&length.to_le_bytes())?;
        self.frame.write_all(body)
    }
}

fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// What a reader hands each section to. A refusal (`Err`) stops the read.
pub trait BundleVisitor {
    /// The bundle's header, already checked for its key scheme.
    fn header(&mut self, header: &BundleHeader) -> Result<(), String>;
    /// A blob's bytes; what the visitor does not read is read (and verified) after it.
    fn blob(&mut self, header: &BlobHeader, data: &mut dyn Read) -> Result<(), String>;
    fn record(&mut self, record: Record) -> Result<(), String>;
}

/// Reads a whole bundle into `visitor`. Succeeds only when the bundle is complete: every blob
/// matches its digest, the end marker's checksum matches, and nothing follows the frame. A
/// visitor must treat what it got as provisional until then.
pub fn read_bundle<R: Read>(input: R, visitor: &mut impl BundleVisitor) -> Result<(), BundleError> {
    let mut input = io::BufReader::new(input);
    read_signature(&mut input)?;
    let decoder = zstd::stream::read::Decoder::with_buffer(input)?.single_frame();
    let mut frame = Hashing {
        inner: decoder,
        hash: blake3::Hasher::new(),
    };
    let header: BundleHeader = decode(&read_section(&mut frame, TAG_HEADER)?)?;
    if header.key_version != KEY_VERSION {
        return Err(BundleError::KeyScheme {
            found: header.key_version,
            ours: KEY_VERSION.to_string(),
        });
    }
    visitor.header(&header).map_err(BundleError::Refused)?;
    loop {
        let expected = frame.hash.finalize();
        let tag = read_tag(&mut frame)?;
        match tag {
            TAG_BLOB => read_blob(&mut frame, visitor)?,
            TAG_RECORD => {
                let body = read_body(&mut frame)?;
                visitor
                    .record(decode_record(&body)?)
                    .map_err(BundleError::Refused)?;
            }
            TAG_END => return read_end(frame.inner, expected),
            other => return Err(BundleError::Corrupt(format!("unknown section {other}"))),
        }
    }
}

fn read_signature(input: &mut impl Read) -> Result<(), BundleError> {
    let mut magic = [0u8; MAGIC.len()];
    input
        .read_exact(&mut magic)
        .map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => BundleError::NotABundle,
            _ => BundleError::Io(error),
        })?;
    if &magic != MAGIC {
        return Err(BundleError::NotABundle);
    }
    let mut version = [0u8; 2];
    input.read_exact(&mut version)?;
    match u16::from_be_bytes(version) {
        BUNDLE_VERSION => Ok(()),
        found if found > BUNDLE_VERSION => Err(BundleError::NewerVersion {
            found,
            supported: BUNDLE_VERSION,
        }),
        found => Err(BundleError::UnknownVersion {
            found,
            supported: BUNDLE_VERSION,
        }),
    }
}

fn read_tag(frame: &mut impl Read) -> Result<u8, BundleError> {
    let mut tag = [0u8];
    frame.read_exact(&mut tag)?;
    Ok(tag[0])
}

fn read_body(frame: &mut impl Read) -> Result<Vec<u8>, BundleError> {
    let mut length = [0u8; 4];
    frame.read_exact(&mut length)?;
    let length = u32::from_le_bytes(length);
    if length > MAX_SECTION {
        return Err(BundleError::Corrupt(format!(
            "a section claims {length} bytes"
        )));
    }
    let mut body = vec![0u8; length as usize];
    frame.read_exact(&mut body)?;
    Ok(body)
}

fn read_section(frame: &mut impl Read, tag: u8) -> Result<Vec<u8>, BundleError> {
    match read_tag(frame)? {
        found if found == tag => read_body(frame),
        found => Err(BundleError::Corrupt(format!(
            "section {found} where {tag} belongs"
        ))),
    }
}

fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BundleError> {
    postcard::from_bytes(body).map_err(|e| BundleError::Corrupt(e.to_string()))
}

fn decode_record(body: &[u8]) -> Result<Record, BundleError> {
    let (key, stored) = body
        .split_first_chunk::<32>()
        .ok_or_else(|| BundleError::Corrupt("a record without its key".into()))?;
    Record::decode(CacheKey::from_bytes(*key), stored)
        .map_err(|e| BundleError::Corrupt(e.to_string()))
}

/// Hands a blob to the visitor through a reader that hashes it, then reads what the visitor
/// left and checks the digest.
fn read_blob(frame: &mut impl Read, visitor: &mut impl BundleVisitor) -> Result<(), BundleError> {
    let header: BlobHeader = decode(&read_body(frame)?)?;
    let Some(expected) = header.digest.strip_prefix("sha256:") else {
        return Err(BundleError::Corrupt(format!(
            "blob digest {:?} is not sha256",
            header.digest
        )));
    };
    let expected = expected.to_string();
    let mut data = Verified {
        inner: frame.by_ref().take(header.size),
        hash: Sha256::new(),
        error: None,
    };
    let refused = visitor.blob(&header, &mut data).err();
    // The rest is read and the digest checked even after a refusal: a blob that does not
    // match (the consumer's store refused it for that) is the bundle's fault, named as such.
    let drained = io::copy(&mut data, &mut io::sink());
    if let Some(error) = data.error.take() {
        return Err(error);
    }
    drained?;
    if data.inner.limit() != 0 {
        return Err(BundleError::Truncated);
    }
    let actual = hex::encode(data.hash.finalize());
    if actual != expected {
        return Err(BundleError::BlobDigest {
            digest: header.digest,
            actual: format!("sha256:{actual}"),
        });
    }
    match refused {
        Some(refusal) => Err(BundleError::Refused(refusal)),
        None => Ok(()),
    }
}

/// A blob's bytes as the visitor reads them: hashed, and a read error remembered, so the
/// bundle's own fault (truncation, corruption) is reported rather than the visitor's wording.
struct Verified<R> {
    inner: io::Take<R>,
    hash: Sha256,
    error: Option<BundleError>,
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if self.inner.limit() > 0 && !buf.is_empty() => {
                self.error = Some(BundleError::Truncated);
                Err(io::ErrorKind::UnexpectedEof.into())
            }
            Ok(read) => {
                self.hash.update(&buf[..read]);
                Ok(read)
            }
            Err(error) => {
                let message = error.to_string();
                self.error = Some(BundleError::from(error));
                Err(io::Error::other(message))
            }
        }
    }
}

/// The end marker's checksum, the end of the zstd frame and of the input.
fn read_end<R: io::BufRead>(
    mut frame: zstd::stream::read::Decoder<'static, R>,
    expected: blake3::Hash,
) -> Result<(), BundleError> {
    let mut checksum = [0u8; 32];
    frame.read_exact(&mut checksum)?;
    if checksum != *expected.as_bytes() {
        return Err(BundleError::Corrupt(
            "its checksum does not match its content".into(),
        ));
    }
    if frame.read(&mut [0u8])? != 0 {
        return Err(BundleError::Corrupt("data after the end marker".into()));
    }
    let mut rest = frame.finish();
    if rest.read(&mut [0u8])? != 0 {
        return Err(BundleError::Corrupt("data after the bundle".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
