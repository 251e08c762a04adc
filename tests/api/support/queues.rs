//! Azurite's Queue and Blob services, the Functions host's queue listener (tests/support/queue_host.py,
//! with the Azure SDK's queue client) and a queue tool for the test's own puts and peeks.

use super::azurite::{DEV_KEY, spawn};
use super::{app_root, free_port};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const INSTALL_HINT: &str = "the queue tests need Azurite and the Azure SDK's queue client: run \
     `npm install --prefix target/tools azurite@3.35.0` and `python3 -m pip install \
     azure-storage-queue==12.14.1 azure-storage-blob==12.27.1` (scripts/test does both for you)";

/// Running Azurite Queue and Blob services.
pub struct AzuriteQueues {
    children: Vec<Child>,
    queue_port: u16,
    blob_port: u16,
    /// With HTTPS and tokens checked: the CA certificate a client must trust.
    tls: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl AzuriteQueues {
    pub fn start() -> Self {
        Self::started(false)
    }

    /// Over HTTPS with a self-signed certificate for 127.0.0.1, checking bearer tokens' issuer,
    /// audience and times (`--oauth basic`), as Azure Storage does for an Entra ID login.
    pub fn start_with_oauth() -> Self {
        Self::started(true)
    }

    fn started(oauth: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        if oauth {
            super::tls::test_certificates(dir.path());
        }
        let (queue_port, blob_port) = (free_port(), free_port());
        let children = vec![
            spawn("queue", queue_port, dir.path(), oauth, INSTALL_HINT),
            spawn("blob", blob_port, dir.path(), oauth, INSTALL_HINT),
        ];
        Self {
            children,
            queue_port,
            blob_port,
            tls: oauth.then(|| dir.path().join("ca.pem")),
            _dir: dir,
        }
    }

    /// The CA certificate a client must trust (HTTPS only).
    pub fn certificate(&self) -> Option<&Path> {
        self.tls.as_deref()
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The Queue service URI (`AzureWebJobsStorage__queueServiceUri`).
    pub fn queue_uri(&self) -> String {
        format!(
            "{}://127.0.0.1:{}/devstoreaccount1",
            self.scheme(),
            self.queue_port
        )
    }

    /// The Blob service URI (`AzureWebJobsStorage__blobServiceUri`).
    pub fn blob_uri(&self) -> String {
        format!(
            "{}://127.0.0.1:{}/devstoreaccount1",
            self.scheme(),
            self.blob_port
        )
    }

    /// The connection string a function app would have in `AzureWebJobsStorage`.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol={};AccountName=devstoreaccount1;AccountKey={DEV_KEY};\
             QueueEndpoint={};BlobEndpoint={};",
            self.scheme(),
            self.queue_uri(),
            self.blob_uri()
        )
    }

    /// Writes the blob `name` holding `text` into `container`, as Event Grid writes a dead
    /// letter.
    pub fn put_blob(&self, container: &str, name: &str, text: &str) {
        self.tool(&["put-blob", container, name, text]);
    }

    /// The names of the blobs in `container`.
    pub fn blobs(&self, container: &str) -> Vec<String> {
        let out = self.tool(&["list-blobs", container]);
        serde_json::from_str(&out).expect("the tool prints JSON")
    }

    /// Puts `text` in `queue`, base64-encoded as Event Grid writes it.
    pub fn put(&self, queue: &str, text: &str) {
        self.tool(&["put", queue, text]);
    }

    /// The messages `queue` holds (decoded): `[{"id", "text", "dequeueCount"}]`.
    pub fn peek(&self, queue: &str) -> Vec<Value> {
        let out = self.tool(&["peek", queue]);
        serde_json::from_str(&out).expect("the tool prints JSON")
    }

    fn tool(&self, args: &[&str]) -> String {
        let script = app_root().join("tests/support/queue_tool.py");
        let output = Command::new("python3")
            .arg(script)
            .arg(self.connection_string())
            .args(args)
            // The SDK's HTTP client (requests) trusts the test CA over HTTPS.
            .envs(self.tls.iter().map(|ca| ("REQUESTS_CA_BUNDLE", ca)))
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
        assert!(
            output.status.success(),
            "queue_tool {args:?}: {}; {INSTALL_HINT}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for AzuriteQueues {
    fn drop(&mut self) {
        for child in &mut self.children {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// The host's queue listener for `event-queue`, invoking the handler at `handler_url`.
pub struct QueueHost {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl QueueHost {
    /// Listens on `queues` with the retry settings of `host_json`, its timings divided by
    /// `scale` (at least a second a wait).
    pub fn start(queues: &AzuriteQueues, handler_url: &str, host_json: &Path, scale: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("invocations.log");
        let mut child = Command::new("python3")
            .arg(app_root().join("tests/support/queue_host.py"))
            .arg(queues.connection_string())
            .arg(handler_url)
            .arg(host_json)
            .arg(scale.to_string())
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        BufReader::new(stdout).read_line(&mut line).ok();
        assert_eq!(
            line.trim(),
            "ready",
            "the queue listener did not start; {INSTALL_HINT}"
        );
        Self {
            child,
            log,
            _dir: dir,
        }
    }

    /// Every invocation so far: (message id, dequeue count, HTTP status).
    pub fn invocations(&self) -> Vec<(String, u32, u16)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut parts = line.split(' ');
                Some((
                    parts.next()?.to_owned(),
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                ))
            })
            .collect()
    }
}

impl Drop for QueueHost {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
