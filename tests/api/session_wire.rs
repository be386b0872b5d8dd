//! The session's wire as BuildKit's own clients read it: the daemon's HTTP/2 opening (preface
//! and SETTINGS) arrives as one `BytesMessage`. buildx's session connection mishandles messages
//! that arrive after it closes a session (it drains them by appending its whole receive buffer),
//! so an opening split over several messages made buildx print HTTP/2 PROTOCOL_ERRORs.

use std::time::Duration;

use futures::StreamExt;
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::BytesMessage;
use nodekit_test_support::TestDaemon;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS_FRAME: u8 = 4;

#[tokio::test]
async fn the_daemon_s_http2_opening_arrives_as_one_message() {
    let daemon = TestDaemon::start("session-wire").await;
    let (to_daemon, incoming) = tokio::sync::mpsc::channel::<BytesMessage>(4);
    let incoming =
        futures::stream::unfold(incoming, |mut r| async { r.recv().await.map(|m| (m, r)) });
    let mut request = tonic::Request::new(incoming);
    request
        .metadata_mut()
        .insert("x-docker-expose-session-uuid", "wire-test".parse().unwrap());
    let mut control = ControlClient::new(daemon.channel().await);
    let session = tokio::spawn(async move { control.session(request).await });
    // The client side's HTTP/2 server speaks first with its own (empty) SETTINGS.
    let server_settings = [0u8, 0, 0, SETTINGS_FRAME, 0, 0, 0, 0, 0];
    to_daemon
        .send(BytesMessage {
            data: server_settings.to_vec().into(),
        })
        .await
        .unwrap();
    let mut from_daemon = session.await.unwrap().unwrap().into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), from_daemon.next())
        .await
        .expect("the daemon dials the session")
        .unwrap()
        .unwrap()
        .data;
    assert!(first.starts_with(PREFACE), "{first:?}");
    let frame = &first[PREFACE.len()..];
    assert!(
        frame.len() >= 9,
        "the SETTINGS frame came apart from the preface: {first:?}"
    );
    assert_eq!(frame[3], SETTINGS_FRAME, "{first:?}");
    drop(to_daemon);
    daemon.stop().await;
}
