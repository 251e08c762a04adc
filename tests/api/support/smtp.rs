//! A real SMTP server process (aiosmtpd, via tests/support/smtp_server.py) whose received
//! messages the tests read back from its Maildir.

use super::free_port;
use mailparse::{MailHeaderMap, ParsedMail};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "the test SMTP server needs Python 3 with aiosmtpd: \
     run `python3 -m pip install aiosmtpd` (scripts/test does it for you)";

/// A running SMTP server; stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    maildir: tempfile::TempDir,
    child: Child,
}

/// Ways to make the server misbehave.
#[derive(Default, Clone)]
pub struct SmtpOptions {
    pub reject_rcpt: Vec<String>,
    pub tempfail_rcpt: Vec<String>,
    pub tempfail_data: bool,
    /// Per connection: store the first message, answer its end of data this late.
    pub slow_first_data: Option<Duration>,
    /// Per connection: refuse every message after the first with 550, storing nothing.
    pub refuse_reused: bool,
    /// Every message: store it, answer its end of data this late.
    pub slow_data: Option<Duration>,
    /// Require an XOAUTH2 login with a token for this audience.
    pub xoauth2: Option<String>,
}

impl SmtpServer {
    /// The XOAUTH2 logins it accepted or refused: "<user> <token audience>".
    pub fn logins(&self) -> Vec<String> {
        std::fs::read_to_string(self.maildir.path().join("logins.log"))
            .map(|log| log.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    pub fn start() -> Self {
        Self::start_with(SmtpOptions::default())
    }

    pub fn start_with(options: SmtpOptions) -> Self {
        Self::start_on(free_port(), options)
    }

    /// Starts on a given port (to bring a server back where the handler expects it).
    pub fn start_on(port: u16, options: SmtpOptions) -> Self {
        let maildir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(port.to_string())
            .arg(maildir.path());
        for address in &options.reject_rcpt {
            command.arg("--reject-rcpt").arg(address);
        }
        for address in &options.tempfail_rcpt {
            command.arg("--tempfail-rcpt").arg(address);
        }
        if options.tempfail_data {
            command.arg("--tempfail-data");
        }
        if let Some(delay) = options.slow_first_data {
            command
                .arg("--slow-first-data")
                .arg(delay.as_secs_f64().to_string());
        }
        if let Some(delay) = options.slow_data {
            command
                .arg("--slow-data")
                .arg(delay.as_secs_f64().to_string());
        }
        if options.refuse_reused {
            command.arg("--refuse-reused");
        }
        if let Some(audience) = &options.xoauth2 {
            command.arg("--xoauth2").arg(audience);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {INSTALL_HINT}"));
        let mut server = Self {
            port,
            maildir,
            child,
        };
        server.wait_until_listening();
        server
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    std::io::Read::read_to_string(&mut pipe, &mut stderr).ok();
                }
                panic!("the SMTP server exited ({status}): {stderr}\n{INSTALL_HINT}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the SMTP server did not listen on port {} within 15 s",
            self.port
        );
    }

    /// The URL the handler uses to reach this server.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        let dir = self.maildir.path().join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| Received::new(std::fs::read(p).expect("readable message")))
            .collect()
    }

    /// The daily health notice among the messages received so far.
    pub fn health_notice(&self) -> Received {
        let messages = self.messages();
        let subjects: Vec<String> = messages.iter().map(Received::subject).collect();
        messages
            .into_iter()
            .find(|m| m.subject().starts_with("Health notice"))
            .unwrap_or_else(|| panic!("no health notice among {subjects:?}"))
    }

    /// When each accepted message was answered 250 (Unix seconds), with its subject, oldest
    /// first.
    pub fn accepted(&self) -> Vec<(f64, String)> {
        let log =
            std::fs::read_to_string(self.maildir.path().join("accepted.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| {
                let (time, subject) = line.split_once(' ')?;
                Some((time.parse().ok()?, subject.to_owned()))
            })
            .collect()
    }

    /// Stops the server, as an outage would, and returns its port.
    pub fn stop(mut self) -> u16 {
        self.kill();
        self.port
    }

    fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One message as the server stored it.
pub struct Received {
    pub raw: Vec<u8>,
}

impl Received {
    fn new(raw: Vec<u8>) -> Self {
        Self { raw }
    }

    pub fn parsed(&self) -> ParsedMail<'_> {
        mailparse::parse_mail(&self.raw).expect("a parseable message")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed().headers.get_first_value(name)
    }

    pub fn headers_named(&self, name: &str) -> Vec<String> {
        self.parsed().headers.get_all_values(name)
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// Envelope recipients, as the server saw them in RCPT TO.
    pub fn rcpt_to(&self) -> Vec<String> {
        let raw = self.header("X-RcptTo").unwrap_or_default();
        let mut all: Vec<String> = raw
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        all.sort();
        all
    }

    /// The decoded body of the first part with this MIME type.
    pub fn part(&self, mime: &str) -> Option<String> {
        fn find(mail: &ParsedMail<'_>, mime: &str) -> Option<String> {
            if mail.ctype.mimetype == mime {
                return mail.get_body().ok();
            }
            mail.subparts.iter().find_map(|p| find(p, mime))
        }
        find(&self.parsed(), mime)
    }

    pub fn text(&self) -> String {
        self.part("text/plain").expect("a text/plain part")
    }

    pub fn html(&self) -> String {
        self.part("text/html").expect("a text/html part")
    }
}

/// A server that accepts connections and never says a word: a hung SMTP server. Keep the
/// listener alive for as long as the test needs the silence.
pub fn silent_server() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "smtp://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    (listener, url)
}
