//! Azurite's Table service: the storage account a function app's shared ledger lives in,
//! started per test on a free port with a folder of its own, stopped (by PID) when dropped.

use super::tls::test_certificates;
use super::{free_port, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const INSTALL_HINT: &str = "the shared-ledger tests need Azurite: run \
     `npm install --prefix target/tools azurite@3.35.0` (scripts/test does it for you)";

/// Azurite's well-known development key (public, documented).
pub(super) const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite Table service.
pub struct Azurite {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// With TLS and Entra ID tokens checked (`--oauth basic`): the certificate to trust.
    tls: Option<PathBuf>,
}

impl Azurite {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = spawn("table", port, dir.path(), false, INSTALL_HINT);
        Self {
            child,
            port,
            dir,
            tls: None,
        }
    }

    /// Over HTTPS with a self-signed certificate for 127.0.0.1, checking bearer tokens' issuer,
    /// audience and times (`--oauth basic`), as Azure Storage does for a managed identity.
    pub fn start_with_oauth() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        test_certificates(dir.path());
        let port = free_port();
        let child = spawn("table", port, dir.path(), true, INSTALL_HINT);
        let tls = Some(dir.path().join("ca.pem"));
        Self {
            child,
            port,
            dir,
            tls,
        }
    }

    /// The CA certificate a client must trust (HTTPS only).
    pub fn certificate(&self) -> Option<&Path> {
        self.tls.as_deref()
    }

    /// The Table service URI (`AzureWebJobsStorage__tableServiceUri`).
    pub fn table_uri(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/devstoreaccount1", self.port)
    }

    /// Stops the service, as an outage would; its data stays.
    pub fn stop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// Starts it again on the same port, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(
            "table",
            self.port,
            self.dir.path(),
            self.tls.is_some(),
            INSTALL_HINT,
        );
    }

    /// Deletes the table `name`, as an operator (or a clean-up script) might, signed with the
    /// account key (Shared Key Lite).
    pub async fn delete_table(&self, name: &str) {
        use base64::Engine as _;
        use hmac::Mac as _;
        let url = format!("{}/Tables('{name}')", self.table_uri());
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let path = url.split_once("127.0.0.1").map_or("", |(_, rest)| rest);
        let path = path.find('/').map_or("", |slash| &path[slash..]);
        let text = format!("{date}\n/devstoreaccount1{path}");
        let engine = base64::engine::general_purpose::STANDARD;
        let key = engine.decode(DEV_KEY).expect("the key is base64");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("a key");
        mac.update(text.as_bytes());
        let signature = engine.encode(mac.finalize().into_bytes());
        let answer = super::http_client()
            .delete(&url)
            .header("x-ms-date", &date)
            .header("x-ms-version", "2019-02-02")
            .header("Accept", "application/json;odata=nometadata")
            .header("Content-Type", "application/json")
            .header("DataServiceVersion", "3.0;NetFx")
            .header(
                "Authorization",
                format!("SharedKeyLite devstoreaccount1:{signature}"),
            )
            .send()
            .await
            .expect("Azurite answers");
        assert!(
            answer.status().is_success(),
            "deleting {name}: {}",
            answer.status()
        );
    }

    /// The connection string a function app would have in `AzureWebJobsStorage`.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};\
             TableEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
            self.port
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts Azurite's `service` (`table`, `queue` or `blob`) on `port`, its data in `dir`; with
/// `oauth`, over HTTPS (dir's cert.pem and key.pem) checking bearer tokens as Azure Storage does.
/// `hint` says how to install what is missing.
pub(super) fn spawn(service: &str, port: u16, dir: &Path, oauth: bool, hint: &str) -> Child {
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("target/tools/node_modules/.bin/azurite-{service}"));
    assert!(binary.exists(), "{hint}");
    let mut command = Command::new(&binary);
    if oauth {
        command
            .args(["--oauth", "basic", "--cert"])
            .arg(dir.join("cert.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"));
    }
    let child = command
        .args([format!("--{service}Host"), "127.0.0.1".to_owned()])
        .args([format!("--{service}Port"), port.to_string()])
        .arg("--location")
        .arg(dir)
        .args(["--silent", "--skipApiVersionCheck", "--disableTelemetry"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}; {hint}", binary.display()));
    let listening = wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(
        listening,
        "Azurite's {service} service did not listen on port {port} within 20 s"
    );
    child
}

/// The ledger a test runs on. A table's Azurite lives as long as the value.
pub enum TestLedger {
    /// The redb file (each handler gets its own unless the test names one).
    File,
    /// The storage-account table, in an Azurite of its own.
    Table(Azurite),
}

impl TestLedger {
    pub fn table() -> Self {
        Self::Table(Azurite::start())
    }

    /// [`mail_settings`](super::mail_settings) for this ledger.
    pub fn settings(&self, smtp_url: &str) -> Vec<(&'static str, String)> {
        let mut settings = super::mail_settings(smtp_url);
        if let Self::Table(azurite) = self {
            super::set(&mut settings, "LEDGER", "table");
            super::set(
                &mut settings,
                "AzureWebJobsStorage",
                &azurite.connection_string(),
            );
        }
        settings
    }
}

/// Runs each named `async fn(TestLedger)` of the calling module twice: `on_file::NAME` and
/// `on_table::NAME`.
macro_rules! on_both_ledgers {
    ($($name:ident),* $(,)?) => {
        mod on_file {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::TestLedger::File).await
                }
            )*
        }
        mod on_table {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::TestLedger::table()).await
                }
            )*
        }
    };
}

pub(crate) use on_both_ledgers;
