#!/usr/bin/env bash
# The whole test suite: prepares the Debian kernel for the real-kernel tests (installing
# qemu and friends when run as root), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
sh host-image/test-kernel/prepare.sh
cargo test --workspace --locked
