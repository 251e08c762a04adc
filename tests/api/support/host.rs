//! A stand-in for the Azure Functions host, doing what the real one does for a custom handler:
//! read host.json and the function folders, start the handler with
//! `FUNCTIONS_CUSTOMHANDLER_PORT` and the app settings as environment, poll `GET /` every 25 ms
//! until any HTTP answer, POST invocations chunked, and expose the Event Grid webhook endpoint
//! semantics (404 / validation handshake / one invocation per event / 202 or 500).

use futures_util::stream;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The function app: the repository root.
pub fn app_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What host.json and the function folders say.
pub struct FunctionApp {
    pub executable: PathBuf,
    pub working_directory: PathBuf,
    pub arguments: Vec<String>,
    /// Function name → its binding (`type`, `name`, `direction`).
    pub functions: BTreeMap<String, Value>,
}

impl FunctionApp {
    pub fn load() -> Self {
        Self::load_from(&app_root())
    }

    /// The app in `root`: a checkout, or a release zip unpacked there.
    pub fn load_from(root: &Path) -> Self {
        let host: Value = read_json(&root.join("host.json"));
        let description = &host["customHandler"]["description"];
        let executable = description["defaultExecutablePath"]
            .as_str()
            .expect("host.json: customHandler.description.defaultExecutablePath");
        let working = description["workingDirectory"].as_str().unwrap_or("");
        let arguments = description["arguments"]
            .as_array()
            .map(|args| {
                args.iter()
                    .filter_map(|a| a.as_str())
                    .map(expand_vars)
                    .collect()
            })
            .unwrap_or_default();
        let mut functions = BTreeMap::new();
        for entry in std::fs::read_dir(root).expect("app root").flatten() {
            let path = entry.path().join("function.json");
            if path.is_file() {
                let function: Value = read_json(&path);
                let name = entry.file_name().to_string_lossy().into_owned();
                functions.insert(name, function["bindings"][0].clone());
            }
        }
        Self {
            executable: root.join(executable),
            working_directory: root.join(working),
            arguments,
            functions,
        }
    }

    /// The binary to exec. The real host execs `executable`; the tests exec the packaged build
    /// when `KV_NOTIFY_PACKAGE` names one (as scripts/test does: the package's own host.json
    /// then names it), otherwise the build cargo made for the tests from the same sources.
    pub fn binary(&self) -> PathBuf {
        super::binaries::kv_notify_binary()
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expand_vars(arg: &str) -> String {
    let mut out = arg.to_owned();
    for (key, value) in std::env::vars() {
        out = out.replace(&format!("%{key}%"), &value);
    }
    out
}

/// An answer from the handler or from the emulated webhook endpoint.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {:?}", self.text))
    }

