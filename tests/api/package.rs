//! The release zip that `scripts/package` writes: its layout and modes, a binary that needs no
//! glibc newer than 2.28, and that very binary answering the host's protocol inside a Debian 11
//! root (glibc 2.31, the oldest Functions worker image).

use crate::support::*;
use serde_json::Value;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The oldest glibc the binary may need (major, minor).
const OLDEST_GLIBC: (u32, u32) = (2, 28);

#[test]
fn the_release_zip_holds_host_json_the_function_folders_and_the_executable_host_json_names() {
    let mut archive = open_package();
    let checkout = FunctionApp::load();

    let mut names = Vec::new();
    for index in 0..archive.len() {
        let entry = archive.by_index(index).expect("a zip entry");
        names.push(entry.name().expect("a UTF-8 entry name").into_owned());
    }
    names.sort();
    let mut expected: Vec<String> = checkout
        .functions
        .keys()
        .map(|function| format!("{function}/function.json"))
        .chain(["host.json".to_owned(), "kv-notify".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(names, expected, "nothing but the app by default");

    let host: Value = serde_json::from_slice(&entry_bytes(&mut archive, "host.json"))
        .expect("the zip's host.json is JSON");
    let executable = host["customHandler"]["description"]["defaultExecutablePath"].clone();
    assert_eq!(
        executable, "kv-notify",
        "host.json names the executable at the root"
    );
    let mut checkout_host: Value = serde_json::from_str(
        &std::fs::read_to_string(app_root().join("host.json")).expect("host.json"),
    )
    .expect("JSON");
    checkout_host["customHandler"]["description"]["defaultExecutablePath"] = executable;
    assert_eq!(
        host, checkout_host,
        "the checkout's host.json but for the path"
    );
    for function in checkout.functions.keys() {
        let name = format!("{function}/function.json");
        let checkout_binding =
            std::fs::read(app_root().join(&name)).expect("the checkout's function.json");
        assert_eq!(entry_bytes(&mut archive, &name), checkout_binding, "{name}");
    }

    for name in &names {
        let entry = archive.by_name(name).expect("an entry");
        let mode = entry.unix_mode().expect("a Unix mode");
        assert_eq!(mode & 0o170000, 0o100000, "{name} is a regular file");
        let want = if name == "kv-notify" { 0o755 } else { 0o644 };
        assert_eq!(mode & 0o7777, want, "{name}'s mode is {mode:o}");
    }
    let binary = entry_bytes(&mut archive, "kv-notify");
    assert_eq!(&binary[..4], b"\x7fELF", "the executable is an ELF file");
    assert_eq!(binary[4], 2, "64-bit");
    assert_eq!(u16::from_le_bytes([binary[18], binary[19]]), 0x3e, "x86-64");
}

#[test]
fn the_packaged_binary_needs_no_glibc_symbol_newer_than_2_28() {
    let dir = tempfile::tempdir().expect("temp dir");
    let executable = unpack_package(dir.path());

    let output = Command::new("objdump")
        .arg("-T")
        .arg(&executable)
        .output()
        .unwrap_or_else(|e| panic!("objdump ({e}): install it with apt-get install -y binutils"));
    assert!(output.status.success(), "objdump -T failed");
    let symbols = String::from_utf8_lossy(&output.stdout);
    let versions: Vec<(u32, u32)> = symbols
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .collect();

    assert!(
        !versions.is_empty(),
        "the binary links glibc dynamically, as the workers run it:\n{symbols}"
    );
    let newest = versions.iter().max().expect("a version");
    assert!(
        *newest <= OLDEST_GLIBC,
        "the binary needs GLIBC_{}.{}, newer than {}.{}",
        newest.0,
        newest.1,
        OLDEST_GLIBC.0,
        OLDEST_GLIBC.1
    );
}

#[tokio::test]
async fn the_packaged_binary_starts_in_a_debian_11_root_and_answers_an_invocation() {
    let root = debian_11_root();
    let app = AppInRoot::unpack(&root);

    let outbox = app.dir.join("outbox");
    let ledger = app.dir.join("data/ledger.redb");
    let handler = Handler::start_chrooted(
        &root,
        &app.dir,
        &[
            ("OWNER_EMAILS", "a@contoso.com"),
            ("OUTBOX_DIR", outbox.to_str().expect("utf-8")),
            ("LEDGER_PATH", ledger.to_str().expect("utf-8")),
        ],
    )
    .await;
    let answer = handler
        .invoke(event_grid("SecretNearExpiry", "db-password", Some(20)))
        .await;

    assert_eq!(answer.status, 200, "{}\n{}", answer.text, handler.output());
    assert_eq!(answer.statuses(), ["written"], "{}", answer.text);
    let mails: Vec<PathBuf> = std::fs::read_dir(app.on_host(&outbox))
        .expect("the outbox inside the root")
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = std::fs::read_to_string(&mails[0]).expect("the mail");
    assert!(mail.contains("db-password"), "{mail}");
    assert!(mail.contains("To: a@contoso.com"), "{mail}");
}

#[tokio::test]
async fn a_zip_made_with_rules_and_templates_carries_them_where_kv_notify_reads_them() {
    let work = tempfile::tempdir().expect("temp dir");
    let binary = unpack_package(&work.path().join("release"));
    let rules = work.path().join("my-rules.toml");
    std::fs::write(
        &rules,
        "[[owners]]\nvault = \"prod-*\"\nobject = \"db-*\"\nemails = [\"dba@contoso.com\"]\n\n\
         [[rules]]\nevents = [\"SecretNearExpiry\"]\nnotify = [\"owners\"]\n",
    )
    .expect("write rules");
    let templates = work.path().join("my-templates");
    std::fs::create_dir(&templates).expect("mkdir");
    std::fs::write(
        templates.join("mail.txt"),
        "Packaged template: {{ headline }}\n",
    )
    .expect("write a template");
    let zip = work.path().join("custom.zip");

    let made = package(
        &binary,
        &[("--rules", &rules), ("--templates", &templates)],
        &zip,
    );
    assert!(made.status.success(), "{}", output_of(&made));

    let app = work.path().join("app");
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(&zip).expect("the zip")).expect("a zip");
    archive.extract(&app).expect("unpack");
    assert!(app.join("rules.toml").is_file() && app.join("mail-templates/mail.txt").is_file());
    let outbox = work.path().join("outbox");
    let handler = Handler::start_app(
        &app,
        &[
            ("OWNER_EMAILS", "platform@contoso.com"),
            ("OUTBOX_DIR", outbox.to_str().expect("utf-8")),
        ],
    )
    .await;
    let answer = handler
        .invoke(event_grid("SecretNearExpiry", "db-password", Some(20)))
        .await;

    assert_eq!(answer.statuses(), ["written"], "{}", answer.text);
    let mail = std::fs::read_dir(&outbox)
        .expect("the outbox")
        .flatten()
        .map(|entry| std::fs::read_to_string(entry.path()).expect("the mail"))
        .next()
        .expect("one mail");
    assert!(
        mail.contains("To: dba@contoso.com"),
        "the zip's rules: {mail}"
    );
    assert!(
        mail.contains("Packaged template: "),
        "the zip's template: {mail}"
    );
}

#[test]
fn a_rules_file_that_check_refuses_is_never_packaged() {
    let work = tempfile::tempdir().expect("temp dir");
    let binary = unpack_package(&work.path().join("release"));
    let rules = work.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nevents = [\"SecretNearExpiry\"]\nnotify = [\"nowhere\"]\n",
    )
    .expect("write rules");
    let zip = work.path().join("custom.zip");

    let made = package(&binary, &[("--rules", &rules)], &zip);

    assert!(!made.status.success());
    assert!(
        output_of(&made).contains("unknown channel \"nowhere\""),
        "{}",
        output_of(&made)
    );
    assert!(!zip.exists(), "no zip is written");
}

/// Runs scripts/package on a built `binary`, with these options, writing `out`.
fn package(binary: &Path, options: &[(&str, &Path)], out: &Path) -> std::process::Output {
    let mut command = Command::new("python3");
    command
        .arg(app_root().join("scripts/package"))
        .arg("--binary")
        .arg(binary)
        .arg("--out")
        .arg(out);
    for (option, path) in options {
        command.arg(option).arg(path);
    }
    command.output().expect("run scripts/package (python3)")
}

fn output_of(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The release zip: `KV_NOTIFY_ZIP`, or the one scripts/package writes for this version.
fn package_path() -> PathBuf {
    let path = std::env::var_os("KV_NOTIFY_ZIP").map_or_else(
        || {
            app_root().join(format!(
                "dist/kv-notify-{}-linux-x64.zip",
                env!("CARGO_PKG_VERSION")
            ))
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no release zip at {}: run scripts/package (scripts/test does)",
        path.display()
    );
    path
}

fn open_package() -> zip::ZipArchive<std::fs::File> {
    let path = package_path();
    let file = std::fs::File::open(&path).expect("open the zip");
    zip::ZipArchive::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn entry_bytes(archive: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Vec<u8> {
    let mut entry = archive
        .by_name(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).expect("inflate");
    bytes
}

/// Unpacks the zip into `dir`, keeping its modes, and returns the executable its host.json
/// names.
fn unpack_package(dir: &Path) -> PathBuf {
    open_package().extract(dir).expect("unpack the zip");
    let executable = packaged_executable(dir);
    let mode = std::fs::metadata(&executable)
        .expect("the executable")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "unpacked with its mode");
    executable
}

/// The Debian 11 root: `KV_NOTIFY_DEBIAN11_ROOT`, or the one scripts/test bootstraps under
/// target/.
fn debian_11_root() -> PathBuf {
    let root = std::env::var_os("KV_NOTIFY_DEBIAN11_ROOT")
        .map_or_else(|| app_root().join("target/debian11-root"), PathBuf::from);
    let version = std::fs::read_to_string(root.join("etc/debian_version")).unwrap_or_default();
    assert!(
        version.starts_with("11.") && root.join("lib/x86_64-linux-gnu/libc-2.31.so").exists(),
        "no Debian 11 root (glibc 2.31) at {}: scripts/test bootstraps it, or as root: \
         apt-get install -y debootstrap && debootstrap --variant=minbase bullseye {} \
         http://deb.debian.org/debian",
        root.display(),
        root.display()
    );
    let uid = Command::new("id").arg("-u").output().expect("run id");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "running a binary in the Debian 11 root takes chroot(8): run this test as root"
    );
    root
}

/// The release unpacked in a folder of its own under the root's `/srv`; removed when dropped.
struct AppInRoot {
    root: PathBuf,
    /// The folder, as seen inside the root.
    dir: PathBuf,
}

impl AppInRoot {
    fn unpack(root: &Path) -> Self {
        let dir = PathBuf::from(format!("/srv/kv-notify-test-{}", new_id()));
        let app = Self {
            root: root.to_owned(),
            dir,
        };
        std::fs::create_dir_all(app.on_host(&app.dir)).expect("a folder in the root");
        unpack_package(&app.on_host(&app.dir));
        app
    }

    /// A path inside the root, as seen from here.
    fn on_host(&self, inside: &Path) -> PathBuf {
        self.root
            .join(inside.strip_prefix("/").expect("an absolute path"))
    }
}

impl Drop for AppInRoot {
    fn drop(&mut self) {
        std::fs::remove_dir_all(self.on_host(&self.dir)).ok();
    }
}
