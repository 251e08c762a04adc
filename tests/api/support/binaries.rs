//! The binaries under test: kv-notify itself (the packaged one when `KV_NOTIFY_PACKAGE` names an
//! unpacked release zip, as `scripts/test` does), the previous release, and the Key Vault
//! stand-in.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The kv-notify binary the tests run. With `KV_NOTIFY_PACKAGE` set to the folder a release
/// zip was unpacked into, the executable that the zip's own host.json names (so the tests run
/// what ships); otherwise the one cargo built for the tests.
pub fn kv_notify_binary() -> PathBuf {
    match std::env::var_os("KV_NOTIFY_PACKAGE") {
        Some(package) => packaged_executable(Path::new(&package)),
        None => PathBuf::from(env!("CARGO_BIN_EXE_kv-notify")),
    }
}

/// The executable an unpacked package's host.json names; panics when the package has none there.
pub fn packaged_executable(package: &Path) -> PathBuf {
    let host_json = package.join("host.json");
    let text = std::fs::read_to_string(&host_json).unwrap_or_else(|e| {
        panic!(
            "KV_NOTIFY_PACKAGE={}: no host.json ({e}); unpack a zip from scripts/package there",
            package.display()
        )
    });
    let host: Value = serde_json::from_str(&text).expect("the package's host.json is JSON");
    let path = host["customHandler"]["description"]["defaultExecutablePath"]
        .as_str()
        .expect("the package's host.json names customHandler.description.defaultExecutablePath");
    let executable = package.join(path);
    assert!(
        executable.is_file(),
        "the package's host.json names {path}, which the package does not hold"
    );
    executable
}

/// The previous release's binary, which `KV_NOTIFY_PREVIOUS_RELEASE` names (`scripts/test`
/// builds it from the commit it names): the upgrade tests hand its ledger to this build.
pub fn previous_release_binary() -> PathBuf {
    let binary = std::env::var_os("KV_NOTIFY_PREVIOUS_RELEASE").map(PathBuf::from);
    match binary {
        Some(binary) if binary.is_file() => binary,
        _ => panic!(
            "KV_NOTIFY_PREVIOUS_RELEASE does not name the previous release's kv-notify binary: \
             run scripts/test, which builds it from the commit scripts/previous-release names \
             (or build that commit and point KV_NOTIFY_PREVIOUS_RELEASE at its binary)"
        ),
    }
}

/// The Key Vault stand-in (the workspace member `vault-stand-in`), built beside the test binary
/// under the same profile.
pub fn stand_in_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/api-<hash> → target/<profile>/vault-stand-in
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let stand_in = profile_dir.join("vault-stand-in");
    let profile = profile_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let flag = if profile == "release" {
        " --release"
    } else {
        ""
    };
    assert!(
        stand_in.is_file(),
        "the Key Vault stand-in is not built at {}: run `cargo build{flag} -p vault-stand-in` \
         (scripts/test does)",
        stand_in.display()
    );
    stand_in
}
