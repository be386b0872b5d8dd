//! The push side of the registry client against the loopback registry: a blob is uploaded once
//! (HEAD finds it the second time), and mounted into another repository of the registry when
//! its content-store label names the repository it came from, as a pull leaves it.

use nodekit_test_support::{ctr, TestEnv};
use nodekitd::worker::images::{normalize_reference, NoClient, Pushed, Pusher, SOURCE_ANNOTATION};
use nodekitd::worker::Descriptor;

#[tokio::test]
async fn a_blob_is_uploaded_once_and_mounted_into_another_repository() {
    let env = TestEnv::get();
    let worker = env.worker("push-mount").await;
    let lease = worker.lease("push-mount").await.unwrap();
    let data: Vec<u8> = (0..3 << 20).map(|_| rand::random::<u8>()).collect();
    let blob = Descriptor {
        media_type: "application/octet-stream".into(),
        digest: nodekitd::oci::sha256_digest(&data),
        size: data.len() as i64,
        annotations: Default::default(),
    };
    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(data)]);
    worker
        .write_blob_from(&lease, &blob.digest, blob.size as u64, chunks)
        .await
        .unwrap();
    let nonce = rand::random::<u32>();
    let reference =
        |repo: &str| normalize_reference(&format!("{}/{repo}:1", env.registry)).unwrap();
    let first_repo = reference(&format!("nodekit/push-a-{nonce}"));
    let first = Pusher::new(&worker, &first_repo, &NoClient).await.unwrap();
    assert_eq!(
        first.push_blob(&worker, &blob).await.unwrap(),
        Pushed::Uploaded
    );
    assert_eq!(
        first.push_blob(&worker, &blob).await.unwrap(),
        Pushed::Present
    );

    // What a pull from the first repository would have left on the blob.
    let label = format!("{SOURCE_ANNOTATION}{}=nodekit/push-a-{nonce}", env.registry);
    assert!(ctr(env, &["content", "label", &blob.digest, &label])
        .status
        .success());
    let second_repo = reference(&format!("nodekit/push-b-{nonce}"));
    let second = Pusher::new(&worker, &second_repo, &NoClient).await.unwrap();
    assert_eq!(
        second.push_blob(&worker, &blob).await.unwrap(),
        Pushed::Mounted
    );
    lease.release().await.unwrap();
}
