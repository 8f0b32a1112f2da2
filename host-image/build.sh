#!/bin/sh
# Build the phyllome host image: a minimal Debian that boots straight into the console, its whole
# root in RAM.
#
#   host-image/build.sh OUT_DIR
#
# Writes OUT_DIR/vmlinuz, OUT_DIR/initrd.img (the whole root, booted with no disk),
# OUT_DIR/cmdline (the kernel command line) and OUT_DIR/phyllome.iso (hybrid BIOS+UEFI, for a USB
# stick or a CD). Inputs, from the environment:
#   PHYLLOME_BIN   the phyllome binary          (default: target/release/phyllome, else target/debug)
#   CH_DIR         cloud-hypervisor [+ ch-remote] (default: <repo>/../shared/cloud-hypervisor/bin)
#   SSH_KEYS       an authorized_keys file for root's key-only SSH login (default: none)
#   ROOT_PASSWORD_HASH  a crypt(3) hash for root's login on tty2 (default: locked, no password)
#   HUGEPAGES      2 MiB huge pages reserved at boot (default: 0)
#   CMDLINE_EXTRA  appended to the kernel command line
#   OVERLAY        a directory copied over the root last (the end-to-end test adds its probe here)
#   CACHE_DIR      downloads and the base root (default: <repo>/.cache/host-image)
#   MIRROR, SECURITY_MIRROR  Debian mirrors (default: deb.debian.org's), SUITE (default: bookworm);
#                  the root takes SUITE, SUITE-updates and SUITE-security
#   NO_ISO=1       skip the ISO
# The Debian packages and the base root are cached in CACHE_DIR: a second build only lays our
# files over it (seconds). A build whose inputs did not change leaves OUT_DIR alone.
# As root it installs the tools it needs (mmdebstrap, cpio, zstd, grub, xorriso, mtools).
set -eu

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE="$REPO_ROOT/host-image"
log() { printf 'build.sh: %s\n' "$*"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: host-image/build.sh OUT_DIR"
OUT_DIR=$1
CACHE_DIR=${CACHE_DIR:-$REPO_ROOT/.cache/host-image}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CH_DIR=${CH_DIR:-$REPO_ROOT/../shared/cloud-hypervisor/bin}
HUGEPAGES=${HUGEPAGES:-0}
if [ -z "${PHYLLOME_BIN:-}" ]; then
    for b in "$REPO_ROOT/target/release/phyllome" "$REPO_ROOT/target/debug/phyllome"; do
        [ -x "$b" ] && { PHYLLOME_BIN=$b; break; }
    done
fi
[ -n "${PHYLLOME_BIN:-}" ] && [ -x "$PHYLLOME_BIN" ] \
    || die "no phyllome binary (cargo build --release, or set PHYLLOME_BIN)"
[ -x "$CH_DIR/cloud-hypervisor" ] || die "no cloud-hypervisor in $CH_DIR (set CH_DIR)"
[ -z "${SSH_KEYS:-}" ] || [ -r "$SSH_KEYS" ] || die "SSH_KEYS=$SSH_KEYS is not readable"
[ -z "${OVERLAY:-}" ] || [ -d "$OVERLAY" ] || die "OVERLAY=$OVERLAY is not a directory"
case $HUGEPAGES in *[!0-9]*|'') die "HUGEPAGES must be a number" ;; esac

# --- host tools -------------------------------------------------------------
missing=""
need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need mmdebstrap mmdebstrap
need cpio cpio
need zstd zstd
need objcopy binutils
if [ -z "${NO_ISO:-}" ]; then
    need grub-mkrescue grub-common
    need xorriso xorriso
    need mformat mtools
    [ -d /usr/lib/grub/i386-pc ] || missing="$missing grub-pc-bin"
    [ -d /usr/lib/grub/x86_64-efi ] || missing="$missing grub-efi-amd64-bin"
fi
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || die "missing packages:$missing (run as root or: apt-get install$missing)"
    log "installing:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --- the base root: Debian's packages, cached --------------------------------
