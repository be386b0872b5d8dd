//! The daemon's proxy settings reach RUN steps (both letter cases) without entering cache keys
//! or the image.

use std::sync::{Arc, Mutex};

use nodekit_proto::pb::ProxyEnv;
use nodekit_test_support::{TestDaemon, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{build_dockerfile, context, run_in_image, unique};

/// A loopback HTTP proxy answering every request itself; returns its address and the
/// request targets it saw.
async fn start_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
            record.lock().unwrap().push(target.clone());
            let body = format!("through the proxy: {target}\n");
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    (addr, seen)
}

fn with_proxy(addr: &str) -> impl FnOnce(&mut nodekitd::config::Config) {
    let proxy = ProxyEnv {
        http_proxy: format!("http://{addr}"),
        no_proxy: "localhost".into(),
        ..Default::default()
    };
    move |config| config.worker.proxy = Some(proxy)
}

#[tokio::test]
async fn run_steps_use_the_daemons_proxy_which_stays_out_of_keys_and_images() {
    let root = tempfile::tempdir().unwrap().keep();
    let (first, seen) = start_proxy().await;
    let daemon = TestDaemon::start_configured("proxy", root.clone(), with_proxy(&first)).await;
    let dockerfile = format!(
        "FROM {}\nARG NONCE\nRUN echo $NONCE && wget -q -O /got http://nodekit.invalid/hello && env | grep -i _proxy | sort > /proxies\n",
        TestEnv::get().local_image
    );
    let dir = context(&dockerfile, &[]);
    let nonce = unique();
    let args = [("NONCE", nonce.as_str())];
    let image = "nodekit.test/proxy:1";
    let built = build_dockerfile(&daemon, dir.path(), &args, Some(image)).await;
    built.result.as_ref().expect("a build through the proxy");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["http://nodekit.invalid/hello"]
    );
    assert_eq!(
        run_in_image(image, &["cat", "/got"]),
        "through the proxy: http://nodekit.invalid/hello\n"
    );
    let proxies = run_in_image(image, &["cat", "/proxies"]);
    for line in [
        format!("HTTP_PROXY=http://{first}"),
        format!("http_proxy=http://{first}"),
        "NO_PROXY=localhost".to_string(),
        "no_proxy=localhost".to_string(),
    ] {
        assert!(proxies.contains(&line), "{line} missing from:\n{proxies}");
    }
    let env = run_in_image(image, &["env"]);
    assert!(
        !env.to_lowercase().contains("proxy"),
        "the image carries a proxy:\n{env}"
    );
    daemon.stop().await;

    // Another proxy: the step stays cached.
    let (second, _) = start_proxy().await;
    let daemon = TestDaemon::start_configured("proxy", root.clone(), with_proxy(&second)).await;
    let again = build_dockerfile(&daemon, dir.path(), &args, Some(image)).await;
    again.result.as_ref().expect("the build with another proxy");
    assert_eq!(
        again.ran(),
        Vec::<String>::new(),
        "cached despite the new proxy"
    );
    daemon.stop().await;
    let _ = std::fs::remove_dir_all(root);
}
