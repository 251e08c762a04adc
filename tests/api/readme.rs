//! The README and docs/ keep up with the code: every setting kv-notify reads and every command
//! is in the README, every link resolves, and every shell block at least parses.

use crate::support::{app_root, kv_notify_binary};
use std::path::{Path, PathBuf};
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(app_root().join("README.md")).expect("README.md")
}

/// README.md and every Markdown file under docs/.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![app_root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(app_root().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The settings of `name::OWN`, read from src/settings/name.rs.
fn own_settings() -> Vec<String> {
    let source = std::fs::read_to_string(app_root().join("src/settings/name.rs")).expect("name.rs");
    let value_of = |constant: &str| {
        source.lines().find_map(|line| {
            let rest = line.strip_prefix(&format!("pub const {constant}: &str = \""))?;
            Some(rest.trim_end_matches("\";").to_owned())
        })
    };
    let own = source
        .split("pub const OWN: &[&str] = &[")
        .nth(1)
        .expect("name::OWN");
    let own = own.split("];").next().unwrap_or_default();
    own.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| value_of(c).unwrap_or_else(|| panic!("{c} has no value")))
        .collect()
}

#[test]
fn every_setting_kv_notify_reads_is_in_the_readme() {
    let readme = readme();
    let settings = own_settings();
    assert!(settings.len() > 20, "{settings:?}");
    let missing: Vec<&String> = settings
        .iter()
        .filter(|s| !readme.contains(&format!("`{s}`")))
        .collect();
    assert!(missing.is_empty(), "not in the README: {missing:?}");
}

#[test]
fn every_command_of_the_help_is_in_the_readme() {
    let help = Command::new(kv_notify_binary())
        .arg("--help")
        .output()
        .expect("kv-notify --help");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .and_then(|rest| rest.split("Options:").next())
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|command| *command != "help")
        .collect();
    assert!(commands.len() >= 9, "{help}");
    let readme = readme();
    let missing: Vec<&&str> = commands
        .iter()
        .filter(|c| !readme.contains(&format!("kv-notify {c}")))
        .collect();
    assert!(missing.is_empty(), "not in the README: {missing:?}");
}

/// The anchors a Markdown file's headings make (GitHub's rule: lower case, spaces to dashes,
/// punctuation dropped).
fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim().to_lowercase();
        let slug: String = title
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        found.push(slug);
    }
    found
}

fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        for part in line.split("](").skip(1) {
            if let Some(target) = part.split(')').next() {
                found.push(target.to_owned());
            }
        }
    }
    found
}

#[test]
fn every_link_in_the_readme_and_docs_resolves() {
    let mut broken = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).expect("read");
        let here = file.parent().unwrap_or(Path::new("."));
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                here.join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", file.display()));
                continue;
            }
            if !anchor.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let target_text = std::fs::read_to_string(&target).expect("read");
                if !anchors(&target_text).iter().any(|a| a == anchor) {
                    broken.push(format!("{}: {link} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn every_shell_block_in_the_readme_and_docs_parses() {
    let mut failed = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).expect("read");
        for (n, block) in text.split("```sh\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap_or_default();
            let check = Command::new("bash")
                .args(["-n", "-c", block])
                .output()
                .expect("bash");
            if !check.status.success() {
                failed.push(format!(
                    "{} block {}: {}",
                    file.display(),
                    n + 1,
                    String::from_utf8_lossy(&check.stderr)
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}
