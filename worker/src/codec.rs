//! The byte work of converting a layer: what arrives (in the source blob's compression) is
//! decompressed, compressed as asked and written to a scratch file, hashed on the way out (the
//! new blob's digest) and, when it was decompressed here, on the way through (the tar's digest,
//! which must be the layer's diff ID).

use std::io::{self, Write};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::layers::Compression;

/// zstd's default level, as BuildKit uses it.
pub const ZSTD_LEVEL: i32 = 3;
/// gzip's (zlib's) default level, as Go's `gzip.DefaultCompression` is.
pub const GZIP_LEVEL: i32 = 6;

/// Digest and size of a converted scratch file, with the digest of the tar it holds when that
/// was decompressed on the way (None: the source was the tar, verified by containerd).
pub struct Written {
    pub digest: String,
    pub size: i64,
    pub tar_digest: Option<String>,
}

/// Converts what arrives on `chunks` (compressed as `from`) into `path`, compressed as `to` at
/// `level`.
pub fn convert(
    chunks: mpsc::Receiver<Vec<u8>>,
    path: PathBuf,
    from: Compression,
    (to, level): (Compression, i32),
) -> io::Result<Written> {
    let file = io::BufWriter::new(std::fs::File::create(&path)?);
    let encoder = Encoder::new(HashingWriter::new(file, true), to, level)?;
    let tar = HashingWriter::new(encoder, from != Compression::Uncompressed);
    let decoder = feed(chunks, Decoder::new(tar, from)?)?;
    let tar = decoder.finish()?;
    let tar_digest = tar.digest();
    let mut blob = tar.inner.finish()?;
    blob.inner.flush()?;
    Ok(Written {
        digest: blob.digest().unwrap_or_default(),
        size: blob.size,
        tar_digest,
    })
}

fn feed<W: Write>(mut chunks: mpsc::Receiver<Vec<u8>>, mut sink: W) -> io::Result<W> {
    while let Some(chunk) = chunks.blocking_recv() {
        sink.write_all(&chunk)?;
    }
    Ok(sink)
}

/// Compresses what is written into it.
enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(inner: W, compression: Compression, level: i32) -> io::Result<Self> {
        Ok(match compression {
            Compression::Uncompressed => Encoder::Plain(inner),
            Compression::Gzip => {
                let level = flate2::Compression::new(level.clamp(0, 9) as u32);
                Encoder::Gzip(flate2::write::GzEncoder::new(inner, level))
            }
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(inner, level)?),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(inner) => Ok(inner),
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(inner) => inner.write(buf),
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(inner) => inner.flush(),
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
        }
    }
}

/// Decompresses what is written into it (every gzip member, every zstd frame).
enum Decoder<W: Write> {
    Plain(W),
    // Boxed: the gzip decoder's state is ten times the others'.
    Gzip(Box<flate2::write::MultiGzDecoder<W>>),
    Zstd(zstd::stream::write::Decoder<'static, W>),
}

impl<W: Write> Decoder<W> {
    fn new(inner: W, compression: Compression) -> io::Result<Self> {
        Ok(match compression {
            Compression::Uncompressed => Decoder::Plain(inner),
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::write::MultiGzDecoder::new(inner))),
            Compression::Zstd => Decoder::Zstd(zstd::stream::write::Decoder::new(inner)?),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Decoder::Plain(inner) => Ok(inner),
            Decoder::Gzip(decoder) => (*decoder).finish(),
            Decoder::Zstd(mut decoder) => {
                decoder.flush()?;
                Ok(decoder.into_inner())
            }
        }
    }
}

impl<W: Write> Write for Decoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(inner) => inner.write(buf),
            Decoder::Gzip(decoder) => decoder.write(buf),
            Decoder::Zstd(decoder) => decoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Decoder::Plain(inner) => inner.flush(),
            Decoder::Gzip(decoder) => decoder.flush(),
            Decoder::Zstd(decoder) => decoder.flush(),
        }
    }
}

/// Counts (and, when asked, hashes) what passes through to the inner writer.
struct HashingWriter<W> {
    inner: W,
    hasher: Option<Sha256>,
    size: i64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W, hash: bool) -> Self {
        HashingWriter {
            inner,
            hasher: hash.then(Sha256::new),
            size: 0,
        }
    }

    fn digest(&self) -> Option<String> {
        let hasher = self.hasher.clone()?;
        Some(format!("sha256:{}", hex::encode(hasher.finalize())))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.size += n as i64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// `data` compressed as `compression` at `level`, through `convert` from `from`.
    fn converted(data: &[u8], from: Compression, to: (Compression, i32)) -> (Written, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let (sender, receiver) = mpsc::channel(4);
        let input = data.to_vec();
        let feeding = std::thread::spawn(move || {
            for chunk in input.chunks(1000) {
                sender.blocking_send(chunk.to_vec()).unwrap();
            }
        });
        let written = convert(receiver, path.clone(), from, to).unwrap();
        feeding.join().unwrap();
        (written, std::fs::read(path).unwrap())
    }

    /// Text of pseudo-random words: compressible, and better at higher levels.
    fn compressible() -> Vec<u8> {
        const WORDS: [&str; 8] = [
            "layer", "image", "node", "blob", "tar", "gzip", "zstd", "index",
        ];
        let mut state = 12345u32;
        let mut text = String::new();
        for _ in 0..60_000 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            text.push_str(WORDS[(state >> 16) as usize % WORDS.len()]);
            text.push(if state.is_multiple_of(7) { '\n' } else { ' ' });
        }
        text.into_bytes()
    }

    #[test]
    fn a_gzip_layer_becomes_zstd_and_its_tar_digest_is_checked() {
        let tar = compressible();
        let (gzip, gzipped) = converted(&tar, Compression::Uncompressed, (Compression::Gzip, 6));
        assert_eq!(
            gzip.tar_digest, None,
            "an uncompressed source is not hashed again"
        );
        assert_eq!(gzip.size as usize, gzipped.len());
        assert_eq!(gzip.digest, nodekit_oci::sha256_digest(&gzipped));

        let (zstd, zstded) = converted(&gzipped, Compression::Gzip, (Compression::Zstd, 3));
        assert_eq!(zstd.tar_digest, Some(nodekit_oci::sha256_digest(&tar)));
        assert_eq!(zstd::decode_all(&zstded[..]).unwrap(), tar);

        let (plain, bytes) = converted(&zstded, Compression::Zstd, (Compression::Uncompressed, 0));
        assert_eq!(bytes, tar);
        assert_eq!(plain.digest, nodekit_oci::sha256_digest(&tar));
    }

    #[test]
    fn levels_are_the_compressors_own() {
        let tar = compressible();
        let size = |to| converted(&tar, Compression::Uncompressed, to).0.size;
        assert!(size((Compression::Gzip, 9)) < size((Compression::Gzip, 1)));
        assert!(
            size((Compression::Gzip, 0)) > tar.len() as i64,
            "level 0 stores"
        );
        let (z19, z1) = (size((Compression::Zstd, 19)), size((Compression::Zstd, 1)));
        assert!(z19 < z1, "zstd 19: {z19}, zstd 1: {z1}");
        let (_, gzipped) = converted(&tar, Compression::Uncompressed, (Compression::Gzip, 1));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gzipped[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, tar);
    }
}
