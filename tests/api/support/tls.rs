//! Certificates for the HTTPS stand-ins: a test CA (`ca.pem`, which the handler is told to
//! trust through `SSL_CERT_FILE`) and a server certificate for 127.0.0.1 that it signs
//! (`cert.pem`, `key.pem`). A self-signed server certificate would be a CA used as an end
//! entity, which rustls rightly refuses.

use std::path::Path;
use std::process::{Command, Stdio};

/// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir`.
pub fn test_certificates(dir: &Path) {
    test_certificates_for(dir, &[]);
}

/// The same, with the server certificate also valid for the host names `names`.
pub fn test_certificates_for(dir: &Path, names: &[String]) {
    let mut alt_names = vec!["IP:127.0.0.1".to_owned()];
    alt_names.extend(names.iter().map(|name| format!("DNS:{name}")));
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName={}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            alt_names.join(",")
        ),
    )
    .expect("write");
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("the TLS tests need openssl: apt-get install -y openssl");
        assert!(status.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=kv-notify test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ]);
}
