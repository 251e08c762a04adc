//! A stand-in for Azure Key Vault's data plane over HTTPS, for the black-box tests and the sweep
//! benchmark. Written in Rust on hyper and rustls so that it costs about 0.1 ms of CPU a request,
//! kernel included (a Node one cost 0.55 ms): the benchmark then measures kv-notify, not the
//! stand-in.
//!
//! Serves several vaults on one port, told apart by the Host header (kv-a.vault.localhost, ...):
//! - `GET /{secrets|keys|certificates}?api-version=&maxresults=N[&$skiptoken=K]`: pages of items
//!   (id or kid, attributes with epoch-second enabled/exp/nbf/created/updated, tags, managed),
//!   never values; nextLink is absolute and null on the last page.
//! - `GET /{kind}/{name}/versions?...`: pages of an object's versions (ids with the version): the
//!   current one (`version`, default a digest of the name) and any `older` ones.
//! - `GET /certificates/{name}`: the current version's bundle: id with the version, attributes, a
//!   placeholder public `cer` and the policy (AutoRenew or EmailContacts).
//!
//! A vault listed in `listOnly` grants `list` alone, as an access policy can: a certificate's
//! bundle gets 403 (AccessDenied). Like Key Vault, a request without a bearer token gets 401 with
//! the challenge the official clients start with; a token for another resource (its `aud`) gets
//! 401 too. Any other path, in particular a secret's value (`/secrets/{name}[/{version}]`), gets
//! 403 and is logged as a violation.
//!
//! The vaults' contents are read from STATE (JSON, reloaded when it changes):
//! ```text
//! {"vaults": {"kv-a": {"secrets": [{"name", "version", "older", "exp", "nbf", "enabled",
//!                                   "managed", "tags", "created"}],
//!                      "keys": [...], "certificates": [{..., "autoRenew": true}]}},
//!  "deny": {"kv-b": "ForbiddenByRbac"},                      // 403 with that inner error code
//!  "listOnly": ["kv-c"],
//!  "throttle": {"kv-a": {"count": 3, "retryAfter": 1}},      // the next 3 requests get 429
//!  "redirect": {"kv-a": "https://elsewhere/"},              // 307 to that Location
//!  "hostile": {"kv-a": {"pageSize": 2000, "loop": true, "endless": true, "loopVersions": true}}}
//! ```
//! A vault in `hostile` answers as no Key Vault does, for the tests of what kv-notify bears:
//! `pageSize` items a page whatever `maxresults` says; with `loop`, every page of its three
//! lists has a nextLink back to that page; with `endless`, those lists never end: past the last
//! object they start again, each round's names suffixed `-1`, `-2`, ... (objects no vault
//! holds); with `loopVersions`, every page of an object's versions leads back to itself.
//! The host management.localhost stands in for Azure Resource Manager (tokens for
//! `https://management.localhost:PORT`):
//! `GET /subscriptions/{id}/providers/Microsoft.KeyVault/vaults?api-version=…` lists the vaults
//! of `subscriptions[id]` (2 a page, nextLink absolute), each with its tags and vaultUri
//! (`https://NAME.vault.localhost:PORT/`); a subscription given as a string gets 403 with that code:
//! `{"subscriptions": {"0000…0001": [{"name": "kv-a", "tags": {…}}], "0000…0002": "AuthorizationFailed"}}`
//! `GET /subscriptions/{id}/providers/Microsoft.EventGrid/systemTopics` lists the topics of
//! `eventGrid[id]`, each the topic of a vault (or, without `vault`, of the subscription itself),
//! and `GET …/systemTopics/{name}/eventSubscriptions` the `properties` of each of its event
//! subscriptions, as given (a string: 403 with that code):
//! `{"eventGrid": {"0000…0001": [{"name": "kv-a-topic", "vault": "kv-a", "subscriptions": [{…}]}]}}`
//! `GET {id}` of a role assignment, a role definition or a vault answers `resources[id]` (any
//! case; a string: 403 with that code; absent: 404), and a listed vault's `properties` add to
//! its listing's:
//! `{"resources": {"/subscriptions/…/roleAssignments/g1": {"properties": {…}}}}`
//!
//! Each request is appended to LOG as `VAULT METHOD PATH STATUS`; the count of TLS connections
//! opened is in LOG.connections, the violations in LOG.violations.
//!
//! usage: vault-stand-in PORT CERT KEY STATE LOG RESOURCE [LATENCY_MS] [LIMIT_PER_10S]

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use rustix::fd::OwnedFd;
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

