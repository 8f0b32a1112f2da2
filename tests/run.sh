#!/usr/bin/env bash
# The whole test suite: prepares the Debian kernel for the real-kernel tests (installing
# qemu and friends when run as root) and dbus-daemon for the systemd tests, then runs every
# test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
sh host-image/test-kernel/prepare.sh
if ! command -v dbus-daemon >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dbus-daemon
fi
cargo test --workspace --locked
