//! The worker's counters: a failed containerd call counts under its service
//! (`nodekit_containerd_errors_total`), an absent object (NotFound) does not.

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::InfoRequest;
use nodekit_test_support::TestEnv;

#[tokio::test]
async fn failed_containerd_calls_are_counted_by_service_but_absent_objects_are_not() {
    let worker = TestEnv::get().worker("stats").await;
    let errors = |service: &str| worker.stats().containerd_errors.get(service).copied();
    assert_eq!(errors("content"), Some(0));
    let info = |digest: String| {
        let mut content = ContentClient::new(worker.channel().clone());
        let request = worker.ctx().request(InfoRequest { digest });
        async move { content.info(request).await }
    };

    let absent = info(format!("sha256:{}", "0".repeat(64))).await;
    assert_eq!(absent.unwrap_err().code(), tonic::Code::NotFound);
    assert_eq!(errors("content"), Some(0), "an absent blob is no error");

    let invalid = info("not-a-digest".into()).await;
    assert_eq!(invalid.unwrap_err().code(), tonic::Code::InvalidArgument);
    assert_eq!(errors("content"), Some(1));
    assert_eq!(errors("images"), Some(0));
}