// As kv-notify: glibc's malloc was the stand-in's largest cost after JSON.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KINDS: [&str; 3] = ["secrets", "keys", "certificates"];
/// Key Vault's largest page.
const MAX_PAGE: usize = 25;
/// Resource Manager's page, small so that tests see its paging.
const ARM_PAGE: usize = 2;
const WINDOW: Duration = Duration::from_secs(10);

/// What the test or benchmark wrote to STATE.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Data {
    vaults: HashMap<String, HashMap<String, Vec<Object>>>,
    deny: HashMap<String, String>,
    list_only: Vec<String>,
    throttle: HashMap<String, Throttle>,
    redirect: HashMap<String, String>,
    subscriptions: HashMap<String, Subscription>,
    hostile: HashMap<String, Hostile>,
    event_grid: HashMap<String, EventGrid>,
    resources: HashMap<String, Value>,
}

/// A subscription's Event Grid system topics, or the error code that refuses them.
#[derive(Deserialize)]
#[serde(untagged)]
enum EventGrid {
    Denied(String),
    Topics(Vec<SystemTopic>),
}

#[derive(Deserialize)]
struct SystemTopic {
    name: String,
    /// The vault it is the topic of; none for the subscription's own topic (Resource Manager's
    /// events).
    #[serde(default)]
    vault: Option<String>,
    /// Its event subscriptions' `properties`.
    #[serde(default)]
    subscriptions: Vec<Value>,
}

/// How a vault in `hostile` misbehaves.
#[derive(Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Hostile {
    page_size: Option<usize>,
    #[serde(rename = "loop")]
    loops: bool,
    endless: bool,
    loop_versions: bool,
}

