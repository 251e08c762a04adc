//! The import-layer check (`scripts/layers`) passes on the crate, and catches an upward import
//! planted in a copy of it.

use crate::support::{app_root, copy_tree};
use std::path::Path;
use std::process::{Command, Output};

fn layers(src: &Path) -> Output {
    Command::new("python3")
        .arg(app_root().join("scripts/layers"))
        .arg(src)
        .output()
        .expect("python3 runs scripts/layers (install python3)")
}

#[test]
fn every_import_of_the_crate_points_down_a_floor() {
    let output = layers(&app_root().join("src"));

    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("every import"), "{text}");
}

#[test]
fn an_upward_import_planted_in_a_low_room_fails_the_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    copy_tree(&app_root().join("src"), &src);
    let ledger = src.join("ledger.rs");
    let text = std::fs::read_to_string(&ledger).expect("read");
    // Inline, not in a `use` line: the check reads every path.
    let planted = format!("{text}\nfn planted() {{ let _ = crate::dispatch::Clock::System; }}\n");
    std::fs::write(&ledger, planted).expect("plant");

    let output = layers(&src);

    let said = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("ledger (floor 5) imports dispatch (floor 12)"),
        "{said}"
    );
}
