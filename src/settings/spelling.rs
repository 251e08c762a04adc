//! The app settings as read, and the names among them kv-notify does not know: a misspelt
//! setting (`REMINDER_DAY`, `SMTP_URI`) is otherwise a setting silently not set.
//!
//! Every name in `local.settings.json` that is neither kv-notify's nor the host's gets one
//! warning, with the setting it most likely meant. The environment holds much besides the app's
//! settings, so there only a name one or two letters from a kv-notify setting warns.

use super::name;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Prefixes of the Functions host's and the platform's own settings: never warned about.
const HOST_PREFIXES: [&str; 4] = [
    "FUNCTIONS_",
    "AzureWebJobs",
    "APPLICATIONINSIGHTS_",
    "WEBSITE_",
];

/// `local.settings.json` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnreadableSettings(String);

/// The app settings as read: their values, and which names came from `local.settings.json`.
#[derive(Debug, Clone, Default)]
pub struct Values {
    values: HashMap<String, String>,
    from_file: BTreeSet<String>,
}

impl Values {
    /// The process environment: the app settings under the Functions host.
    pub fn environment() -> Self {
        Self {
            values: std::env::vars().collect(),
            from_file: BTreeSet::new(),
        }
    }

    /// The `Values` of a `local.settings.json` file, as `func start` reads them, with the
    /// process environment taking precedence. A missing file yields the environment alone.
    pub fn local(path: &Path) -> Result<Self, UnreadableSettings> {
        let mut read = Self::default();
        if path.exists() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UnreadableSettings(format!("cannot read {}: {e}", path.display())))?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                UnreadableSettings(format!("{}: not valid JSON: {e}", path.display()))
            })?;
            if let Some(map) = json.get("Values").and_then(|v| v.as_object()) {
                for (key, value) in map {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    read.values.insert(key.clone(), text);
                    read.from_file.insert(key.clone());
                }
            }
        }
        read.values.extend(std::env::vars());
        Ok(read)
    }

    /// A set of values, as if from `local.settings.json` (`file`) and the environment.
    #[cfg(test)]
    pub fn from_pairs<'a>(
        file: impl IntoIterator<Item = (&'a str, &'a str)>,
        environment: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut read = Self::default();
        for (key, value) in file {
            read.values.insert(key.to_owned(), value.to_owned());
            read.from_file.insert(key.to_owned());
        }
        for (key, value) in environment {
            read.values.insert(key.to_owned(), value.to_owned());
        }
        read
    }

    /// The value of the setting `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// One warning per name that is probably a misspelt setting.
    pub fn misspelt(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for key in self.values.keys().collect::<BTreeSet<_>>() {
            if known(key) {
                continue;
            }
            let in_file = self.from_file.contains(key);
            match (closest(key), in_file) {
                (Some(meant), true) => warnings.push(format!(
                    "local.settings.json: {key} is not a kv-notify setting; did you mean {meant}?"
                )),
                (Some(meant), false) => warnings.push(format!(
                    "the environment has {key}, which kv-notify does not read; did you mean \
                     {meant}?"
                )),
                (None, true) => warnings.push(format!(
                    "local.settings.json: {key} is not a kv-notify setting (the README lists \
                     them); it is ignored"
                )),
                (None, false) => {}
            }
        }
        warnings
    }
}

/// Whether kv-notify, the host or the platform reads `key`.
fn known(key: &str) -> bool {
    name::OWN.contains(&key)
        || name::PLATFORM.contains(&key)
        || HOST_PREFIXES.iter().any(|prefix| key.starts_with(prefix))
}

/// The kv-notify setting `key` is most likely a misspelling of: the same but for case, or one
/// edit away (two for a long name).
fn closest(key: &str) -> Option<&'static str> {
    let upper = key.to_ascii_uppercase();
    let allowed = if upper.len() >= 10 { 2 } else { 1 };
    name::OWN
        .iter()
        .map(|own| (strsim::damerau_levenshtein(&upper, own), *own))
        .filter(|(distance, _)| *distance <= allowed)
        .min()
        .map(|(_, own)| own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(file: &[(&str, &str)], environment: &[(&str, &str)]) -> Vec<String> {
        Values::from_pairs(file.iter().copied(), environment.iter().copied()).misspelt()
    }

    #[test]
    fn each_common_misspelling_gets_exactly_one_suggestion() {
        for (typed, meant) in [
            ("REMINDER_DAY", "REMINDER_DAYS"),
            ("VAULT", "VAULTS"),
            ("SECURTY_EMAILS", "SECURITY_EMAILS"),
            ("OWNERS_EMAILS", "OWNER_EMAILS"),
            ("SMTP_URI", "SMTP_URL"),
            ("smtp_url", "SMTP_URL"),
        ] {
            for said in [
                warnings(&[(typed, "x")], &[]),
                warnings(&[], &[(typed, "x")]),
            ] {
                assert_eq!(said.len(), 1, "{typed}: {said:?}");
                assert!(
                    said[0].contains(&format!("did you mean {meant}?")),
                    "{said:?}"
                );
            }
        }
    }

    #[test]
    fn a_realistic_local_settings_file_and_environment_get_no_warning() {
        let file = [
            ("FUNCTIONS_WORKER_RUNTIME", "custom"),
            ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
            ("AzureWebJobsFeatureFlags", "EnableWorkerIndexing"),
            (
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                "InstrumentationKey=…",
            ),
            ("WEBSITE_TIME_ZONE", "Europe/Paris"),
            ("MAIL_FROM", "kv-notify@contoso.com"),
            ("OWNER_EMAILS", "platform@contoso.com"),
            ("SECURITY_EMAILS", "secops@contoso.com"),
            ("VAULTS", "prod-kv"),
            ("REMINDER_DAYS", "30,7,1"),
            ("SMTP_URL", "smtp://mail:587"),
        ];
        let environment = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/site"),
            ("HOST", "worker"),
            ("USER", "app"),
            ("LANG", "C.UTF-8"),
            ("SHELL", "/bin/sh"),
            ("IDENTITY_ENDPOINT", "http://localhost:8081/msi/token"),
            ("CONTAINER_NAME", "kv-notify"),
        ];
        assert_eq!(warnings(&file, &environment), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_name_in_the_file_is_said_even_with_nothing_close() {
        let said = warnings(&[("MY_OWN_THING", "1")], &[]);
        assert_eq!(said.len(), 1);
        assert!(said[0].contains("MY_OWN_THING is not a kv-notify setting"));
    }

    #[test]
    fn every_setting_name_is_either_kv_notifys_own_or_the_platforms() {
        let source = include_str!("name.rs");
        for line in source.lines().filter(|l| l.starts_with("pub const ")) {
            let Some((_, value)) = line.split_once("= \"") else {
                continue;
            };
            let value = value.trim_end_matches("\";");
            assert!(
                known(value),
                "{value} is in neither name::OWN nor name::PLATFORM"
            );
        }
    }
}