#[derive(Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Object {
    name: String,
    version: Option<String>,
    older: Vec<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    enabled: Option<bool>,
    managed: bool,
    tags: Map<String, Value>,
    auto_renew: bool,
    created: Option<i64>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Throttle {
    count: u32,
    retry_after: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Subscription {
    Denied(String),
    Vaults(Vec<ArmVault>),
}

#[derive(Deserialize)]
struct ArmVault {
    name: String,
    #[serde(default)]
    tags: Map<String, Value>,
    /// More of its `properties` (network rules, …), beside `vaultUri`.
    #[serde(default)]
    properties: Map<String, Value>,
}

/// The state as last read, and what requests have changed since.
#[derive(Default)]
struct State {
    /// The STATE file last read: its inode, size and modification time. The time alone misses
    /// a rewrite: a new file's time can come from the kernel's coarse clock, which ticks every
    /// few milliseconds, and a test can write the state twice in one tick.
    file: Option<(u64, u64, SystemTime)>,
    data: Data,
    /// Where each object is in `data.vaults`, by vault, kind and name (the first of a name).
    by_name: HashMap<(String, String, String), usize>,
    throttle: HashMap<String, Throttle>,
    windows: HashMap<String, VecDeque<Instant>>,
    audiences: HashMap<String, Option<String>>,
}

struct Server {
    port: u16,
    state_file: PathBuf,
    log: File,
    /// LOG's path: the violations and the connection count go beside it.
    log_file: String,
    resource: String,
    latency: Duration,
    limit: usize,
    state: Mutex<State>,
    connections: AtomicU64,
    alarm: Alarm,
}

/// Wakes tasks at instants, to the microsecond: tokio's timer counts whole milliseconds and
/// makes a 10 ms wait 11 to 12, which would overstate the latency the benchmark says it sets.
/// A timerfd, armed for the earliest instant asked for, wakes the runtime through the same
/// epoll as the sockets (a thread of its own cost a context switch per request).
struct Alarm {
    timer: AsyncFd<OwnedFd>,
    due: Mutex<BTreeMap<(Instant, u64), oneshot::Sender<()>>>,
    sequence: AtomicU64,
}

impl Alarm {
    fn new() -> Self {
        let flags = TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC;
        let timer = timerfd_create(TimerfdClockId::Monotonic, flags).expect("timerfd");
        // Deprecated because an `AsRawFd` type could hand back another descriptor later; an
        // `OwnedFd` cannot. Its replacement, `register`, is `unsafe`, which this crate forbids.
        #[allow(deprecated)]
        let timer = AsyncFd::new(timer).expect("timerfd in the runtime");
        Self {
            timer,
            due: Mutex::new(BTreeMap::new()),
            sequence: AtomicU64::new(0),
        }
    }

    /// Returns at `instant`.
    async fn at(&self, instant: Instant) {
        if instant <= Instant::now() {
            return;
        }
        let (wake, woken) = oneshot::channel();
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let earliest = {
            let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
            due.insert((instant, sequence), wake);
            due.first_key_value()
                .is_some_and(|((first, _), _)| *first == instant)
        };
        if earliest {
            self.arm(instant);
        }
        let _ = woken.await;
    }

    fn arm(&self, instant: Instant) {
        // A zero time would disarm the timer: at least a nanosecond.
        let wait = instant
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let value = Timespec {
            tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let spec = Itimerspec {
            it_interval: zero,
            it_value: value,
        };
        timerfd_settime(self.timer.get_ref(), TimerfdTimerFlags::empty(), &spec).expect("arm");
    }

    /// Wakes what is due whenever the timer fires, and arms it for what comes next.
    async fn run(&self) {
        loop {
            let mut ready = self.timer.readable().await.expect("timerfd");
            let mut expirations = [0u8; 8];
            let _ = rustix::io::read(self.timer.get_ref(), &mut expirations);
            ready.clear_ready();
            let now = Instant::now();
            let next = {
                let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
                while let Some(entry) = due.first_entry().filter(|e| e.key().0 <= now) {
                    let _ = entry.remove().send(());
                }
                due.first_key_value().map(|((at, _), _)| *at)
            };
            if let Some(at) = next {
                self.arm(at);
            }
        }
    }
}

/// A status, a JSON body and perhaps one more header.
type Answer = (StatusCode, String, Option<(HeaderName, String)>);

fn reply(status: StatusCode, body: impl Serialize) -> Answer {
    reply_with(status, body, None)
}

fn reply_with(
    status: StatusCode,
    body: impl Serialize,
    header: Option<(HeaderName, String)>,
) -> Answer {
    (status, serde_json::to_string(&body).expect("JSON"), header)
}

impl Server {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let file = std::fs::metadata(&self.state_file)
            .and_then(|m| Ok((m.ino(), m.len(), m.modified()?)))
            .ok();
        if file.is_some() && state.file != file {
            let text = std::fs::read_to_string(&self.state_file).unwrap_or_default();
            let data: Data = serde_json::from_str(&text).expect("STATE is not valid state JSON");
            state.by_name.clear();
            for (vault, contents) in &data.vaults {
                for (kind, objects) in contents {
                    for (at, object) in objects.iter().enumerate() {
                        let key = (vault.clone(), kind.clone(), object.name.clone());
                        state.by_name.entry(key).or_insert(at);
                    }
                }
            }
            state.throttle = data.throttle.clone();
            state.data = data;
            state.file = file;
        }
        state
    }

    fn violation(&self, line: String) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{}.violations", self.log_file))
            .expect("violations log");
        writeln!(file, "{line}").expect("write violations log");
    }

    fn answer(&self, vault: &str, request: &Request<Incoming>) -> Answer {
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let (path, query) = split_query(target);
        let bearer = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        let mut state = self.state();
        let audience = audience(&mut state.audiences, bearer);
        if vault == "management" {
            if audience.as_deref() != Some(&format!("https://management.localhost:{}", self.port)) {
                let body = error("InvalidAuthenticationToken", "The access token is invalid.");
                return reply(StatusCode::UNAUTHORIZED, body);
            }
            return self.resource_manager(&state.data, path, &query, target);
        }
        if audience.as_deref() != Some(self.resource.as_str()) {
            let challenge = format!(
                "Bearer authorization=\"https://login.microsoftonline.com/tenant\", resource=\"{}\"",
                self.resource
            );
            let body = error(
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
            );
            return reply_with(
                StatusCode::UNAUTHORIZED,
                body,
                Some((WWW_AUTHENTICATE, challenge)),
            );
        }
        if self.limit > 0 && over_limit(&mut state.windows, vault, self.limit) {
            let body = error("Throttled", "Rate limit exceeded");
            return reply(StatusCode::TOO_MANY_REQUESTS, body);
        }
        if let Some(throttle) = state.throttle.get_mut(vault).filter(|t| t.count > 0) {
            throttle.count -= 1;
            let header = throttle.retry_after.map(|s| (RETRY_AFTER, s.to_string()));
            let body = error("Throttled", "Too many requests");
            return reply_with(StatusCode::TOO_MANY_REQUESTS, body, header);
        }
        let data = &state.data;
        if let Some(location) = data.redirect.get(vault) {
            let header = Some((hyper::header::LOCATION, location.clone()));
            return reply_with(
                StatusCode::TEMPORARY_REDIRECT,
                error("Moved", "elsewhere"),
                header,
            );
        }
        if let Some(code) = data.deny.get(vault) {
            let message = format!("Caller is not authorized ({code})");
            let body = error_with("Forbidden", &message, code);
            return reply(StatusCode::FORBIDDEN, body);
        }
        let Some(contents) = data.vaults.get(vault) else {
            let body = error("VaultNotFound", "no such vault");
            return reply(StatusCode::NOT_FOUND, body);
        };
        let parts: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode)
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let objects = |kind: &str| contents.get(kind).map_or(&[][..], Vec::as_slice);
        let find = |kind: &str, name: &str| {
            let key = (vault.to_owned(), kind.to_owned(), name.to_owned());
            state.by_name.get(&key).map(|at| &objects(kind)[*at])
        };
        let base = format!("https://{vault}.vault.localhost:{}", self.port);
        let hostile = data.hostile.get(vault).cloned().unwrap_or_default();
        match parts[..] {
            [kind] if KINDS.contains(&kind) => {
                let list = List {
                    base: &base,
                    kind,
                    path: kind,
                    with_version: false,
                    hostile: &hostile,
                };
                reply(StatusCode::OK, list.page(objects(kind), &query, target))
            }
            [kind, name, "versions"] if KINDS.contains(&kind) => match find(kind, name) {
                Some(object) => {
                    let all = versions(object);
                    let path = format!("{kind}/{name}/versions");
                    let hostile = Hostile {
                        page_size: hostile.page_size,
                        loops: hostile.loop_versions,
                        ..Hostile::default()
                    };
                    let list = List {
                        base: &base,
                        kind,
                        path: &path,
                        with_version: true,
                        hostile: &hostile,
                    };
                    reply(StatusCode::OK, list.page(&all, &query, target))
                }
                None => reply(StatusCode::NOT_FOUND, error("NotFound", "no such object")),
            },
            ["certificates", name] => {
                if data.list_only.iter().any(|v| v == vault) {
                    let message = format!(
                        "The caller does not have certificates get permission on key vault '{vault}'"
                    );
                    let body = error_with("Forbidden", &message, "AccessDenied");
                    return reply(StatusCode::FORBIDDEN, body);
                }
                let Some(certificate) = find("certificates", name) else {
                    let body = error("CertificateNotFound", "no such certificate");
                    return reply(StatusCode::NOT_FOUND, body);
                };
                let action = if certificate.auto_renew {
                    "AutoRenew"
                } else {
                    "EmailContacts"
                };
                let bundle = Bundle {
                    item: item(&base, "certificates", certificate, &certificate.name, true),
                    cer: "MIIBszCCAVmgAwIBAgIU",
                    policy: json!({
                        "id": format!("{base}/certificates/{name}/policy"),
                        "issuer": {"name": "Self"},
                        "lifetime_actions": [{"trigger": {"lifetime_percentage": 80},
                                              "action": {"action_type": action}}],
                    }),
                };
                reply(StatusCode::OK, bundle)
            }
            _ => {
                drop(state);
                self.violation(format!("{vault} {} {target}", request.method()));
                let body = error("Forbidden", "not served by the test vault");
                reply(StatusCode::FORBIDDEN, body)
            }
        }
    }

    fn resource_manager(
        &self,
        data: &Data,
        path: &str,
        query: &HashMap<String, String>,
        target: &str,
    ) -> Answer {
        if let Some(answer) = self.event_grid(data, path, query) {
            return answer;
        }
        if let Some(answer) = resource(data, path, query) {
            return answer;
        }
        let id = path
            .strip_prefix("/subscriptions/")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(_, rest)| rest.eq_ignore_ascii_case("providers/Microsoft.KeyVault/vaults"))
            .map(|(id, _)| id)
            .filter(|id| !id.is_empty() && query.contains_key("api-version"));
        let Some(id) = id else {
            self.violation(format!("management GET {target}"));
            let body = error(
                "InvalidResourceType",
                "not served by the test Resource Manager",
            );
            return reply(StatusCode::NOT_FOUND, body);
        };
        match data.subscriptions.get(id) {
            None => {
                let message = format!("The subscription '{id}' could not be found.");
                let body = error("SubscriptionNotFound", &message);
                reply(StatusCode::NOT_FOUND, body)
            }
            Some(Subscription::Denied(code)) => {
                let message = format!(
                    "The client does not have authorization to perform action \
                     'Microsoft.KeyVault/vaults/read' over scope '/subscriptions/{id}'."
                );
                reply(StatusCode::FORBIDDEN, error(code, &message))
            }
            Some(Subscription::Vaults(vaults)) => {
                let start: usize = query
                    .get("$skipToken")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let value: Vec<Value> = vaults
                    .iter()
                    .skip(start)
                    .take(ARM_PAGE)
                    .map(|v| {
                        json!({
                            "id": format!("/subscriptions/{id}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/{}", v.name),
                            "name": v.name,
                            "type": "Microsoft.KeyVault/vaults",
                            "location": "westeurope",
                            "tags": v.tags,
                            "properties": {
                                "vaultUri": format!("https://{}.vault.localhost:{}/", v.name, self.port),
                                "tenantId": "tenant",
                                "enableRbacAuthorization": true,
                            },
                        })
                    })
                    .map(|mut listed: Value| {
                        let extra = v_properties(vaults, &listed["name"]);
                        let properties = listed["properties"].as_object_mut().expect("an object");
                        properties.extend(extra);
                        listed
                    })
                    .collect();
                let mut body = json!({ "value": value });
                if start + ARM_PAGE < vaults.len() {
                    body["nextLink"] = json!(format!(
                        "https://management.localhost:{}{path}?api-version=2023-07-01&$skipToken={}",
                        self.port,
                        start + ARM_PAGE
                    ));
                }
                reply(StatusCode::OK, body)
            }
        }
    }

    /// Event Grid's system topics of a subscription, and a topic's event subscriptions; `None`
    /// for another path.
    fn event_grid(
        &self,
        data: &Data,
        path: &str,
        query: &HashMap<String, String>,
    ) -> Option<Answer> {
        if !query.contains_key("api-version") {
            return None;
        }
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (id, topic) = match parts.as_slice() {
            ["subscriptions", id, "providers", provider, "systemTopics"]
                if provider.eq_ignore_ascii_case("Microsoft.EventGrid") =>
            {
                (*id, None)
            }
            [
                "subscriptions",
                id,
                "resourceGroups",
                _,
                "providers",
                provider,
                "systemTopics",
                name,
                "eventSubscriptions",
            ] if provider.eq_ignore_ascii_case("Microsoft.EventGrid") => (*id, Some(*name)),
            _ => return None,
        };
        let topics = match data.event_grid.get(id) {
            None => &Vec::new(),
            Some(EventGrid::Denied(code)) => {
                let message = format!(
                    "The client does not have authorization to perform action \
                     'Microsoft.EventGrid/systemTopics/read' over scope '/subscriptions/{id}'."
                );
                return Some(reply(StatusCode::FORBIDDEN, error(code, &message)));
            }
            Some(EventGrid::Topics(topics)) => topics,
        };
        let topic_id = |name: &str| {
            format!(
                "/subscriptions/{id}/resourceGroups/rg/providers/Microsoft.EventGrid/systemTopics/{name}"
            )
        };
        let value: Vec<Value> = match topic {
            None => topics
                .iter()
                .map(|t| {
                    let (source, topic_type) = match &t.vault {
                        Some(vault) => (
                            format!("/subscriptions/{id}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/{vault}"),
                            "Microsoft.KeyVault.vaults",
                        ),
                        None => (format!("/subscriptions/{id}"), "Microsoft.Resources.Subscriptions"),
                    };
                    json!({
                        "id": topic_id(&t.name),
                        "name": t.name,
                        "type": "Microsoft.EventGrid/systemTopics",
                        "properties": {"source": source, "topicType": topic_type},
                    })
                })
                .collect(),
            Some(name) => {
                let Some(found) = topics.iter().find(|t| t.name.eq_ignore_ascii_case(name)) else {
                    return Some(reply(StatusCode::NOT_FOUND, error("ResourceNotFound", name)));
                };
                found
                    .subscriptions
                    .iter()
                    .enumerate()
                    .map(|(n, properties)| {
                        json!({
                            "id": format!("{}/eventSubscriptions/sub-{n}", topic_id(&found.name)),
                            "name": format!("sub-{n}"),
                            "properties": properties,
                        })
                    })
                    .collect()
            }
        };
        Some(reply(StatusCode::OK, json!({ "value": value })))
    }

    async fn respond(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let host = request
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let host = host.split(':').next().unwrap_or_default();
        let vault = host
            .strip_suffix(".vault.localhost")
            .or_else(|| host.strip_suffix(".localhost"))
            .unwrap_or(host)
            .to_owned();
        let ready_at = Instant::now() + self.latency;
        let (status, body, header) = self.answer(&vault, &request);
        self.alarm.at(ready_at).await;
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let line = format!(
            "{vault} {} {target} {}\n",
            request.method(),
            status.as_u16()
        );
        (&self.log).write_all(line.as_bytes()).expect("write log");
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        let json = HeaderValue::from_static("application/json; charset=utf-8");
        headers.insert(CONTENT_TYPE, json);
        if let Some((name, value)) = header {
            headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
        }
        response
    }
}

