//! A registry of its own for one test, with htpasswd (basic) auth, on a free loopback port:
//! Debian's docker-registry, started here and stopped by its PID when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{CertFiles, TestEnv};

pub struct AuthRegistry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    pub user: String,
    pub password: String,
    dir: PathBuf,
    child: Child,
}

impl AuthRegistry {
    /// Starts a registry that admits `user` with `password` and no one else (plain HTTP).
    pub fn start(test: &str, user: &str, password: &str) -> AuthRegistry {
        AuthRegistry::start_with(test, user, password, None)
    }

    /// As [`AuthRegistry::start`], serving TLS with `tls` (a certificate for 127.0.0.1), and
    /// with `client_ca`, admitting only clients with a certificate it signed.
    pub fn start_tls(
        test: &str,
        user: &str,
        password: &str,
        tls: &CertFiles,
        client_ca: Option<&std::path::Path>,
    ) -> AuthRegistry {
        AuthRegistry::start_with(test, user, password, Some((tls, client_ca)))
    }

    fn start_with(
        test: &str,
        user: &str,
        password: &str,
        tls: Option<(&CertFiles, Option<&std::path::Path>)>,
    ) -> AuthRegistry {
        let dir =
            std::env::temp_dir().join(format!("nodekit-registry-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("htpasswd"), htpasswd_entry(user, password)).unwrap();
        let port = crate::free_loopback_addr().port();
        let host = format!("127.0.0.1:{port}");
        let tls = tls.map_or_else(String::new, |(files, client_ca)| {
            let clientcas = client_ca.map_or_else(String::new, |ca| {
                format!("    clientcas:\n      - {}\n", ca.display())
            });
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n{clientcas}",
                files.cert.display(),
                files.key.display()
            )
        });
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: {host}\n{tls}auth:\n  htpasswd:\n    realm: nodekit-test\n    path: {htpasswd}\n",
            data = dir.join("data").display(),
            htpasswd = dir.join("htpasswd").display(),
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("docker-registry starts (tests/env/install.sh installs it)");
        let registry = AuthRegistry {
            host,
            user: user.into(),
            password: password.into(),
            dir,
            child,
        };
        registry.wait_answering();
        registry
    }

    fn wait_answering(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&self.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry on {} did not start",
                self.host
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Copies the test environment's registry image here as `repository:tag`, with the
    /// registry's credentials; returns the full reference.
    pub fn seed(&self, repository: &str) -> String {
        self.copy_in(repository, &["--dest-tls-verify=false".into()])
    }

    /// As [`AuthRegistry::seed`], for a registry that wants a client certificate: skopeo
    /// presents `client` (its cert directory holds the CA, `client.cert` and `client.key`).
    pub fn seed_with_client(
        &self,
        client: &CertFiles,
        ca: &std::path::Path,
        repository: &str,
    ) -> String {
        let certs = self.dir.join("skopeo-certs");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::copy(ca, certs.join("ca.crt")).unwrap();
        std::fs::copy(&client.cert, certs.join("client.cert")).unwrap();
        std::fs::copy(&client.key, certs.join("client.key")).unwrap();
        self.copy_in(
            repository,
            &[format!("--dest-cert-dir={}", certs.display())],
        )
    }

    /// `skopeo copy` of the test registry's image to `repository` here, with `tls` options for
    /// this end.
    fn copy_in(&self, repository: &str, tls: &[String]) -> String {
        let target = format!("{}/{repository}", self.host);
        let source = &TestEnv::get().registry_image;
        let output = Command::new("skopeo")
            .args(["copy", "-q", "--all", "--src-tls-verify=false"])
            .args(tls)
            .arg(format!("--dest-creds={}:{}", self.user, self.password))
            .arg(format!("docker://{source}"))
            .arg(format!("docker://{target}"))
            .output()
            .expect("skopeo runs");
        assert!(
            output.status.success(),
            "skopeo copy to {target}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        target
    }

    /// A docker config file holding this registry's credentials (`auths`, as `docker login`
    /// writes it), at `path`.
    pub fn docker_config(&self, path: &std::path::Path, password: &str) -> PathBuf {
        use base64::Engine;
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", self.user));
        let config = serde_json::json!({ "auths": { &self.host: { "auth": auth } } });
        std::fs::write(path, config.to_string()).unwrap();
        path.to_path_buf()
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A bcrypt htpasswd line (the only hash the registry accepts), from apache2-utils' htpasswd:
/// cost 5, as low as it goes, since only the registry's check of it matters here.
fn htpasswd_entry(user: &str, password: &str) -> String {
    let output = Command::new("htpasswd")
        .args(["-n", "-b", "-B", "-C", "5", user, password])
        .output()
        .expect("htpasswd (apache2-utils, installed by tests/env/install.sh)");
    assert!(output.status.success(), "htpasswd: {output:?}");
    String::from_utf8(output.stdout)
        .expect("htpasswd prints text")
        .trim_end()
        .to_string()
        + "\n"
}
