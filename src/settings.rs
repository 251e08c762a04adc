//! App settings: read once at start-up from the environment (or `local.settings.json` for the
//! CLI), validated into [`Settings`], so nothing downstream re-checks a raw string.
//!
//! Problems are collected, not raised one by one: [`crate::config::Config`] reports them
//! together with those of the rules and templates.

mod acs;
mod identity;
mod ledger;
mod spelling;
mod sweep;
mod transport;

use crate::delivery::{LEDGER_WRITE_ALLOWANCE, READ_ALLOWANCE};
use crate::ladder::Ladder;
use crate::storage::Account;
use crate::webhook::Webhook;
use ledger::{default_ledger_path, storage_account, table_ledger};
use lettre::Tokio1Executor;
use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use secrecy::{ExposeSecret, SecretString};
pub use spelling::Values;
use std::path::PathBuf;
use std::time::Duration;
pub use sweep::SweepSettings;
pub use transport::{AcsAuth, Identity, MailRoute};

pub mod name;

/// Default bound on one SMTP send.
const DEFAULT_SMTP_TIMEOUT_SECS: f64 = 10.0;

/// Default bound on a whole invocation: well inside the 30 s Event Grid waits before it
/// counts a delivery as failed and sends it again.
const DEFAULT_DEADLINE_SECS: f64 = 20.0;

/// Default bound on one webhook call.
const DEFAULT_WEBHOOK_TIMEOUT_SECS: f64 = 10.0;

/// Longest timeout or deadline accepted: beyond it a setting is a typo, not a wish.
const MAX_TIMEOUT_SECS: f64 = 300.0;

/// Longest ledger retention accepted (ten years).
const MAX_RETENTION_DAYS: f64 = 3650.0;

/// Default ledger retention: longer than Event Grid's 24 h retry window.
const DEFAULT_RETENTION_DAYS: f64 = 7.0;

/// Validated app settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which way mail leaves, with what it needs.
    pub mail: MailRoute,
    /// The sender of every mail.
    pub mail_from: Mailbox,
    /// Default owners of every vault object (`OWNER_EMAILS`).
    pub owners: Vec<Mailbox>,
    /// Security contacts (`SECURITY_EMAILS`).
    pub security: Vec<Mailbox>,
    /// Where mail is written as `.eml` files when no SMTP server is configured.
    pub outbox_dir: PathBuf,
    /// Bound on each SMTP connect and command, and on one whole send.
    pub smtp_timeout: Duration,
    /// Whether SMTP connections are pooled and reused (`SMTP_POOL`, default true).
    pub smtp_pool: bool,
    /// Bound on a whole invocation; actions still running then are reported failed.
    pub deadline: Duration,
    /// The ledger file.
    pub ledger_path: PathBuf,
    /// The shared ledger's account and table, when `LEDGER=table`.
    pub table_ledger: Option<(Account, String)>,
    /// The app's storage account (`AzureWebJobsStorage`, in either form), when it has one: the
    /// queue-triggered function sets aside there what it can never handle, and the health
    /// notice looks at what waits there.
    pub storage: Option<Account>,
    /// Why the app's storage account settings cannot be used, when they cannot: said by
    /// `check`, at start-up and by `requeue` (the ledger reports it itself with `LEDGER=table`).
    pub storage_problem: Option<String>,
    /// The container of that account Event Grid dead-letters to (`DEADLETTER_CONTAINER`).
    pub dead_letters: String,
    /// The function app's name (`WEBSITE_SITE_NAME`, set in Azure): how an Event Grid
    /// subscription names it.
    pub site: Option<String>,
    /// How long ledger entries are kept.
    pub retention: Duration,
    /// An optional webhook that joins the built-in `security` channel (`ALERT_WEBHOOK_URL`).
    pub alert_webhook: Option<Webhook>,
    /// Bound on one webhook call.
    pub webhook_timeout: Duration,
    /// The routing rules file, when there is one.
    pub rules_file: Option<PathBuf>,
    /// Where custom mail templates live, when set.
    pub templates_dir: Option<PathBuf>,
    /// The reminder ladder (`REMINDER_DAYS`), for the sweep and for expiry events.
    pub ladder: Ladder,
    /// The expiry sweep, when `VAULTS` is set.
    pub sweep: Option<SweepSettings>,
    /// Whether the app runs in Azure (`WEBSITE_INSTANCE_ID` is set).
    pub in_azure: bool,
    /// Whether `MAIL_TRANSPORT=outbox` asks for the outbox by name (rather than it being what
    /// is left when no transport is set).
    pub outbox_chosen: bool,
}