/// A resource of `resources` read by its id (any case), as Resource Manager's `GET {id}`: the
/// value as given, or, for a string, 403 with that code; 404 for an id not there. `None` for a
/// path that is not a resource id of `resources`' kinds.
fn resource(data: &Data, path: &str, query: &HashMap<String, String>) -> Option<Answer> {
    let lower = path.to_ascii_lowercase();
    let kinds = [
        "/providers/microsoft.authorization/roleassignments/",
        "/providers/microsoft.authorization/roledefinitions/",
    ];
    let a_vault = lower.contains("/providers/microsoft.keyvault/vaults/")
        && !lower.ends_with("/providers/microsoft.keyvault/vaults");
    if !(kinds.iter().any(|k| lower.contains(k)) || a_vault) || !query.contains_key("api-version") {
        return None;
    }
    let found = data
        .resources
        .iter()
        .find(|(id, _)| id.to_ascii_lowercase() == lower);
    Some(match found {
        Some((_, Value::String(code))) => {
            let message = format!(
                "The client does not have authorization to perform action over scope '{path}'."
            );
            reply(StatusCode::FORBIDDEN, error(code, &message))
        }
        Some((id, value)) => {
            let mut body = value.clone();
            body["id"] = json!(id);
            reply(StatusCode::OK, body)
        }
        None => {
            let message = format!("The resource '{path}' was not found.");
            reply(StatusCode::NOT_FOUND, error("ResourceNotFound", &message))
        }
    })
}

