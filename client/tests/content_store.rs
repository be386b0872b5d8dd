//! The session's content stores served over a unix socket and driven by a real tonic client
//! as the daemon drives them: blobs written in 1 MiB WRITEs and committed, read back at
//! offsets, refused when they would be wrong or name a path outside the store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use nodekit::session::content::{local_store_id, ContentStores, READ_CHUNK, STORE_ID_KEY};
use nodekit_proto::containerd::services::content::v1::content_client::ContentClient;
use nodekit_proto::containerd::services::content::v1::{
    AbortRequest, DeleteContentRequest, InfoRequest, ListStatusesRequest, ReadContentRequest,
    StatusRequest, WriteAction, WriteContentRequest, WriteContentResponse,
};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request};

const MIB: usize = 1 << 20;

/// Two stores served on a unix socket in a temporary directory.
struct Harness {
    _tmp: tempfile::TempDir,
    /// The export store's directory and id.
    dir: PathBuf,
    id: String,
    /// A second store, which must never see the first one's blobs.
    other_dir: PathBuf,
    other_id: String,
    client: ContentClient<Channel>,
}

impl Harness {
    async fn start() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let other_dir = tmp.path().join("other");
        // The id carries the directory as the user wrote it, relative or not.
        let id = local_store_id(dir.to_str().unwrap());
        let other_id = local_store_id("./other");
        let stores = ContentStores::new(BTreeMap::from([
            (id.clone(), dir.clone()),
            (other_id.clone(), other_dir.clone()),
        ]));
        let socket = tmp.path().join("content.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(
            Server::builder()
                .add_service(stores.into_server())
                .serve_with_incoming(UnixListenerStream::new(listener)),
        );
        let client = ContentClient::new(connect(&socket).await)
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20);
        Harness {
            _tmp: tmp,
            dir,
            id,
            other_dir,
            other_id,
            client,
        }
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    }

    /// Runs one Write stream of `requests` on store `id`: every response, then the stream's
    /// error if it ended with one.
    async fn write(
        &self,
        id: &str,
        requests: Vec<WriteContentRequest>,
    ) -> (Vec<WriteContentResponse>, Option<tonic::Status>) {
        let (tx, rx) = mpsc::channel(requests.len().max(1));
        for request in requests {
            tx.send(request).await.unwrap();
        }
        drop(tx);
        let mut client = self.client.clone();
        let mut stream = match client.write(with_store(ReceiverStream::new(rx), id)).await {
            Ok(response) => response.into_inner(),
            Err(status) => return (Vec::new(), Some(status)),
        };
        let mut responses = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(response)) => responses.push(response),
                Ok(None) => return (responses, None),
                Err(status) => return (responses, Some(status)),
            }
        }
    }

    /// Reads `size` bytes at `offset` of `digest` in store `id`, chunk by chunk.
    async fn read(
        &self,
        id: &str,
        digest: &str,
        offset: i64,
        size: i64,
    ) -> Result<Vec<Vec<u8>>, tonic::Status> {
        let request = ReadContentRequest {
            digest: digest.into(),
            offset,
            size,
        };
        let mut stream = self
            .client
            .clone()
            .read(with_store(request, id))
            .await?
            .into_inner();
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.message().await? {
            chunks.push(chunk.data.to_vec());
        }
        Ok(chunks)
    }

    async fn info(&self, id: &str, digest: &str) -> Result<i64, tonic::Status> {
        let request = InfoRequest {
            digest: digest.into(),
        };
        let info = self.client.clone().info(with_store(request, id)).await?;
        Ok(info.into_inner().info.unwrap().size)
    }
}

async fn connect(socket: &Path) -> Channel {
    let socket = socket.to_path_buf();
    let connector = tower::service_fn(move |_| {
        let socket = socket.clone();
        async move {
            Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
        }
    });
    Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_with_connector(connector)
        .await
        .unwrap()
}

