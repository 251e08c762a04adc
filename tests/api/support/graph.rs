//! A stand-in for Microsoft Graph's `sendMail` over HTTPS (tests/support/graph_server.py).

use super::stand_in::MailStandIn;
use super::{
    FakeAcs, IDENTITY_SECRET, IdentityEndpoint, Received, SmtpServer, acs_settings, mail_settings,
    set,
};
use std::path::PathBuf;

pub struct FakeGraph(MailStandIn);

impl FakeGraph {
    pub fn start() -> Self {
        Self(MailStandIn::start("graph_server.py", &[]))
    }

    /// `GRAPH_ENDPOINT`.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// The CA certificate to trust (`SSL_CERT_FILE`).
    pub fn certificate(&self) -> PathBuf {
        self.0.certificate()
    }

    /// From now on, answer every send with `answer` (`403`, `429`, `500`, `hang`; `202` to
    /// accept again).
    pub fn answer(&self, answer: &str) {
        self.0.answer(answer);
    }

    /// From now on, list `applications` (Graph's application objects, with their
    /// `passwordCredentials` and `keyCredentials`) at `/v1.0/applications`, two a page.
    pub fn set_applications(&self, applications: &serde_json::Value) {
        let file = self.0.out().join("applications.json");
        std::fs::write(file, applications.to_string()).expect("write applications");
    }

    /// From now on, list `principals` (Graph's service principal objects) at
    /// `/v1.0/servicePrincipals`, unfiltered, two a page.
    pub fn set_service_principals(&self, principals: &serde_json::Value) {
        let file = self.0.out().join("servicePrincipals.json");
        std::fs::write(file, principals.to_string()).expect("write service principals");
    }

    /// From now on, answer `/v1.0/{applications|servicePrincipals}/{id}/owners` with the list
    /// `owners` holds under `id`.
    pub fn set_owners(&self, owners: &serde_json::Value) {
        let file = self.0.out().join("owners.json");
        std::fs::write(file, owners.to_string()).expect("write owners");
    }

    /// From now on, answer `/v1.0/directoryObjects/{id}` with the object `objects` holds under
    /// `id` (404 for another id).
    pub fn set_directory_objects(&self, objects: &serde_json::Value) {
        let file = self.0.out().join("directoryObjects.json");
        std::fs::write(file, objects.to_string()).expect("write directory objects");
    }

    /// From now on, give user owners as ids alone, as Graph does to an identity without
    /// `User.Read.All`.
    pub fn hide_user_owners(&self) {
        std::fs::write(self.0.out().join("owners.idonly"), "").expect("write");
    }

    /// From now on, give user owners whole again.
    pub fn show_user_owners(&self) {
        std::fs::remove_file(self.0.out().join("owners.idonly")).expect("remove");
    }

    /// Answers the next `n` reads 429 with `Retry-After: 1`.
    pub fn throttle(&self, n: usize) {
        std::fs::write(self.0.out().join("throttle"), n.to_string()).expect("write");
    }

    /// Answers the next `n` requests inside JSON batches 429 with `Retry-After: 1`.
    pub fn throttle_batched(&self, n: usize) {
        std::fs::write(self.0.out().join("throttle_batched"), n.to_string()).expect("write");
    }

    /// From now on, refuse `/v1.0/applications` with 403 `Authorization_RequestDenied`.
    pub fn refuse_applications(&self) {
        std::fs::write(self.0.out().join("applications.answer"), "403\n").expect("write");
    }

    /// From now on, list the applications again.
    pub fn admit_applications(&self) {
        std::fs::remove_file(self.0.out().join("applications.answer")).expect("remove");
    }

    /// The mails accepted: the mailbox each was sent as, and the message.
    pub fn accepted(&self) -> Vec<(String, Received)> {
        let out = self.0.out();
        (0..)
            .map_while(|n| {
                let mime = std::fs::read(out.join(format!("{n}.eml"))).ok()?;
                let sender = std::fs::read_to_string(out.join(format!("{n}.sender"))).ok()?;
                Some((sender, Received { raw: mime }))
            })
            .collect()
    }

    /// Every request's line (`GET /v1.0/applications…`, or a send's path), in order.
    pub fn request_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.0.out().join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many sends were asked for, accepted or not.
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(self.0.out().join("requests.log"))
            .map_or(0, |log| log.lines().count())
    }
}

/// Where a test's mail goes: a real SMTP server, or the Graph or ACS stand-in with tokens from
/// the managed-identity stand-in. The same mail tests run over all three.
pub enum MailSink {
    Smtp(SmtpServer),
    Graph(FakeGraph, IdentityEndpoint),
    Acs(FakeAcs, IdentityEndpoint),
}

impl MailSink {
    pub fn smtp() -> Self {
        Self::Smtp(SmtpServer::start())
    }

    pub fn graph() -> Self {
        Self::Graph(FakeGraph::start(), IdentityEndpoint::start())
    }

    pub fn acs() -> Self {
        Self::Acs(FakeAcs::start(), IdentityEndpoint::start())
    }

    /// [`mail_settings`], sending through this sink.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Smtp(smtp) => mail_settings(&smtp.url()),
            Self::Graph(graph, identity) => graph_settings(graph, identity),
            Self::Acs(acs, identity) => acs_settings(acs, identity),
        }
    }

    /// The mails received, in order.
    pub fn messages(&self) -> Vec<Received> {
        match self {
            Self::Smtp(smtp) => smtp.messages(),
            Self::Graph(graph, _) => graph.accepted().into_iter().map(|(_, m)| m).collect(),
            Self::Acs(acs, _) => acs.accepted(),
        }
    }
}

/// [`mail_settings`], the mail sent through `graph` with tokens from `identity`.
pub fn graph_settings(
    graph: &FakeGraph,
    identity: &IdentityEndpoint,
) -> Vec<(&'static str, String)> {
    let mut settings = mail_settings("unused");
    settings.retain(|(name, _)| *name != "SMTP_URL");
    set(&mut settings, "GRAPH_SENDER", "alerts@contoso.com");
    set(&mut settings, "GRAPH_ENDPOINT", &graph.url());
    set(&mut settings, "IDENTITY_ENDPOINT", &identity.url());
    set(&mut settings, "IDENTITY_HEADER", IDENTITY_SECRET);
    let certificate = graph.certificate();
    set(
        &mut settings,
        "SSL_CERT_FILE",
        &certificate.to_string_lossy(),
    );
    settings
}

/// Runs each named `async fn(MailSink)` as three tests: `over_smtp::name`, `over_graph::name`
/// and `over_acs::name`.
macro_rules! over_every_transport {
    ($($name:ident),* $(,)?) => {
        mod over_smtp {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::MailSink::smtp()).await
                }
            )*
        }
        mod over_graph {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::MailSink::graph()).await
                }
            )*
        }
        mod over_acs {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::MailSink::acs()).await
                }
            )*
        }
    };
}

pub(crate) use over_every_transport;