/// The extra `properties` the state gives the vault `name` of a subscription's listing.
fn v_properties(vaults: &[ArmVault], name: &Value) -> Map<String, Value> {
    vaults
        .iter()
        .find(|v| Some(v.name.as_str()) == name.as_str())
        .map(|v| v.properties.clone())
        .unwrap_or_default()
}

fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The path, and the query's parameters decoded.
fn split_query(target: &str) -> (&str, HashMap<String, String>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    (path, params)
}

/// A bearer token's audience, decoded once per token (a sweep sends the same one thousands of
/// times).
fn audience(cache: &mut HashMap<String, Option<String>>, header: Option<&str>) -> Option<String> {
    let token = header?.strip_prefix("Bearer ")?;
    cache
        .entry(token.to_owned())
        .or_insert_with(|| {
            let claims = token.split('.').nth(1)?;
            let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims.trim_end_matches('='))
                .ok()?;
            let claims: Value = serde_json::from_slice(&claims).ok()?;
            claims.get("aud")?.as_str().map(str::to_owned)
        })
        .clone()
}

fn over_limit(windows: &mut HashMap<String, VecDeque<Instant>>, vault: &str, limit: usize) -> bool {
    let now = Instant::now();
    let window = windows.entry(vault.to_owned()).or_default();
    while window.front().is_some_and(|t| now - *t > WINDOW) {
        window.pop_front();
    }
    if window.len() >= limit {
        return true;
    }
    window.push_back(now);
    false
}

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