fn with_store<T>(message: T, id: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(STORE_ID_KEY, id.parse().unwrap());
    request
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Bytes that differ at every offset, so a misplaced chunk shows.
fn blob(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// The daemon's sequence for one layer: STAT with ref, size and digest; STAT; WRITEs of at
/// most 1 MiB at their offsets; COMMIT with size, offset and digest.
fn upload(reference: &str, data: &[u8], expected: &str) -> Vec<WriteContentRequest> {
    let total = data.len() as i64;
    let mut requests = vec![
        WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: reference.into(),
            total,
            expected: expected.into(),
            ..Default::default()
        },
        WriteContentRequest::default(),
    ];
    for (i, chunk) in data.chunks(MIB).enumerate() {
        requests.push(WriteContentRequest {
            action: WriteAction::Write as i32,
            offset: (i * MIB) as i64,
            data: chunk.to_vec().into(),
            ..Default::default()
        });
    }
    requests.push(commit(total, expected));
    requests
}

fn commit(total: i64, expected: &str) -> WriteContentRequest {
    WriteContentRequest {
        action: WriteAction::Commit as i32,
        total,
        offset: total,
        expected: expected.into(),
        ..Default::default()
    }
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn a_multi_mib_blob_is_written_in_chunks_and_read_back_at_offsets() {
    let h = Harness::start().await;
    let data = blob(3 * MIB + 12345);
    let digest = digest_of(&data);
    let requests = upload(&format!("layer-{digest}"), &data, &digest);
    let sent = requests.len();
    let (responses, error) = h.write(&h.id, requests).await;
    assert!(error.is_none(), "{error:?}");
    // One answer per request, the last one the commit's.
    assert_eq!(responses.len(), sent);
    let last = responses.last().unwrap();
    assert_eq!(last.action, WriteAction::Commit as i32);
    assert_eq!(last.offset, data.len() as i64);
    assert_eq!(last.digest, digest);
    let offsets: Vec<i64> = responses[2..sent - 1].iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        [
            MIB as i64,
            2 * MIB as i64,
            3 * MIB as i64,
            data.len() as i64
        ]
    );

    assert_eq!(std::fs::read(h.blob_path(&digest)).unwrap(), data);
    assert_eq!(entries(&h.dir.join("ingest")), Vec::<String>::new());
    assert_eq!(h.info(&h.id, &digest).await.unwrap(), data.len() as i64);

    // The whole blob, in chunks of at most 1 MiB.
    let chunks = h.read(&h.id, &digest, 0, 0).await.unwrap();
    assert!(chunks.iter().all(|c| c.len() <= READ_CHUNK));
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks.concat(), data);
    // A range inside, one reaching past the end, the empty end, and past the end.
    let at = MIB + MIB / 2;
    let inside = h.read(&h.id, &digest, at as i64, 100).await.unwrap();
    assert_eq!(inside.concat(), &data[at..at + 100]);
    let tail = h
        .read(&h.id, &digest, at as i64, 8 * MIB as i64)
        .await
        .unwrap();
    assert_eq!(tail.concat(), &data[at..]);
    let end = h.read(&h.id, &digest, data.len() as i64, 0).await.unwrap();
    assert!(end.concat().is_empty());
    let past = h.read(&h.id, &digest, data.len() as i64 + 1, 0).await;
    assert_eq!(past.unwrap_err().code(), Code::OutOfRange);
}

#[tokio::test]
async fn a_stored_blob_is_already_there_for_the_next_writer() {
    let h = Harness::start().await;
    let data = blob(MIB + 1);
    let digest = digest_of(&data);
    let (_, error) = h.write(&h.id, upload("first", &data, &digest)).await;
    assert!(error.is_none(), "{error:?}");

    // Announced at the first STAT: nothing to write.
    let (responses, error) = h.write(&h.id, upload("second", &data, &digest)).await;
    assert!(responses.is_empty());
    assert_eq!(error.unwrap().code(), Code::AlreadyExists);
    // Announced only at the commit: the ingest goes too.
    let mut requests = upload("third", &data, "");
    *requests.last_mut().unwrap() = commit(data.len() as i64, &digest);
    let (responses, error) = h.write(&h.id, requests).await;
    assert_eq!(error.unwrap().code(), Code::AlreadyExists);
    assert_eq!(responses.len(), 4);
    assert_eq!(entries(&h.dir.join("ingest")), Vec::<String>::new());
    assert_eq!(std::fs::read(h.blob_path(&digest)).unwrap(), data);
}

