#!/usr/bin/env bash
# azd prepackage: builds the release zip (glibc 2.28, runs on every Functions Linux worker) and
# unpacks it, modes kept, into dist/app, which azd deploys.
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/package
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
rm -rf dist/app
python3 - "dist/kv-notify-$version-linux-x64.zip" dist/app <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    for entry in archive.infolist():
        os.chmod(archive.extract(entry, sys.argv[2]), (entry.external_attr >> 16) & 0o7777)
PY
echo "kv-notify: the app to deploy is in dist/app"
