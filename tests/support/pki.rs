//! Test certificates: a CA and the server and client certificates it signs, written as PEM files
//! (what an operator mounts from a Kubernetes Secret).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A certificate authority of its own, for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    /// Writes the CA's certificate to `path`.
    pub fn write_cert(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.issuer.as_ref().pem()).unwrap();
        path.to_path_buf()
    }

    /// A server certificate for `names` (DNS names or IP addresses), written as
    /// `<dir>/<stem>.pem` and `<dir>/<stem>-key.pem`.
    pub fn server(&self, dir: &Path, stem: &str, names: &[&str]) -> CertFiles {
        self.issue(dir, stem, names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (as buildctl's `--tlscert`).
    pub fn client(&self, dir: &Path, stem: &str) -> CertFiles {
        self.issue(dir, stem, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> CertFiles {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, stem);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let files = CertFiles {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}-key.pem")),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }
}
