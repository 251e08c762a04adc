//! The deployment as code (`infra/`, `azure.yaml`'s hooks) passes `scripts/infra-check`, and
//! the check catches a syntax error planted in a copy of it.

use crate::support::{app_root, copy_tree};
use std::path::Path;
use std::process::{Command, Output};

fn infra_check(repo: &Path) -> Output {
    Command::new("python3")
        .arg(app_root().join("scripts/infra-check"))
        .arg(repo)
        .output()
        .expect("python3 runs scripts/infra-check (scripts/test installs its grammar)")
}

#[test]
fn the_templates_parse_and_say_what_kv_notify_needs() {
    let output = infra_check(&app_root());

    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.contains("Bicep files parse"), "{said}");
}

#[test]
fn a_syntax_error_planted_in_a_template_fails_the_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&app_root().join("infra"), &dir.path().join("infra"));
    std::fs::create_dir_all(dir.path().join("src/settings")).expect("mkdir");
    std::fs::copy(
        app_root().join("src/settings/name.rs"),
        dir.path().join("src/settings/name.rs"),
    )
    .expect("copy");
    let storage = dir.path().join("infra/modules/storage.bicep");
    let text = std::fs::read_to_string(&storage).expect("read");
    std::fs::write(
        &storage,
        text.replace("kind: 'StorageV2'", "kind: StorageV2 {"),
    )
    .expect("plant");

    let output = infra_check(dir.path());

    let said = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("storage.bicep:") && said.contains("does not parse"),
        "{said}"
    );
}