impl Settings {
    /// Reads the settings, replacing each invalid one by its default, and returns the
    /// problems found alongside (so that a caller can go on checking other things).
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> (Self, Vec<String>) {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let (mail, mail_from) = mail(&get, &mut problems);
        let owners = parse_mailboxes(name::OWNER_EMAILS, get(name::OWNER_EMAILS), &mut problems);
        let security = parse_mailboxes(
            name::SECURITY_EMAILS,
            get(name::SECURITY_EMAILS),
            &mut problems,
        );
        let limits = Limits::read(&get, &mut problems);
        let alert_webhook = get(name::ALERT_WEBHOOK_URL).and_then(|url| {
            Webhook::parse(&url, None)
                .map_err(|e| {
                    problems.push(format!(
                        "ALERT_WEBHOOK_URL: {e} (the value is not shown: it holds a key)"
                    ))
                })
                .ok()
        });
        let app_root = get(name::FUNCTIONS_APP_ROOT_PATH);
        let storage = storage_account(&get);
        let settings = Self {
            mail,
            mail_from,
            owners,
            security,
            outbox_dir: PathBuf::from(get(name::OUTBOX_DIR).unwrap_or_else(|| "outbox".to_owned())),
            smtp_timeout: limits.smtp_timeout,
            smtp_pool: parse_flag(name::SMTP_POOL, get(name::SMTP_POOL), true, &mut problems),
            deadline: limits.deadline,
            ledger_path: get(name::LEDGER_PATH)
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    let in_azure = get(name::WEBSITE_INSTANCE_ID).is_some();
                    default_ledger_path(in_azure, get(name::HOME), app_root.clone())
                }),
            table_ledger: table_ledger(&get, &mut problems),
            storage: storage.clone().and_then(Result::ok),
            storage_problem: storage.and_then(Result::err),
            dead_letters: dead_letter_container(get(name::DEADLETTER_CONTAINER), &mut problems),
            site: get(name::WEBSITE_SITE_NAME),
            retention: limits.retention,
            alert_webhook,
            webhook_timeout: limits.webhook_timeout,
            rules_file: rules_file(get(name::RULES_FILE), app_root.clone(), &mut problems),
            templates_dir: templates_dir(get(name::TEMPLATES_DIR), app_root, &mut problems),
            ladder: sweep::ladder(&get, &mut problems),
            sweep: sweep::sweep(&get, &mut problems),
            in_azure: get(name::WEBSITE_INSTANCE_ID).is_some(),
            outbox_chosen: get(name::MAIL_TRANSPORT)
                .is_some_and(|t| t.eq_ignore_ascii_case("outbox")),
        };
        (settings, problems)
    }

    /// Where mail goes, in words, without credentials (start-up log and `check`).
    pub fn describe_mail(&self) -> String {
        let settings = self;
        let who = |identity: &Identity| match identity {
            Some(_) => "the app's managed identity",
            None => "the Azure CLI's login",
        };
        match &settings.mail {
            MailRoute::Outbox => format!(".eml files in {}", settings.outbox_dir.display()),
            MailRoute::Smtp { oauth: Some(_), .. } => {
                "SMTP (SMTP_URL), XOAUTH2 with the app's identity".to_owned()
            }
            MailRoute::Smtp { .. } if settings.smtp_pool => {
                "SMTP (SMTP_URL), pooled connections".to_owned()
            }
            MailRoute::Smtp { .. } => "SMTP (SMTP_URL), a connection per mail".to_owned(),
            MailRoute::Graph(graph) => format!(
                "Microsoft Graph, as {} ({})",
                graph.sender,
                who(&graph.identity)
            ),
            MailRoute::Acs(acs) => {
                let auth = match &acs.auth {
                    AcsAuth::Token { identity, .. } => who(identity),
                    AcsAuth::Key(_) => "the resource's access key",
                };
                format!(
                    "Azure Communication Services Email at {}, from {} ({auth})",
                    acs.endpoint, acs.sender
                )
            }
        }
    }

    /// Things worth a warning at start-up: they work, but probably not as the user wants.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if matches!(self.mail, MailRoute::Outbox) {
            warnings.push(format!(
                "no mail transport is set (SMTP_URL, GRAPH_SENDER or ACS_ENDPOINT): mail is \
                 written as .eml files to {}",
                self.outbox_dir.display()
            ));
        }
        if self.security.is_empty() && self.alert_webhook.is_none() {
            warnings
                .push("SECURITY_EMAILS is empty: access policy alerts will be skipped".to_owned());
        }
        // With `LEDGER=table` the same problem stops start-up, said once by the ledger.
        if let (Some(problem), None) = (&self.storage_problem, &self.table_ledger) {
            warnings.push(format!(
                "{problem}: the health notice cannot look at the poison and rejected queues \
                 or the dead letters, and requeue cannot run"
            ));
        }
        warnings
    }
}