/// An error with an inner code, as Key Vault gives the cause of a 403 (`ForbiddenByRbac`).
fn error_with(code: &str, message: &str, inner: &str) -> Value {
    let mut body = error(code, message);
    body["error"]["innererror"] = json!({ "code": inner });
    body
}

/// The object's current version: its `version`, or a digest of its name.
fn version_of(object: &Object) -> String {
    object.version.clone().unwrap_or_else(|| {
        let digest = Sha256::digest(object.name.as_bytes());
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// Older versions first, then the current one.
fn versions(object: &Object) -> Vec<Object> {
    let older = object
        .older
        .iter()
        .zip(1_600_000_000..)
        .map(|(v, created)| Object {
            name: object.name.clone(),
            version: Some(v.clone()),
            created: Some(created),
            ..Object::default()
        });
    let current = Object {
        version: Some(version_of(object)),
        ..object.clone()
    };
    older.chain([current]).collect()
}

/// An item of a list, as Key Vault lists it (never a value).
#[derive(Serialize)]
struct Item<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// Keys name their id `kid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    attributes: Attributes,
    tags: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    managed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5t: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Attributes {
    enabled: bool,
    created: i64,
    updated: i64,
    recovery_level: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

/// A certificate's current version with its policy.
#[derive(Serialize)]
struct Bundle<'a> {
    #[serde(flatten)]
    item: Item<'a>,
    cer: &'static str,
    policy: Value,
}

#[derive(Serialize)]
struct Page<'a> {
    value: Vec<Item<'a>>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

/// An object as a list shows it, under `name` (its own, or an endless list's round of it).
fn item<'a>(
    base: &str,
    kind: &str,
    object: &'a Object,
    name: &str,
    with_version: bool,
) -> Item<'a> {
    let mut url = format!("{base}/{kind}/{name}");
    if with_version {
        url = format!("{url}/{}", version_of(object));
    }
    let created = object.created.unwrap_or(1_700_000_000);
    let (id, kid) = if kind == "keys" {
        (None, Some(url))
    } else {
        (Some(url), None)
    };
    Item {
        id,
        kid,
        attributes: Attributes {
            enabled: object.enabled != Some(false),
            created,
            updated: created,
            recovery_level: "Recoverable+Purgeable",
            exp: object.exp,
            nbf: object.nbf,
        },
        tags: &object.tags,
        managed: object.managed,
        x5t: (kind == "certificates").then_some("fLi3U52HunIVNXubkEnf8tP6Wbo"),
    }
}

/// One of a vault's paged lists.
struct List<'a> {
    base: &'a str,
    kind: &'a str,
    /// The list's path, for its nextLinks.
    path: &'a str,
    with_version: bool,
    hostile: &'a Hostile,
}

