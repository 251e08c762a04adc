//! What the HTTPS mail stand-ins (Graph, ACS) share: a Python script from tests/support,
//! started as `script PORT CERT KEY OUT_DIR ANSWER_FILE extra…` with the test CA's certificates,
//! writing what it accepted to `out/` and answering as the answer file says. Also how every
//! stand-in server is started: [`started`].

use super::free_port;
use super::tls::test_certificates;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct MailStandIn {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl MailStandIn {
    /// Starts `tests/support/{script}` and waits until it is ready.
    pub fn start(script: &str, extra: &[&str]) -> Self {
        let path = format!("{}/tests/support/{script}", env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().expect("temp dir");
        test_certificates(dir.path());
        std::fs::create_dir(dir.path().join("out")).expect("mkdir");
        let port = free_port();
        let child = started(
            Command::new("python3")
                .arg(path)
                .arg(port.to_string())
                .arg(dir.path().join("cert.pem"))
                .arg(dir.path().join("key.pem"))
                .arg(dir.path().join("out"))
                .arg(dir.path().join("answer"))
                .args(extra),
            script,
            "python3",
        );
        Self { child, port, dir }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA certificate to trust (`SSL_CERT_FILE`).
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// From now on, answer as `answer` says (what each stand-in understands is in its script).
    pub fn answer(&self, answer: &str) {
        std::fs::write(self.dir.path().join("answer"), answer).expect("write");
    }

    /// Where it writes what it accepted.
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
}

impl Drop for MailStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns a stand-in server and waits for the `ready` line it prints once it listens; `needs`
/// names the runtime to install when it cannot be spawned.
pub fn started(command: &mut Command, what: &str, needs: &str) -> Child {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} needs {needs}: {e}"));
    let mut ready = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut ready).expect("read");
    assert_eq!(ready.trim(), "ready", "{what} did not start");
    child
}