#[tokio::test]
async fn a_commit_whose_bytes_do_not_match_is_refused_and_stores_nothing() {
    let h = Harness::start().await;
    let data = blob(2 * MIB);
    let wrong = digest_of(b"something else");
    let (responses, error) = h.write(&h.id, upload("layer", &data, &wrong)).await;
    let error = error.unwrap();
    assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
    assert!(
        error.message().contains("unexpected commit digest"),
        "{error:?}"
    );
    // Every request before the commit was answered.
    assert_eq!(responses.len(), 4);
    assert_eq!(entries(&h.dir.join("blobs/sha256")), Vec::<String>::new());
    assert_eq!(entries(&h.dir.join("ingest")), Vec::<String>::new());

    // A short blob is refused for its size.
    let digest = digest_of(&data);
    let mut requests = upload("short", &data[..MIB], &digest);
    *requests.last_mut().unwrap() = commit(data.len() as i64, &digest);
    requests.last_mut().unwrap().offset = MIB as i64;
    let (_, error) = h.write(&h.id, requests).await;
    let error = error.unwrap();
    assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
    assert!(
        error.message().contains("unexpected commit size"),
        "{error:?}"
    );
    assert_eq!(entries(&h.dir.join("blobs/sha256")), Vec::<String>::new());
}

#[tokio::test]
async fn an_interrupted_write_resumes_at_its_offset() {
    let h = Harness::start().await;
    let data = blob(2 * MIB + 7);
    let digest = digest_of(&data);
    let reference = format!("layer-{digest}");
    // The first stream ends after one WRITE.
    let mut first = upload(&reference, &data, &digest);
    first.truncate(3);
    let (responses, error) = h.write(&h.id, first).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(responses.last().unwrap().offset, MIB as i64);

    let status = h
        .client
        .clone()
        .status(with_store(
            StatusRequest {
                r#ref: reference.clone(),
            },
            &h.id,
        ))
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(
        (status.offset, status.total),
        (MIB as i64, data.len() as i64)
    );
    assert_eq!(status.expected, digest);
    let listed = h
        .client
        .clone()
        .list_statuses(with_store(ListStatusesRequest::default(), &h.id))
        .await
        .unwrap()
        .into_inner()
        .statuses;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].r#ref, reference);

    // The next writer of the ref learns the offset from STAT and sends only the rest.
    let mut second = upload(&reference, &data, &digest);
    second.remove(2);
    let (responses, error) = h.write(&h.id, second).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(responses[0].offset, MIB as i64);
    assert_eq!(responses.last().unwrap().digest, digest);
    assert_eq!(std::fs::read(h.blob_path(&digest)).unwrap(), data);
}

#[tokio::test]
async fn writes_at_the_wrong_offset_are_out_of_range_and_offset_zero_restarts() {
    let h = Harness::start().await;
    let data = blob(1000);
    let digest = digest_of(&data);
    let write = |offset: i64, bytes: &[u8]| WriteContentRequest {
        action: WriteAction::Write as i32,
        r#ref: "r".into(),
        offset,
        data: bytes.to_vec().into(),
        ..Default::default()
    };
    let (_, error) = h
        .write(&h.id, vec![write(0, &data[..10]), write(50, &data[10..])])
        .await;
    let error = error.unwrap();
    assert_eq!(error.code(), Code::OutOfRange);
    assert_eq!(error.message(), "write @50 must occur at current offset 10");

    // Offset 0 drops the 10 bytes the ingest kept, and the blob is written whole.
    let (_, error) = h
        .write(&h.id, vec![write(0, &data), commit(1000, &digest)])
        .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(std::fs::read(h.blob_path(&digest)).unwrap(), data);
}

