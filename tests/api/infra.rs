//! The deployment as code (`infra/`, `azure.yaml`'s hooks) passes `scripts/infra-check`, and
//! the check catches a syntax error, a queue message time to live shorter than the host's
//! retries, and a Resource Manager filter that leaves out an operation kv-notify acts on,
//! planted in a copy of it.

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

/// A copy of what the check reads: the templates, the setting names, host.json and the queue
/// function's binding.
fn copy_of_the_checked_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&app_root().join("infra"), &dir.path().join("infra"));
    copy_tree(
        &app_root().join("event-queue"),
        &dir.path().join("event-queue"),
    );
    std::fs::create_dir_all(dir.path().join("src/settings")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("src/event")).expect("mkdir");
    for file in ["src/settings/name.rs", "src/event/resource.rs", "host.json"] {
        std::fs::copy(app_root().join(file), dir.path().join(file)).expect("copy");
    }
    dir
}

#[test]
fn a_syntax_error_planted_in_a_template_fails_the_check() {
    let dir = copy_of_the_checked_files();
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

#[test]
fn queued_messages_that_expire_before_the_hosts_retries_end_fail_the_check() {
    let dir = copy_of_the_checked_files();
    let module = dir.path().join("infra/modules/queue-subscription.bicep");
    let text = std::fs::read_to_string(&module).expect("read");
    let planted = text.replace(
        "queueMessageTimeToLiveInSeconds: 172800",
        "queueMessageTimeToLiveInSeconds: 3600",
    );
    assert_ne!(planted, text, "the template sets the time to live");
    std::fs::write(&module, planted).expect("plant");

    let output = infra_check(dir.path());

    let said = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("must outlast host.json's retries"), "{said}");
}

#[test]
fn a_resource_event_filter_leaving_out_an_operation_kv_notify_acts_on_fails_the_check() {
    let dir = copy_of_the_checked_files();
    let module = dir
        .path()
        .join("infra/modules/resource-events-subscription.bicep");
    let text = std::fs::read_to_string(&module).expect("read");
    let planted = text.replace(
        "            'Microsoft.Authorization/roleAssignments/delete'\n",
        "",
    );
    assert_ne!(
        planted, text,
        "the template filters role assignment deletions in"
    );
    std::fs::write(&module, planted).expect("plant");

    let output = infra_check(dir.path());

    let said = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("missing ['Microsoft.Authorization/roleAssignments/delete']"),
        "{said}"
    );
}
