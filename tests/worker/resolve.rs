use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::DeleteImageRequest;
use nodekit_test_support::{ctr, TestEnv};
use nodekitd::oci::Platform;
use nodekitd::worker::{ImageOrigin, WorkerError};

#[tokio::test]
async fn an_image_in_the_host_store_resolves_without_a_registry() {
    let env = TestEnv::get();
    let worker = env.worker("resolve-local").await;
    let image = worker
        .resolve_image(&env.local_image, &Platform::native())
        .await
        .expect("resolve");
    assert_eq!(image.origin, ImageOrigin::ImageStore);
    assert_eq!(image.name, format!("{}", env.local_image));
    assert_eq!(image.layers().len(), 1);
    assert_eq!(
        image.image.config.architecture().to_string(),
        Platform::native().architecture
    );
}

#[tokio::test]
async fn the_requested_platform_is_picked_from_the_index() {
    let env = TestEnv::get();
    let worker = env.worker("resolve-platform").await;
    let arm = worker
        .resolve_image(&env.local_image, &Platform::parse("linux/arm64").unwrap())
        .await
        .expect("resolve arm64");
    assert_eq!(arm.image.config.architecture().to_string(), "arm64");
    let native = worker
        .resolve_image(&env.local_image, &Platform::native())
        .await
        .unwrap();
    assert_ne!(arm.image.manifest_digest, native.image.manifest_digest);

    let missing = worker
        .resolve_image(&env.local_image, &Platform::parse("linux/s390x").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(missing, WorkerError::NoMatchingPlatform { .. }),
        "{missing}"
    );
    assert!(
        missing.to_string().contains("linux/amd64, linux/arm64"),
        "{missing}"
    );
}

#[tokio::test]
async fn an_absent_image_is_pulled_from_the_registry_into_the_store() {
    let env = TestEnv::get();
    let worker = env.worker("resolve-pull").await;
    // Make sure it is absent: an earlier run may have pulled it.
    let deleted = ImagesClient::new(worker.channel().clone())
        .delete(worker.ctx().request(DeleteImageRequest {
            name: env.registry_image.clone(),
            sync: true,
            target: None,
        }))
        .await;
    assert!(deleted.is_ok() || deleted.unwrap_err().code() == tonic::Code::NotFound);

    let pulled = worker
        .resolve_image(&env.registry_image, &Platform::native())
        .await
        .expect("pull");
    assert_eq!(pulled.origin, ImageOrigin::Registry);
    // The kubelet's view: the image is now in the store...
    let listed = ctr(env, &["images", "ls", "-q"]);
    assert!(String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l == env.registry_image));
    // ...and the next resolution needs no registry.
    let again = worker
        .resolve_image(&env.registry_image, &Platform::native())
        .await
        .unwrap();
    assert_eq!(again.origin, ImageOrigin::ImageStore);
    assert_eq!(again.image.manifest_digest, pulled.image.manifest_digest);
    // Its layers unpack, and what they contain is the registry image's.
    let lease = worker.lease("resolve-pull").await.unwrap();
    let top = worker
        .unpack(&lease, &again)
        .await
        .expect("unpack pulled image");
    assert_eq!(top, again.chain_id());
    lease.release().await.unwrap();
}

#[tokio::test]
async fn an_image_nowhere_to_be_found_is_a_clear_error() {
    let env = TestEnv::get();
    let worker = env.worker("resolve-missing").await;
    let reference = format!("{}/nodekit/does-not-exist:1", env.registry);
    let error = worker
        .resolve_image(&reference, &Platform::native())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("does-not-exist") && text.contains("k8s.io"),
        "{text}"
    );
    let error = worker
        .resolve_image("Not A Reference", &Platform::native())
        .await
        .unwrap_err();
    assert!(
        matches!(error, WorkerError::InvalidReference { .. }),
        "{error}"
    );
}
