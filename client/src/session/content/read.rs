//! The Read stream: a range of one blob in chunks of at most 1 MiB.
//!
//! As containerd's server: a negative offset reads from the start, an offset past the end is
//! OutOfRange, a size of zero or less (or one reaching past the end) reads to the end, and
//! each chunk's `offset` counts from the start of this read, not of the blob (readers ignore
//! it and concatenate).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use bytes::BytesMut;
use nodekit_proto::containerd::services::content::v1::{ReadContentRequest, ReadContentResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::error::ContentError;
use super::store::{BlobDigest, LocalStore};

/// The largest chunk one response carries.
pub const CHUNK: usize = 1 << 20;

pub type ReadStream = ReceiverStream<Result<ReadContentResponse, Status>>;

/// Checks `request` against `store` and streams the range it asks for.
pub fn serve(store: &LocalStore, request: &ReadContentRequest) -> Result<ReadStream, Status> {
    let digest = BlobDigest::parse(&request.digest)?;
    let size = store.info(&digest)?.size;
    let (start, length) = range(request.offset, request.size, size)?;
    let path = store.blob_path(&digest);
    let (chunks, stream) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        if let Err(error) = send_range(&path, start, length, &chunks) {
            let _ = chunks.blocking_send(Err(error.into()));
        }
    });
    Ok(ReceiverStream::new(stream))
}

/// Where to start and how many bytes to read from a blob of `size` bytes.
fn range(offset: i64, length: i64, size: u64) -> Result<(u64, u64), ContentError> {
    let start = u64::try_from(offset).unwrap_or(0);
    if start > size {
        return Err(ContentError::OutOfRange(format!(
            "read past object length {size} bytes"
        )));
    }
    let rest = size - start;
    let length = u64::try_from(length)
        .ok()
        .filter(|&length| length > 0 && length <= rest)
        .unwrap_or(rest);
    Ok((start, length))
}

/// Sends `length` bytes of `path` from `start`, stopping early when the reader went away.
fn send_range(
    path: &std::path::Path,
    start: u64,
    length: u64,
    chunks: &mpsc::Sender<Result<ReadContentResponse, Status>>,
) -> Result<(), ContentError> {
    let mut file = File::open(path).map_err(ContentError::io("opening", path))?;
    file.seek(SeekFrom::Start(start))
        .map_err(ContentError::io("reading", path))?;
    let mut sent = 0u64;
    while sent < length {
        let want = (length - sent).min(CHUNK as u64) as usize;
        let mut buffer = BytesMut::zeroed(want);
        file.read_exact(&mut buffer)
            .map_err(ContentError::io("reading", path))?;
        let response = ReadContentResponse {
            offset: sent as i64,
            data: buffer.freeze(),
        };
        if chunks.blocking_send(Ok(response)).is_err() {
            return Ok(());
        }
        sent += want as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_clamped_as_containerd_clamps_them() {
        assert_eq!(range(0, 0, 10).unwrap(), (0, 10));
        assert_eq!(range(-5, 0, 10).unwrap(), (0, 10));
        assert_eq!(range(4, 3, 10).unwrap(), (4, 3));
        assert_eq!(range(4, 100, 10).unwrap(), (4, 6));
        assert_eq!(range(4, -1, 10).unwrap(), (4, 6));
        assert_eq!(range(10, 0, 10).unwrap(), (10, 0));
        assert!(matches!(range(11, 0, 10), Err(ContentError::OutOfRange(_))));
    }
}