impl List<'_> {
    /// The page of `objects` the query asks for (`$skiptoken` is where it starts).
    fn page<'o>(
        &self,
        objects: &'o [Object],
        query: &HashMap<String, String>,
        target: &str,
    ) -> Page<'o> {
        let number = |name: &str| query.get(name).and_then(|s| s.parse::<usize>().ok());
        let asked = number("maxresults").unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let size = self.hostile.page_size.unwrap_or(asked);
        let start = number("$skiptoken").unwrap_or(0);
        let end = match self.hostile.endless {
            true if !objects.is_empty() => start + size,
            _ => objects.len().min(start + size),
        };
        let value = (start..end)
            .map(|at| {
                let (object, round) = (&objects[at % objects.len()], at / objects.len());
                let name = match round {
                    0 => object.name.clone(),
                    n => format!("{}-{n}", object.name),
                };
                item(self.base, self.kind, object, &name, self.with_version)
            })
            .collect();
        let (base, path) = (self.base, self.path);
        let next_link = if self.hostile.loops {
            Some(format!("{base}{target}"))
        } else if end < objects.len() || (self.hostile.endless && !objects.is_empty()) {
            Some(format!(
                "{base}/{path}?api-version=7.5&$skiptoken={end}&maxresults={asked}"
            ))
        } else {
            None
        };
        Page { value, next_link }
    }
}

