#!/usr/bin/env bash
# The whole test suite: prepares the Debian kernel for the real-kernel tests (installing
# qemu and friends when run as root) and dbus-daemon for the systemd tests, then runs every
# test of the workspace, against the real Cloud Hypervisor wherever it can run.
set -euo pipefail
cd "$(dirname "$0")/.."
sh host-image/test-kernel/prepare.sh
if ! command -v dbus-daemon >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dbus-daemon
fi
# The disk tests make real images (sfdisk, mkfs.ext4, mkfs.vfat, qemu-img).
if ! command -v sfdisk >/dev/null 2>&1 || ! command -v mkfs.vfat >/dev/null 2>&1 \
    || ! command -v qemu-img >/dev/null 2>&1 || ! command -v mkfs.ext4 >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            fdisk e2fsprogs dosfstools qemu-utils
    fi
fi
# The host image's ISO boots on UEFI with Debian's OVMF.
if [ ! -f /usr/share/OVMF/OVMF_CODE_4M.fd ] && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ovmf
fi
# `host status` is compared with `ip`, and reads a journal file systemd-journal-remote writes.
if { ! command -v ip >/dev/null 2>&1 || [ ! -x /lib/systemd/systemd-journal-remote ]; } \
    && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        iproute2 systemd-journal-remote
fi
# The real VMM: the v54.0.0 binary shipped beside the checkout, unless CH_BIN names another.
# Its tests run when it is there and /dev/kvm opens, and print SKIPPED with the reason otherwise.
CH_BIN=${CH_BIN:-$(cd .. && pwd)/shared/cloud-hypervisor/bin/cloud-hypervisor}
export CH_BIN
if [ -x "$CH_BIN" ]; then
    echo "run.sh: real Cloud Hypervisor: $CH_BIN ($("$CH_BIN" --version 2>/dev/null | head -n 1))"
else
    echo "run.sh: no Cloud Hypervisor at $CH_BIN: the real-VMM tests will say SKIPPED"
fi
status=0
cargo test --workspace --locked || status=$?
# No VMM a test started may outlive the suite: the tests' VMMs all run from temporary dirs.
leaked=$(pgrep -a -f "(cloud-hypervisor|ch_double) .*--api-socket path=${TMPDIR:-/tmp}/" || true)
if [ -n "$leaked" ]; then
    echo "run.sh: VMM processes left behind by the tests:" >&2
    echo "$leaked" >&2
    pkill -KILL -f "(cloud-hypervisor|ch_double) .*--api-socket path=${TMPDIR:-/tmp}/" || true
    status=1
fi
exit $status
