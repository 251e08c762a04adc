//! A stand-in for the platform's managed-identity endpoint (tests/support/identity_server.py).

use super::free_port;
use super::stand_in::started;
use std::path::Path;
use std::process::{Child, Command};

/// The secret the platform puts in `IDENTITY_HEADER`.
pub const IDENTITY_SECRET: &str = "identity-header-secret";

pub struct IdentityEndpoint {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl IdentityEndpoint {
    pub fn start() -> Self {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/identity_server.py"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = started(
            Command::new("python3")
                .arg(script)
                .arg(port.to_string())
                .arg(IDENTITY_SECRET)
                .arg(dir.path().join("count")),
            "the identity endpoint",
            "python3",
        );
        Self { child, port, dir }
    }

    /// `IDENTITY_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// Tokens from now on live `seconds` (kv-notify renews one five minutes before its end).
    pub fn token_lifetime(&self, seconds: u64) {
        std::fs::write(self.dir.path().join("lifetime"), seconds.to_string())
            .expect("write the lifetime");
    }

    /// Every request waits `spell` from now before it is answered.
    pub fn hang_for(&self, spell: std::time::Duration) {
        let until = std::time::SystemTime::now() + spell;
        let at = until
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        std::fs::write(self.dir.path().join("hang-until"), at.to_string()).expect("write the hang");
    }

    /// How many token requests it has answered (or refused).
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("count")).map_or(0, |c| c.len())
    }

    /// How many tokens it has given for a resource that starts with `origin`.
    pub fn tokens_for(&self, origin: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("resources"))
            .unwrap_or_default()
            .lines()
            .filter(|resource| resource.starts_with(origin))
            .count()
    }
}

impl Drop for IdentityEndpoint {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A folder holding an `az` that answers like the Azure CLI (tests/support/fake_az.py).
pub fn fake_azure_cli() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/fake_az.py");
    let az = dir.path().join("az");
    std::fs::write(
        &az,
        format!("#!/bin/sh\nexec python3 {script} \"$(dirname \"$0\")\" \"$@\"\n"),
    )
    .expect("write");
    let mut permissions = std::fs::metadata(&az).expect("az").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&az, permissions).expect("chmod");
    dir
}

/// `settings` as on a developer's machine logged in with `az` (the folder of
/// [`fake_azure_cli`]): no managed identity, and that `az` first on `PATH`.
pub fn as_azure_cli_login(settings: &mut Vec<(&'static str, String)>, az: &Path) {
    settings.retain(|(name, _)| !name.starts_with("IDENTITY_"));
    let path = format!(
        "{}:{}",
        az.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    super::set(settings, "PATH", &path);
}