/// The mail transport and the sender. Graph sends as its mailbox, ACS as its sender: without a
/// `MAIL_FROM`, the mail is from that address too.
fn mail(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) -> (MailRoute, Mailbox) {
    let smtp_url = get(name::SMTP_URL).map(SecretString::from);
    if let Some(url) = &smtp_url
        && AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret()).is_err()
    {
        problems.push(
            "SMTP_URL is not a valid connection URL: use smtp://user:pass@host:587?tls=required \
             or smtps://user:pass@host:465 (the value is not shown: it may hold a password)"
                .to_owned(),
        );
    }
    let mut mail_from = match get(name::MAIL_FROM) {
        None => default_sender(),
        Some(raw) => parse_mailbox(name::MAIL_FROM, &raw, problems).unwrap_or_else(default_sender),
    };
    let mail = transport::route(get, smtp_url, &mail_from, problems);
    if let Some(sender) = mail.sender()
        && get(name::MAIL_FROM).is_none()
        && let Ok(sender) = sender.parse()
    {
        mail_from = sender;
    }
    (mail, mail_from)
}

/// The time limits: the invocation deadline, each send's timeout, the ledger's retention.
struct Limits {
    deadline: Duration,
    smtp_timeout: Duration,
    webhook_timeout: Duration,
    retention: Duration,
}

impl Limits {
    fn read(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) -> Self {
        let mut number = |setting: &str, bounds: (f64, f64)| {
            parse_number(setting, get(setting), bounds, problems)
        };
        let smtp_timeout = number(
            name::SMTP_TIMEOUT_SECS,
            (DEFAULT_SMTP_TIMEOUT_SECS, MAX_TIMEOUT_SECS),
        );
        let deadline = number(
            name::DEADLINE_SECS,
            (DEFAULT_DEADLINE_SECS, MAX_TIMEOUT_SECS),
        );
        let mut retention_days = number(
            name::LEDGER_RETENTION_DAYS,
            (DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS),
        );
        let webhook_timeout = number(
            name::WEBHOOK_TIMEOUT_SECS,
            (DEFAULT_WEBHOOK_TIMEOUT_SECS, MAX_TIMEOUT_SECS),
        );
        if retention_days < 1.0 {
            problems.push(format!(
                "{}: {retention_days} is less than a day: Event Grid redelivers an event for 24 \
                 hours, and a ledger that forgot it would mail it again",
                name::LEDGER_RETENTION_DAYS
            ));
            retention_days = DEFAULT_RETENTION_DAYS;
        }
        // An action starts only when its timeout and a ledger write fit before the deadline,
        // after what must be read first (READ_ALLOWANCE at least). A timeout left at its
        // default shrinks to fit a short deadline; one set too long for the deadline is a
        // mistake, since no action would ever start.
        let reserved = LEDGER_WRITE_ALLOWANCE.as_secs_f64() + READ_ALLOWANCE.as_secs_f64();
        let room = deadline - reserved;
        let mut fit = |setting: &str, timeout: f64| {
            if timeout <= room {
                timeout
            } else if get(setting).is_none() {
                room.max(0.1)
            } else {
                problems.push(format!(
                    "{}: {deadline} s leaves no time for a send bounded by {setting} \
                     ({timeout} s), its ledger write and the reads before it, so none would \
                     start; make it at least {} s",
                    name::DEADLINE_SECS,
                    timeout + reserved
                ));
                timeout
            }
        };
        Self {
            smtp_timeout: Duration::from_secs_f64(fit(name::SMTP_TIMEOUT_SECS, smtp_timeout)),
            webhook_timeout: Duration::from_secs_f64(fit(
                name::WEBHOOK_TIMEOUT_SECS,
                webhook_timeout,
            )),
            deadline: Duration::from_secs_f64(deadline),
            retention: Duration::from_secs_f64(retention_days * 86_400.0),
        }
    }
}

