//! A stand-in for Azure Communication Services Email over HTTPS (tests/support/acs_server.py).

use super::stand_in::MailStandIn;
use super::{IDENTITY_SECRET, IdentityEndpoint, Received, mail_settings, set};

/// The resource's access key, base64, as its connection string holds it.
pub const ACS_KEY: &str = "dGVzdC1hY2Nlc3Mta2V5LWZvci1rdi1ub3RpZnk=";

pub struct FakeAcs(MailStandIn);

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
        Self(MailStandIn::start("acs_server.py", &[ACS_KEY]))
    }

    /// `ACS_ENDPOINT`.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// From now on, answer every send with `answer` (`400`, `400-sender`, `403`, `429`, `500`,
    /// `hang`, `fail-later`, `stall-operation`; `202` to accept again).
    pub fn answer(&self, answer: &str) {
        self.0.answer(answer);
    }

    /// The mails ACS accepted, as it would send them.
    pub fn accepted(&self) -> Vec<Received> {
        let out = self.0.out();
        (0..)
            .map_while(|n| {
                let raw = std::fs::read(out.join(format!("{n}.eml"))).ok()?;
                Some(Received { raw })
            })
            .collect()
    }

    /// Every POST to `emails:send`, in order.
    pub fn requests(&self) -> Vec<AcsRequest> {
        std::fs::read_to_string(self.0.out().join("requests.log"))
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
    let certificate = acs.0.certificate();
    set(
        &mut settings,
        "SSL_CERT_FILE",
        &certificate.to_string_lossy(),
    );
    settings
}