#[tokio::test]
async fn the_store_is_chosen_by_metadata() {
    let h = Harness::start().await;
    let data = blob(10);
    let digest = digest_of(&data);
    let (_, error) = h.write(&h.other_id, upload("x", &data, &digest)).await;
    assert!(error.is_none(), "{error:?}");
    assert!(h
        .other_dir
        .join("blobs/sha256")
        .join(&digest[7..])
        .is_file());
    assert_eq!(
        h.info(&h.id, &digest).await.unwrap_err().code(),
        Code::NotFound
    );

    let mut client = h.client.clone();
    let missing = client
        .info(Request::new(InfoRequest {
            digest: digest.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(missing.message().contains(STORE_ID_KEY), "{missing:?}");
    let unknown = h.info("local:/nowhere", &digest).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(unknown.message(), "unknown store local:/nowhere");
    let (_, error) = h.write("local:/nowhere", upload("y", &data, &digest)).await;
    assert_eq!(error.unwrap().code(), Code::NotFound);
}

#[tokio::test]
async fn digests_that_could_name_other_paths_are_refused() {
    let h = Harness::start().await;
    std::fs::create_dir_all(h.dir.join("blobs/sha256")).unwrap();
    let hex = "ab".repeat(32);
    let bad = [
        "sha256:../../../etc/passwd".to_string(),
        format!("sha256:../{}", &hex[3..]),
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha512:{hex}"),
        format!("sha256:{hex}/.."),
        "../blobs".to_string(),
        String::new(),
    ];
    for digest in &bad {
        let info = h.info(&h.id, digest).await.unwrap_err();
        assert_eq!(info.code(), Code::InvalidArgument, "Info {digest:?}");
        let read = h.read(&h.id, digest, 0, 0).await.unwrap_err();
        assert_eq!(read.code(), Code::InvalidArgument, "Read {digest:?}");
        if digest.is_empty() {
            continue;
        }
        let (_, error) = h.write(&h.id, upload("z", b"data", digest)).await;
        assert_eq!(
            error.unwrap().code(),
            Code::InvalidArgument,
            "Write {digest:?}"
        );
    }
    assert_eq!(entries(&h.dir.join("blobs/sha256")), Vec::<String>::new());
}

#[tokio::test]
async fn a_write_needs_a_ref_and_aborted_ingests_are_gone() {
    let h = Harness::start().await;
    let (_, error) = h.write(&h.id, vec![WriteContentRequest::default()]).await;
    let error = error.unwrap();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(error.message(), "first message must have a reference");

    let mut partial = upload("gone", &blob(100), "");
    partial.truncate(3);
    let (_, error) = h.write(&h.id, partial).await;
    assert!(error.is_none(), "{error:?}");
    let mut client = h.client.clone();
    let abort = |reference: &str| {
        with_store(
            AbortRequest {
                r#ref: reference.into(),
            },
            &h.id,
        )
    };
    client.abort(abort("gone")).await.unwrap();
    assert_eq!(entries(&h.dir.join("ingest")), Vec::<String>::new());
    let again = client.abort(abort("gone")).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    let status = client
        .status(with_store(
            StatusRequest {
                r#ref: "gone".into(),
            },
            &h.id,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn methods_not_offered_are_unimplemented_by_name() {
    let h = Harness::start().await;
    let request = DeleteContentRequest {
        digest: digest_of(b""),
    };
    let error = h
        .client
        .clone()
        .delete(with_store(request, &h.id))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);
    assert!(error.message().contains("Delete"), "{error:?}");
}

#[tokio::test]
async fn a_ref_being_written_is_unavailable_to_a_second_writer() {
    let h = Harness::start().await;
    let (tx, rx) = mpsc::channel(4);
    let stat = WriteContentRequest {
        action: WriteAction::Stat as i32,
        r#ref: "busy".into(),
        ..Default::default()
    };
    tx.send(stat.clone()).await.unwrap();
    let mut client = h.client.clone();
    let mut open = client
        .write(with_store(ReceiverStream::new(rx), &h.id))
        .await
        .unwrap()
        .into_inner();
    assert!(open.message().await.unwrap().is_some());

    let (_, error) = h.write(&h.id, vec![stat.clone()]).await;
    assert_eq!(error.unwrap().code(), Code::Unavailable);
    let abort = client
        .abort(with_store(
            AbortRequest {
                r#ref: "busy".into(),
            },
            &h.id,
        ))
        .await
        .unwrap_err();
    assert_eq!(abort.code(), Code::Unavailable);

    // Once the first stream ends, the ref is free again.
    drop(tx);
    assert!(open.message().await.unwrap().is_none());
    let (responses, error) = h.write(&h.id, vec![stat]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(responses.len(), 1);
}
