//! Everything the handler needs to know, validated together at start-up: settings, routing
//! rules and mail templates. `kv-notify check` and the server share this one path, so the
//! handler refuses to start on exactly what `check` rejects.

use crate::alert::Alert;
use crate::event::{EventType, KeyVaultEvent, ObjectKind};
use crate::mail::Composer;
use crate::rules::Routing;
use crate::settings::Settings;
use chrono::Utc;
use std::fmt;

/// Validated configuration.
pub struct Config {
    /// App settings.
    pub settings: Settings,
    /// Who hears about what.
    pub routing: Routing,
    /// The mail templates.
    pub composer: Composer,
}

/// Every problem found, in settings, rules and templates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Loads and validates everything through `get` (an environment lookup), reporting every
    /// problem at once.
    pub fn load(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Invalid settings fall back to defaults here, so that the rules and templates are
        // still checked and one run lists every problem.
        let (settings, mut problems) = Settings::parse(&get);
        let routing = match &settings.rules_file {
            Some(path) if path.is_file() => Routing::load(path, &settings)
                .map_err(|e| problems.extend(e))
                .ok(),
            Some(_) => None,
            None => Some(Routing::defaults(&settings)),
        };
        let composer = composer(&settings, &mut problems);
        match (routing, composer) {
            (Some(routing), Some(composer)) if problems.is_empty() => Ok(Self {
                settings,
                routing,
                composer,
            }),
            _ => Err(ConfigError(problems)),
        }
    }

    /// Start-up warnings: settings that work, but probably not as intended.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.settings.warnings();
        // OWNER_EMAILS is the fallback of the [[owners]] entries: empty, it matters only when
        // some object can fall through them.
        if self.settings.owners.is_empty() && self.routing.catch_all_owner().is_none() {
            warnings.push(if self.routing.has_owner_entries() {
                "OWNER_EMAILS is empty: mails for objects that no [[owners]] entry matches will be skipped".to_owned()
            } else {
                "OWNER_EMAILS is empty: expiry mails will be skipped".to_owned()
            });
        }
        warnings
    }
}

/// Loads the templates and renders every kind of alert once, so that a template error (such
/// as a misspelt variable) stops start-up instead of an alert.
fn composer(settings: &Settings, problems: &mut Vec<String>) -> Option<Composer> {
    let dir = settings.templates_dir.as_deref().filter(|d| d.is_dir());
    let composer = Composer::load(dir).map_err(|e| problems.extend(e)).ok()?;
    let now = Utc::now();
    // One event type per kind of alert: the templates see the same variables for the rest.
    let kinds = [
        EventType::NearExpiry(ObjectKind::Secret),
        EventType::Expired(ObjectKind::Key),
        EventType::NewVersionCreated(ObjectKind::Certificate),
        EventType::VaultAccessPolicyChanged,
    ];
    for event_type in kinds {
        let alert = Alert::new(&KeyVaultEvent::example(event_type, now), now);
        if let Err(err) = composer.render(&alert) {
            problems.push(format!(
                "TEMPLATES_DIR: rendering a {event_type} mail fails: {err}"
            ));
            return None;
        }
    }
    Some(composer)
}
