//! The daemon's side of a client's local cache store: nodekitd writes, sizes and reads blobs
//! through the content service the nodekit client serves on its session, as buildctl's.

use std::collections::BTreeMap;

use bytes::Bytes;
use nodekit::session::content::{local_store_id, ContentStores};
use nodekitd::session::content::SessionContentStore;
use tokio::sync::mpsc;
use tonic::transport::Server;

/// The client's stores (one directory) served on a unix socket; the daemon's handle on it.
async fn served_store(dir: &std::path::Path) -> SessionContentStore {
    let id = local_store_id(dir.to_str().unwrap());
    let stores = ContentStores::new(BTreeMap::from([(id.clone(), dir.join("cache"))]));
    let socket = dir.join("content.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let incoming = futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    });
    tokio::spawn(
        Server::builder()
            .add_service(stores.into_server())
            .serve_with_incoming(incoming),
    );
    let channel = nodekit::connect::channel(&format!("unix://{}", socket.display()))
        .await
        .unwrap();
    SessionContentStore::new(channel, &id)
}

#[tokio::test]
async fn blobs_go_to_the_clients_store_and_come_back() {
    let tmp = tempfile::tempdir().unwrap();
    let store = served_store(tmp.path()).await;
    // 3 MiB and a bit, in pieces that do not fall on the 1 MiB WRITE boundaries.
    let blob: Vec<u8> = (0..(3 << 20) + 12_345u32)
        .map(|i| (i % 251) as u8)
        .collect();
    let digest = nodekitd::oci::sha256_digest(&blob);
    let pieces: Vec<Bytes> = blob.chunks(700_001).map(Bytes::copy_from_slice).collect();
    assert_eq!(store.size(&digest).await.unwrap(), None);
    store
        .write(
            &digest,
            blob.len() as u64,
            futures::stream::iter(pieces.clone()),
        )
        .await
        .unwrap();
    assert_eq!(store.size(&digest).await.unwrap(), Some(blob.len() as u64));
    // Again: the store has it, which counts as written.
    store
        .write(&digest, blob.len() as u64, futures::stream::iter(pieces))
        .await
        .unwrap();

    let (sink, mut chunks) = mpsc::channel(4);
    let reader = store.clone();
    let read = tokio::spawn(async move { reader.read(&digest, sink).await });
    let mut back = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        back.extend_from_slice(&chunk);
    }
    read.await.unwrap().unwrap();
    assert!(back == blob, "the blob comes back as written");
}

#[tokio::test]
async fn a_blob_that_is_not_its_digest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = served_store(tmp.path()).await;
    let digest = nodekitd::oci::sha256_digest(b"what was announced");
    let error = store
        .write(
            &digest,
            9,
            futures::stream::iter([Bytes::from_static(b"something")]),
        )
        .await
        .unwrap_err();
    assert!(error.message().contains("digest"), "{error}");
    assert_eq!(store.size(&digest).await.unwrap(), None);
}