fn tls_config(cert: &str, key: &str) -> rustls::ServerConfig {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("CERT")
        .collect::<Result<_, _>>()
        .expect("CERT");
    let key = PrivateKeyDer::from_pem_file(key).expect("KEY");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, cert, key, state, log, resource, rest @ ..] = &args[..] else {
        eprintln!(
            "usage: vault-stand-in PORT CERT KEY STATE LOG RESOURCE [LATENCY_MS] [LIMIT_PER_10S]"
        );
        std::process::exit(2);
    };
    let number = |i: usize| rest.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let server = Arc::new(Server {
        port: port.parse().expect("PORT"),
        state_file: state.into(),
        log: OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("LOG"),
        log_file: log.clone(),
        resource: resource.clone(),
        latency: Duration::from_millis(number(0)),
        limit: usize::try_from(number(1)).expect("LIMIT"),
        state: Mutex::new(State::default()),
        connections: AtomicU64::new(0),
        alarm: Alarm::new(),
    });
    let alarm = server.clone();
    tokio::spawn(async move { alarm.alarm.run().await });
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(cert, key)));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", server.port))
        .await
        .expect("bind");
    println!("ready");
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, server) = (acceptor.clone(), server.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let opened = server.connections.fetch_add(1, Ordering::Relaxed) + 1;
            let counter = format!("{}.connections", server.log_file);
            let _ = std::fs::write(counter, opened.to_string());
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.respond(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