    /// `ReturnValue.events`.
    pub fn events(&self) -> Vec<Value> {
        self.json()["ReturnValue"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The statuses of every action of every event, in order.
    pub fn statuses(&self) -> Vec<String> {
        self.events()
            .iter()
            .flat_map(|e| e["actions"].as_array().cloned().unwrap_or_default())
            .map(|a| a["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// The handler process, started as the host starts it; killed when dropped.
pub struct Handler {
    pub port: u16,
    child: Child,
    output: Arc<Mutex<String>>,
    client: reqwest::Client,
    invocations: AtomicUsize,
    app: FunctionApp,
    /// The ledger's directory when the test did not choose one.
    _ledger_dir: Option<tempfile::TempDir>,
}

impl Handler {
    /// Starts the handler with these app settings, on the custom-handler port variable.
    /// A handler without SMTP, mailing owner `a@contoso.com` into a fresh outbox folder.
    pub async fn start_with_outbox() -> (tempfile::TempDir, Self) {
        let outbox = tempfile::tempdir().expect("temp dir");
        let dir = outbox.path().to_str().expect("utf-8").to_owned();
        let handler = Self::start(&[("OUTBOX_DIR", &dir), ("OWNER_EMAILS", "a@contoso.com")]).await;
        (outbox, handler)
    }

    pub async fn start(settings: &[(&str, &str)]) -> Self {
        Self::start_with_port_var(settings, "FUNCTIONS_CUSTOMHANDLER_PORT").await
    }

    pub async fn start_with_port_var(settings: &[(&str, &str)], port_var: &str) -> Self {
        let (handler, started) = Self::spawn(settings, port_var);
        handler.wait_ready(started).await;
        handler
    }

    /// Starts the handler with settings it must refuse: waits (up to 20 s) for it to exit with
    /// a failure, and returns its output once it mentions `needle`.
    pub fn refused_start(settings: &[(&str, &str)], needle: &str) -> String {
        let (mut handler, _) = Self::spawn(settings, "FUNCTIONS_CUSTOMHANDLER_PORT");
        let status = handler
            .wait_exit(Duration::from_secs(20))
            .expect("start-up refused");
        assert!(!status.success(), "exited with {status}");
        handler.output_with(needle)
    }

    /// Starts the process without waiting (for tests of start-up failures).
    pub fn spawn(settings: &[(&str, &str)], port_var: &str) -> (Self, Instant) {
        let app = FunctionApp::load();
        let mut command = Command::new(app.binary());
        command
            .args(&app.arguments)
            .current_dir(&app.working_directory);
        Self::launch(app, command, &app_root(), settings, port_var)
    }

    /// Starts another build of kv-notify (the previous release, say) as the host starts this
    /// app.
    pub async fn start_binary(binary: &Path, settings: &[(&str, &str)]) -> Self {
        let app = FunctionApp::load();
        let mut command = Command::new(binary);
        command
            .args(&app.arguments)
            .current_dir(&app.working_directory);
        let (handler, started) = Self::launch(
            app,
            command,
            &app_root(),
            settings,
            "FUNCTIONS_CUSTOMHANDLER_PORT",
        );
        handler.wait_ready(started).await;
        handler
    }

    /// Starts the app unpacked at `dir` (a release zip's contents): the executable its
    /// host.json names, in the working directory it names, with `dir` as the app root.
    pub async fn start_app(dir: &Path, settings: &[(&str, &str)]) -> Self {
        let app = FunctionApp::load_from(dir);
        let mut command = Command::new(&app.executable);
        command
            .args(&app.arguments)
            .current_dir(&app.working_directory);
        let (handler, started) =
            Self::launch(app, command, dir, settings, "FUNCTIONS_CUSTOMHANDLER_PORT");
        handler.wait_ready(started).await;
        handler
    }

    /// Starts the app unpacked at `app_dir` (a path inside `root`) in the file system `root`
    /// through chroot(8), as a worker with that system would run it: the working directory and
    /// the executable are the ones the app's host.json names. Needs root; the settings must
    /// put the ledger and the outbox inside `root`.
    pub async fn start_chrooted(root: &Path, app_dir: &Path, settings: &[(&str, &str)]) -> Self {
        let relative = app_dir.strip_prefix("/").unwrap_or(app_dir);
        let app = FunctionApp::load_from(&root.join(relative));
        let inside = |host_path: &Path| {
            app_dir.join(
                host_path
                    .strip_prefix(root.join(relative))
                    .expect("a path of the app"),
            )
        };
        let mut command = Command::new("chroot");
        command
            .arg(root)
            .args(["/bin/sh", "-c", r#"cd "$1" && shift && exec "$@""#, "sh"])
            .arg(inside(&app.working_directory))
            .arg(inside(&app.executable))
            .args(&app.arguments);
        let (handler, started) = Self::launch(
            app,
            command,
            app_dir,
            settings,
            "FUNCTIONS_CUSTOMHANDLER_PORT",
        );
        handler.wait_ready(started).await;
        handler
    }

    fn launch(
        app: FunctionApp,
        mut command: Command,
        app_root: &Path,
        settings: &[(&str, &str)],
        port_var: &str,
    ) -> (Self, Instant) {
        let port = super::free_port();
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(port_var, port.to_string())
            .env(
                "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
                "b6d2ad9e-6a0c-4f0a-9d0e-000000000001",
            )
            .env("FUNCTIONS_APP_ROOT_PATH", app_root)
            .env("FUNCTIONS_WORKER_RUNTIME", "custom")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in settings {
            command.env(key, value);
        }
        let ledger_dir = (!settings.iter().any(|(k, _)| *k == "LEDGER_PATH")).then(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            command.env("LEDGER_PATH", dir.path().join("ledger.redb"));
            dir
        });
        let started = Instant::now();
        let mut child = command.spawn().expect("start the handler binary");
        let output = Arc::new(Mutex::new(String::new()));
        capture(child.stdout.take(), output.clone());
        capture(child.stderr.take(), output.clone());
        let client = http_client();
        let handler = Self {
            port,
            child,
            output,
            client,
            invocations: AtomicUsize::new(0),
            app,
            _ledger_dir: ledger_dir,
        };
        (handler, started)
    }

    /// Polls `GET /` every 25 ms until any HTTP answer, for up to 30 s, like the host.
    pub async fn wait_ready(&self, started: Instant) {
        while started.elapsed() < Duration::from_secs(30) {
            if self.client.get(self.url("/")).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the handler did not answer GET / within 30 s; output:\n{}",
            self.output()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything the handler wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").clone()
    }

    /// Everything written so far, once it contains `needle` (or after 5 s): the pipes are read
    /// by threads, so a line the handler wrote may reach us a moment later.
    pub fn output_with(&self, needle: &str) -> String {
        super::wait_until(Duration::from_secs(5), || self.output().contains(needle));
        self.output()
    }

    /// Waits for the process to exit by itself (e.g. a refused start-up).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// How many invocations the host has sent.
    pub fn invocations(&self) -> usize {
        self.invocations.load(Ordering::SeqCst)
    }

    /// Invokes the function with one bound event value, as the host does.
    pub async fn invoke(&self, event: Value) -> Answer {
        self.try_invoke(event).await.expect("the handler answers")
    }

    /// Invokes the function; `Err` when the handler did not answer (e.g. it was killed).
    pub async fn try_invoke(&self, event: Value) -> Result<Answer, reqwest::Error> {
        let data = if event.is_object() {
            event["data"].clone()
        } else {
            Value::Null
        };
        let envelope = json!({
            "Data": { "event": event },
            "Metadata": {
                "data": data,
                "sys": { "MethodName": "function-trigger", "UtcNow": "2026-11-21T08:00:00Z", "RandGuid": "0f8fad5b-d9cb-469f-a165-70867728950e" }
            }
        });
        self.try_post_chunked("/function-trigger", envelope.to_string().into_bytes())
            .await
    }

    /// Fires the timer function `expiry-sweep` as the host does at a scheduled time: its folder
    /// must hold a `timerTrigger` binding, whose name carries the timer's status.
    pub async fn timer(&self) -> Answer {
        self.try_timer().await.expect("the handler answers")
    }

    /// Fires the timer; `Err` when the handler did not answer (e.g. it was killed).
    pub async fn try_timer(&self) -> Result<Answer, reqwest::Error> {
        let function = "expiry-sweep";
        let binding = self
            .app
            .functions
            .get(function)
            .unwrap_or_else(|| panic!("no {function}/function.json"));
        assert_eq!(binding["type"], "timerTrigger", "{binding}");
        assert_eq!(binding["runOnStartup"], false, "{binding}");
        let name = binding["name"].as_str().expect("a binding name");
        let envelope = json!({
            "Data": { name: {
                "Schedule": { "AdjustForDST": true },
                "ScheduleStatus": {
                    "Last": "0001-01-01T00:00:00",
                    "Next": "2026-11-24T06:00:00+00:00",
                    "LastUpdated": "0001-01-01T00:00:00"
                },
                "IsPastDue": false
            }},
            "Metadata": {
                "sys": { "MethodName": function, "UtcNow": "2026-11-23T06:00:00.0123456Z", "RandGuid": "2f1d5c3e-77a0-4d1b-9c4e-1a2b3c4d5e6f" }
            }
        });
        self.try_post_chunked(&format!("/{function}"), envelope.to_string().into_bytes())
            .await
    }

    /// POSTs a raw body in three chunks (`Transfer-Encoding: chunked`, no `Content-Length`).
    pub async fn post_chunked(&self, path: &str, body: Vec<u8>) -> Answer {
        self.try_post_chunked(path, body)
            .await
            .expect("the handler answers")
    }

    async fn try_post_chunked(&self, path: &str, body: Vec<u8>) -> Result<Answer, reqwest::Error> {
        self.invocations.fetch_add(1, Ordering::SeqCst);
        let third = body.len().div_ceil(3).max(1);
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(third).map(|c| Ok(c.to_vec())).collect();
        let request = self
            .client
            .post(self.url(path))
            .header("Content-Type", "application/json; charset=utf-8")
            .header(
                "X-Azure-Functions-InvocationId",
                format!("inv-{}", self.invocations()),
            )
            .header("X-Azure-Functions-HostVersion", "4.1037.0.0")
            .header("User-Agent", "Azure-Functions-Host/4.1037.0.0")
            .body(reqwest::Body::wrap_stream(stream::iter(chunks)));
        Ok(answer(request.send().await?).await)
    }

    /// POSTs with a `Content-Length` (a sized body).
    pub async fn post_sized(&self, path: &str, body: Vec<u8>) -> Answer {
        let request = self
            .client
            .post(self.url(path))
            .header("Content-Type", "application/json")
            .body(body);
        answer(request.send().await.expect("the handler answers")).await
    }

    /// The host's Event Grid webhook: `POST /runtime/webhooks/eventgrid?functionName=NAME`.
    pub async fn eventgrid(
        &self,
        function_name: Option<&str>,
        aeg_event_type: Option<&str>,
        body: Value,
    ) -> Answer {
        let binding = match function_name.and_then(|name| self.app.functions.get(name)) {
            Some(binding) => binding.clone(),
            None => return synthetic(404, json!({"error": "function not found"})),
        };
        assert_eq!(
            binding["type"], "eventGridTrigger",
            "the function is bound to Event Grid"
        );
        match aeg_event_type {
            Some("SubscriptionValidation") => {
                let code = body[0]["data"]["validationCode"].clone();
                synthetic(200, json!({ "validationResponse": code }))
            }
            Some("Notification") => {
                let events = match body {
                    Value::Array(events) => events,
                    single => vec![single],
                };
                let answers =
                    futures_util::future::join_all(events.into_iter().map(|e| self.invoke(e)))
                        .await;
                let ok = answers.iter().all(|a| (200..300).contains(&a.status));
                synthetic(if ok { 202 } else { 500 }, Value::Null)
            }
            Some("Unsubscribe") => synthetic(202, Value::Null),
            _ => synthetic(400, json!({"error": "missing or unknown aeg-event-type"})),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the handler's /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status");
        kib * 1024
    }

    /// Sends SIGTERM, as a scale-in or a deployment does.
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Sends SIGKILL (a crash) without waiting for the process to go.
    pub fn sigkill(&self) {
        self.signal("-KILL");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Kills the process with SIGKILL (a crash).
    pub fn kill9(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn synthetic(status: u16, body: Value) -> Answer {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    Answer {
        status,
        content_type: "application/json".into(),
        text,
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("a readable body");
    Answer {
        status,
        content_type,
        text,
    }
}

fn capture(pipe: Option<impl Read + Send + 'static>, into: Arc<Mutex<String>>) {
    let Some(mut pipe) = pipe else { return };
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("output lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
}

/// An HTTP client for the tests. reqwest is built without a bundled crypto provider (see
/// Cargo.toml), so the test process installs one first, whichever test runs alone.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}
