//! The Write stream: one ingest driven by STAT, WRITE and COMMIT requests, each answered by
//! exactly one response (containerd's server sends its last response twice; readers ignore
//! the extra one, so nothing is lost by not copying it).
//!
//! - The first request must name the ingest (`ref`); its `total` and `expected` are the
//!   blob's announced size and digest, and any later request may announce them again.
//! - A request announcing a digest that is already stored ends the stream with AlreadyExists
//!   and drops the ingest: the writer has nothing to send.
//! - WRITE and COMMIT append their data at `offset`: a positive offset must be the current
//!   one (OutOfRange otherwise), zero restarts the ingest.
//! - COMMIT checks the size and digest, stores the blob and ends the stream. A stream that
//!   ends without one leaves the ingest for a later writer of the same ref to resume.

use std::sync::Arc;

use nodekit_proto::containerd::services::content::v1::{
    WriteAction, WriteContentRequest, WriteContentResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::error::ContentError;
use super::ingest::Ingest;
use super::store::{BlobDigest, LocalStore};

pub type WriteStream = ReceiverStream<Result<WriteContentResponse, Status>>;

/// Serves one Write stream on `store`.
pub fn serve(store: Arc<LocalStore>, requests: Streaming<WriteContentRequest>) -> WriteStream {
    let (responses, stream) = mpsc::channel(4);
    tokio::spawn(async move {
        if let Err(status) = run(store, requests, &responses).await {
            let _ = responses.send(Err(status)).await;
        }
    });
    ReceiverStream::new(stream)
}

async fn run(
    store: Arc<LocalStore>,
    mut requests: Streaming<WriteContentRequest>,
    responses: &mpsc::Sender<Result<WriteContentResponse, Status>>,
) -> Result<(), Status> {
    let Some(first) = requests.message().await? else {
        return Ok(());
    };
    if first.r#ref.is_empty() {
        return Err(Status::invalid_argument(
            "first message must have a reference",
        ));
    }
    let (mut writer, mut request) =
        blocking(move || Writer::open(store, &first).map(|w| (w, first))).await?;
    loop {
        let (next, response) = blocking(move || writer.handle(request)).await?;
        if responses.send(Ok(response)).await.is_err() {
            return Ok(());
        }
        // After a commit, or once the writer closed its side, the stream is done.
        let Some(next) = next else {
            return Ok(());
        };
        let Some(following) = requests.message().await? else {
            return Ok(());
        };
        (writer, request) = (next, following);
    }
}

/// Runs `step` on the blocking pool (file I/O and hashing).
async fn blocking<T: Send + 'static>(
    step: impl FnOnce() -> Result<T, ContentError> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(step).await {
        Ok(result) => result.map_err(Status::from),
        Err(error) => Err(Status::internal(format!("content write stopped: {error}"))),
    }
}

/// An ingest and what its writer announced so far.
struct Writer {
    store: Arc<LocalStore>,
    ingest: Ingest,
    total: i64,
    expected: Option<BlobDigest>,
}

impl Writer {
    fn open(store: Arc<LocalStore>, first: &WriteContentRequest) -> Result<Writer, ContentError> {
        let expected = not_stored(&store, &first.expected)?;
        let hold = store.hold(&first.r#ref)?;
        let ingest = Ingest::open(hold, first.total, expected.as_ref())?;
        Ok(Writer {
            store,
            ingest,
            total: first.total,
            expected,
        })
    }

    /// Answers `request`; the writer is gone after a commit.
    fn handle(
        mut self,
        request: WriteContentRequest,
    ) -> Result<(Option<Writer>, WriteContentResponse), ContentError> {
        if let Err(error) = self.announce(&request) {
            if matches!(error, ContentError::AlreadyExists(_)) {
                self.ingest.discard();
            }
            return Err(error);
        }
        let action = WriteAction::try_from(request.action).map_err(|_| {
            ContentError::InvalidArgument(format!("unknown write action {}", request.action))
        })?;
        if action != WriteAction::Stat {
            self.write(&request)?;
        }
        let mut response = self.response(action);
        if action == WriteAction::Commit {
            let Writer {
                ingest,
                total,
                expected,
                ..
            } = self;
            response.digest = ingest.commit(total, expected.as_ref())?.to_string();
            return Ok((None, response));
        }
        Ok((Some(self), response))
    }

    /// Takes the size and digest `request` announces; a digest already stored ends the write.
    fn announce(&mut self, request: &WriteContentRequest) -> Result<(), ContentError> {
        if let Some(digest) = not_stored(&self.store, &request.expected)? {
            self.expected = Some(digest);
        }
        if request.total > 0 {
            self.total = request.total;
        }
        Ok(())
    }

    /// Appends a WRITE's or COMMIT's data at its offset.
    fn write(&mut self, request: &WriteContentRequest) -> Result<(), ContentError> {
        let current = self.ingest.offset();
        match u64::try_from(request.offset) {
            Err(_) => {
                return Err(ContentError::InvalidArgument(format!(
                    "negative write offset {}",
                    request.offset
                )))
            }
            Ok(0) if current > 0 => self.ingest.restart()?,
            Ok(offset) if offset > 0 && offset != current => {
                return Err(ContentError::OutOfRange(format!(
                    "write @{offset} must occur at current offset {current}"
                )))
            }
            Ok(_) => {}
        }
        self.ingest.append(&request.data)
    }

    fn response(&self, action: WriteAction) -> WriteContentResponse {
        WriteContentResponse {
            action: action as i32,
            started_at: Some(self.ingest.started_at().into()),
            updated_at: Some(self.ingest.updated_at().into()),
            offset: self.ingest.offset() as i64,
            total: self.total,
            digest: self.ingest.digest().to_string(),
        }
    }
}

/// The digest a request announces, if any; one `store` has already ends the write.
fn not_stored(store: &LocalStore, text: &str) -> Result<Option<BlobDigest>, ContentError> {
    if text.is_empty() {
        return Ok(None);
    }
    let digest = BlobDigest::parse(text)?;
    if store.contains(&digest) {
        return Err(ContentError::AlreadyExists(digest.to_string()));
    }
    Ok(Some(digest))
}