# Everything that does not change between builds of the project: rebuilt only when this list,
# the pruning below or the suite change.
PACKAGES="linux-image-amd64,systemd,systemd-sysv,udev,dbus,openssh-server,qemu-utils,kmod,\
iproute2,pciutils,procps,less,ncurses-base,libpam-systemd,man-db,bash-completion"
# Module trees a VFIO host does not need; dropping them halves the root.
PRUNE="drivers/gpu/drm/amd drivers/gpu/drm/nouveau drivers/gpu/drm/i915 drivers/gpu/drm/radeon \
drivers/media drivers/net/wireless drivers/bluetooth drivers/infiniband drivers/staging \
drivers/iio drivers/isdn drivers/input/touchscreen sound/soc net/wireless net/mac80211 \
net/bluetooth drivers/net/can net/can"
BASE_REV=1
key=$(printf '%s\n' "$BASE_REV" "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "$PACKAGES" "$PRUNE" | sha256sum | cut -c1-16)
base="$CACHE_DIR/base-$key"
mkdir -p "$CACHE_DIR/apt-archives"
if [ ! -f "$base/initrd.cpio.zst" ]; then
    [ "$(id -u)" = 0 ] || die "building the base root needs root (mmdebstrap keeps file owners)"
    log "building the base root ($SUITE) into $base (downloads cached in $CACHE_DIR/apt-archives)"
    rm -rf "$base.tmp"
    mkdir -p "$base.tmp"
    root="$base.tmp/root"
    # The sync-in/sync-out hooks keep the downloaded .debs across builds (mmdebstrap's recipe).
    mmdebstrap --variant=minbase --include="$PACKAGES" --skip=essential/unlink \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
        --setup-hook="sync-in $CACHE_DIR/apt-archives /var/cache/apt/archives/" \
        --customize-hook="sync-out /var/cache/apt/archives $CACHE_DIR/apt-archives" \
        --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
        "$SUITE" "$root" "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
        "deb $SECURITY_MIRROR $SUITE-security main" >"$base.tmp/mmdebstrap.log" 2>&1 \
        || { tail -n 30 "$base.tmp/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $base.tmp/mmdebstrap.log)"; }
    kver=$(ls "$root/lib/modules")
    [ -f "$root/boot/vmlinuz-$kver" ] || die "no kernel in the base root"
    cp "$root/boot/vmlinuz-$kver" "$base.tmp/vmlinuz"
    echo "$kver" >"$base.tmp/KERNEL_VERSION"
    # The root is the initramfs: no second initramfs, no kernel in the root.
    rm -rf "$root"/boot/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old
    for d in $PRUNE; do rm -rf "$root/lib/modules/$kver/kernel/$d"; done
    chroot "$root" depmod -a "$kver"
    # Per-machine identity is made at boot, not baked into every copy of the image.
    : >"$root/etc/machine-id"
    rm -f "$root"/var/lib/dbus/machine-id "$root"/etc/ssh/ssh_host_*
    # The kernel runs /init from the initramfs: that is systemd, on the root in RAM.
    ln -sf lib/systemd/systemd "$root/init"
    log "packing the base root ($(du -sh "$root" | cut -f1))"
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) \
        | zstd -q -T0 -12 >"$base.tmp/initrd.cpio.zst"
    rm -rf "$root"
    rm -rf "$base"
    mv "$base.tmp" "$base"
    # Base roots of earlier package lists are of no more use.
    for old in "$CACHE_DIR"/base-*; do
        [ "$old" = "$base" ] || rm -rf "$old"
    done
fi
kver=$(cat "$base/KERNEL_VERSION")

# --- our layer ------------------------------------------------------------------
CMDLINE="intel_iommu=on amd_iommu=on iommu=pt console=tty0 console=ttyS0,115200 quiet"
[ "$HUGEPAGES" = 0 ] || CMDLINE="$CMDLINE hugepagesz=2M hugepages=$HUGEPAGES"
[ -z "${CMDLINE_EXTRA:-}" ] || CMDLINE="$CMDLINE $CMDLINE_EXTRA"

# Inputs of this layer; an unchanged build leaves OUT_DIR as it is.
stamp=$( {
    echo "$key $CMDLINE ${NO_ISO:-} ${ROOT_PASSWORD_HASH:-}"
    cat "$0" "$PHYLLOME_BIN" "$CH_DIR/cloud-hypervisor"
    [ ! -f "$CH_DIR/ch-remote" ] || cat "$CH_DIR/ch-remote"
    [ -z "${SSH_KEYS:-}" ] || cat "$SSH_KEYS"
    (cd "$HERE/rootfs" && find . -printf '%p %l %m\n' | LC_ALL=C sort && find . -type f | LC_ALL=C sort | xargs cat)
    [ -z "${OVERLAY:-}" ] || (cd "$OVERLAY" && find . | LC_ALL=C sort && find . -type f | LC_ALL=C sort | xargs cat)
} | sha256sum | cut -c1-32)
if [ -f "$OUT_DIR/.stamp" ] && [ "$(cat "$OUT_DIR/.stamp")" = "$stamp" ] \
    && [ -f "$OUT_DIR/initrd.img" ] && { [ -n "${NO_ISO:-}" ] || [ -f "$OUT_DIR/phyllome.iso" ]; }; then
    log "$OUT_DIR is up to date ($kver)"
    exit 0
fi