/// A true-or-false setting (`true`, `1`, `yes`, `on` and their opposites), `default` when unset.
pub(super) fn parse_flag(
    setting: &str,
    raw: Option<String>,
    default: bool,
    problems: &mut Vec<String>,
) -> bool {
    match raw.map(|v| v.to_ascii_lowercase()).as_deref() {
        None => default,
        Some("true" | "1" | "yes" | "on") => true,
        Some("false" | "0" | "no" | "off") => false,
        Some(other) => {
            problems.push(format!("{setting}: {other:?} is not true or false"));
            default
        }
    }
}

/// Adds `mailbox` to a recipient list unless its address is there already. Domains are
/// case-insensitive, and in practice so are local parts: one person must not get two mails for
/// a difference in case.
pub fn add_recipient(list: &mut Vec<Mailbox>, mailbox: Mailbox) {
    let address: &str = mailbox.email.as_ref();
    let known = |m: &Mailbox| AsRef::<str>::as_ref(&m.email).eq_ignore_ascii_case(address);
    if !list.iter().any(known) {
        list.push(mailbox);
    }
}

fn default_sender() -> Mailbox {
    Mailbox::new(
        None,
        "kv-notify@localhost"
            .parse()
            .expect("a valid literal address"),
    )
}

fn parse_mailbox(setting: &str, raw: &str, problems: &mut Vec<String>) -> Option<Mailbox> {
    match raw.parse::<Mailbox>() {
        Ok(mailbox) => Some(mailbox),
        Err(_) => {
            problems.push(format!(
                "{setting}: {raw:?} is not an email address (expected name@example.com or \"Name <name@example.com>\")"
            ));
            None
        }
    }
}

fn parse_mailboxes(setting: &str, raw: Option<String>, problems: &mut Vec<String>) -> Vec<Mailbox> {
    let raw = raw.unwrap_or_default();
    let mut mailboxes: Vec<Mailbox> = Vec::new();
    for entry in raw
        .split([',', ';'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if let Some(mailbox) = parse_mailbox(setting, entry, problems) {
            add_recipient(&mut mailboxes, mailbox);
        }
    }
    mailboxes
}

/// The rules file: `RULES_FILE` when set (it must exist), else `rules.toml` in the app root
/// when present.
fn rules_file(
    setting: Option<String>,
    app_root: Option<String>,
    problems: &mut Vec<String>,
) -> Option<PathBuf> {
    if let Some(path) = setting.map(PathBuf::from) {
        if !path.is_file() {
            problems.push(format!("RULES_FILE: {} does not exist", path.display()));
        }
        return Some(path);
    }
    let root = app_root.map_or_else(PathBuf::new, PathBuf::from);
    Some(root.join("rules.toml")).filter(|p| p.is_file())
}

/// The mail templates' folder: `TEMPLATES_DIR` when set (it must be a folder), else
/// `mail-templates` in the app root when present (where `scripts/package --templates` puts them).
fn templates_dir(
    setting: Option<String>,
    app_root: Option<String>,
    problems: &mut Vec<String>,
) -> Option<PathBuf> {
    if let Some(dir) = setting.map(PathBuf::from) {
        if !dir.is_dir() {
            problems.push(format!(
                "TEMPLATES_DIR: {} is not a directory",
                dir.display()
            ));
        }
        return Some(dir);
    }
    let root = app_root.map_or_else(PathBuf::new, PathBuf::from);
    Some(root.join("mail-templates")).filter(|p| p.is_dir())
}

/// Parses a positive number up to `max`, or returns `default` when unset.
fn parse_number(
    setting: &str,
    raw: Option<String>,
    (default, max): (f64, f64),
    problems: &mut Vec<String>,
) -> f64 {
    let Some(raw) = raw else { return default };
    match raw.parse::<f64>() {
        Ok(n) if n > 0.0 && n <= max => n,
        _ => {
            problems.push(format!(
                "{setting}: {raw:?} is not a number above 0 and at most {max}"
            ));
            default
        }
    }
}

/// `DEADLETTER_CONTAINER`: a blob container name (3 to 63 lower-case letters, digits and single
/// hyphens, a letter or digit at each end).
fn dead_letter_container(raw: Option<String>, problems: &mut Vec<String>) -> String {
    const DEFAULT: &str = "kv-notify-deadletter";
    let Some(name) = raw.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else {
        return DEFAULT.to_owned();
    };
    let valid = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !valid {
        problems.push(format!(
            "DEADLETTER_CONTAINER: {name:?} is not a blob container name (3 to 63 lower-case \
             letters, digits and single hyphens)"
        ));
        return DEFAULT.to_owned();
    }
    name
}

#[cfg(test)]
mod tests;
