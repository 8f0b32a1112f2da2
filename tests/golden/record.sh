#!/usr/bin/env bash
# Records the real Cloud Hypervisor's answers to the scenarios of tests/it/ch_conformance.rs into
# tests/golden/cloud-hypervisor/*.json, which the test double is held to on every test run.
#
#   tests/golden/record.sh            (CH_BIN=/path/to/cloud-hypervisor to record another build)
#
# Needs the binary (default ../shared/cloud-hypervisor/bin/cloud-hypervisor), a /dev/kvm that
# opens, and the payload kernel of host-image/test-kernel/prepare.sh. Review the diff before
# committing: a change means Cloud Hypervisor answers differently now, and the double must follow.
set -euo pipefail
cd "$(dirname "$0")/../.."
sh host-image/test-kernel/prepare.sh >/dev/null
cargo build --example ch_double
PHYLLOME_RECORD_GOLDEN=1 cargo test --test it ch_conformance:: -- --test-threads=1 --nocapture 2>&1 \
    | grep -E '^(recorded|SKIPPED|test result)' || true
git status --short tests/golden/cloud-hypervisor
