//! A stand-in for Azure Communication Services Email over HTTPS (tests/support/acs_server.py).

use super::tls::test_certificates;
use super::{IDENTITY_SECRET, IdentityEndpoint, Received, free_port, mail_settings, set};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The resource's access key, base64, as its connection string holds it.
pub const ACS_KEY: &str = "dGVzdC1hY2Nlc3Mta2V5LWZvci1rdi1ub3RpZnk=";

pub struct FakeAcs {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// One POST to `emails:send`, as the stand-in logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsRequest {
    pub status: u16,
    pub repeatability_id: String,
    /// `token` or `key`.
    pub auth: String,
}

impl FakeAcs {
    pub fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/acs_server.py");
        let dir = tempfile::tempdir().expect("temp dir");
        test_certificates(dir.path());
        std::fs::create_dir(dir.path().join("out")).expect("mkdir");
        let port = free_port();
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"))
            .arg(dir.path().join("out"))
            .arg(dir.path().join("answer"))
            .arg(ACS_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the ACS stand-in needs python3");
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut ready).expect("read");
        assert_eq!(ready.trim(), "ready", "the ACS stand-in did not start");
        Self { child, port, dir }
    }

    /// `ACS_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// From now on, answer every send with `answer` (`400`, `400-sender`, `403`, `429`, `500`,
    /// `hang`, `fail-later`, `stall-operation`; `202` to accept again).
    pub fn answer(&self, answer: &str) {
        std::fs::write(self.dir.path().join("answer"), answer).expect("write");
    }

    /// The mails ACS accepted, as it would send them.
    pub fn accepted(&self) -> Vec<Received> {
        let out = self.dir.path().join("out");
        (0..)
            .map_while(|n| {
                let raw = std::fs::read(out.join(format!("{n}.eml"))).ok()?;
                Some(Received { raw })
            })
            .collect()
    }

    /// Every POST to `emails:send`, in order.
    pub fn requests(&self) -> Vec<AcsRequest> {
        std::fs::read_to_string(self.dir.path().join("out/requests.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let mut fields = line.split(' ');
                let mut next = || fields.next().unwrap_or_default().to_owned();
                AcsRequest {
                    status: next().parse().expect("a status"),
                    repeatability_id: next(),
                    auth: next(),
                }
            })
            .collect()
    }
}

impl Drop for FakeAcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// [`mail_settings`], the mail sent through `acs` as the managed identity of `identity`.
pub fn acs_settings(acs: &FakeAcs, identity: &IdentityEndpoint) -> Vec<(&'static str, String)> {
    let mut settings = acs_base(acs);
    set(&mut settings, "ACS_ENDPOINT", &acs.url());
    set(&mut settings, "IDENTITY_ENDPOINT", &identity.url());
    set(&mut settings, "IDENTITY_HEADER", IDENTITY_SECRET);
    settings
}

/// [`mail_settings`], the mail sent through `acs` with its access key.
pub fn acs_key_settings(acs: &FakeAcs) -> Vec<(&'static str, String)> {
    let mut settings = acs_base(acs);
    let connection = format!("endpoint={}/;accesskey={ACS_KEY}", acs.url());
    set(&mut settings, "ACS_CONNECTION_STRING", &connection);
    settings
}

fn acs_base(acs: &FakeAcs) -> Vec<(&'static str, String)> {
    let mut settings = mail_settings("unused");
    settings.retain(|(name, _)| *name != "SMTP_URL");
    set(&mut settings, "ACS_SENDER", "kv-notify@contoso.com");
    let certificate = acs.dir.path().join("ca.pem");
    set(
        &mut settings,
        "SSL_CERT_FILE",
        &certificate.to_string_lossy(),
    );
    settings
}