mkdir -p "$OUT_DIR"
work=$(mktemp -d "$CACHE_DIR/.layer.XXXXXX")
trap 'rm -rf "$work"' EXIT
layer="$work/layer"
mkdir -p "$layer"
cp -R "$HERE/rootfs/." "$layer/"
mkdir -p "$layer/usr/local/bin" "$layer/root/.ssh" "$layer/var/lib/phyllome"
# Debug info is most of a debug build, and the root lives in RAM.
objcopy --strip-debug "$PHYLLOME_BIN" "$layer/usr/local/bin/phyllome"
cp "$CH_DIR/cloud-hypervisor" "$layer/usr/local/bin/cloud-hypervisor"
[ ! -f "$CH_DIR/ch-remote" ] || cp "$CH_DIR/ch-remote" "$layer/usr/local/bin/ch-remote"
chmod 0755 "$layer"/usr/local/bin/* "$layer"/usr/local/sbin/*
# A man page per command and bash completion, generated by the binary the image runs.
mkdir -p "$layer/usr/local/share/man/man1" "$layer/usr/share/bash-completion/completions"
"$PHYLLOME_BIN" man "$layer/usr/local/share/man/man1" >/dev/null
"$PHYLLOME_BIN" completions bash >"$layer/usr/share/bash-completion/completions/phyllome"
chmod 0644 "$layer"/usr/local/share/man/man1/* "$layer/usr/share/bash-completion/completions/phyllome"
# The kernel applies a directory entry's mode to a directory the base already made.
find "$layer" -type d -exec chmod 0755 {} +
chmod 0700 "$layer/root" "$layer/root/.ssh"
if [ -n "${SSH_KEYS:-}" ]; then
    install -m 0600 "$SSH_KEYS" "$layer/root/.ssh/authorized_keys"
fi
if [ -n "${ROOT_PASSWORD_HASH:-}" ]; then
    # Root's line in /etc/shadow with the given hash; the rest of the file is the base root's.
    zstd -dc "$base/initrd.cpio.zst" | (cd "$work" && cpio -id --quiet etc/shadow)
    sed "s|^root:[^:]*:|root:$ROOT_PASSWORD_HASH:|" "$work/etc/shadow" >"$layer/etc/shadow"
    chmod 0640 "$layer/etc/shadow"
fi
[ -z "${OVERLAY:-}" ] || cp -R "$OVERLAY/." "$layer/"
echo "$CMDLINE" >"$layer/etc/phyllome-image-cmdline"

# A second cpio after the base one: the kernel unpacks both, later files replacing earlier ones.
# "." is in it: the kernel makes / a tmpfs with mode 1777, and a world-writable / would let
# anyone plant files there (sshd's StrictModes refuses keys under it, rightly).
(cd "$layer" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
    | zstd -q -T0 -12 >"$work/layer.cpio.zst"
cat "$base/initrd.cpio.zst" "$work/layer.cpio.zst" >"$work/initrd.img"
cp "$base/vmlinuz" "$work/vmlinuz"
echo "$CMDLINE" >"$work/cmdline"

if [ -z "${NO_ISO:-}" ]; then
    iso="$work/iso"
    mkdir -p "$iso/boot/grub" "$iso/phyllome"
    ln "$work/vmlinuz" "$iso/boot/vmlinuz"
    ln "$work/initrd.img" "$iso/boot/initrd.img"
    sed "s|@CMDLINE@|$CMDLINE|" "$HERE/grub.cfg" >"$iso/boot/grub/grub.cfg"
    cat >"$iso/phyllome/README.txt" <<'TXT'
Put an authorized_keys file in this folder (phyllome/authorized_keys) to allow those keys to log
in as root over SSH: it is read at every boot.
TXT
    [ -z "${SSH_KEYS:-}" ] || cp "$SSH_KEYS" "$iso/phyllome/authorized_keys"
    grub-mkrescue -o "$work/phyllome.iso" "$iso" -- -volid PHYLLOME >"$work/grub.log" 2>&1 \
        || { cat "$work/grub.log" >&2; die "grub-mkrescue failed"; }
    mv "$work/phyllome.iso" "$OUT_DIR/phyllome.iso"
fi
mv "$work/vmlinuz" "$OUT_DIR/vmlinuz"
mv "$work/initrd.img" "$OUT_DIR/initrd.img"
mv "$work/cmdline" "$OUT_DIR/cmdline"
echo "$stamp" >"$OUT_DIR/.stamp"
log "kernel $kver; $(du -h "$OUT_DIR/initrd.img" | cut -f1) initrd$([ -n "${NO_ISO:-}" ] || echo ", $(du -h "$OUT_DIR/phyllome.iso" | cut -f1) ISO") in $OUT_DIR"
