#!/bin/sh
# Prepare a Debian 6.1 kernel and the modules the real-kernel tests load, so
# `cargo test --test real_kernel` can boot it under qemu (TCG).
#
#   host-image/test-kernel/prepare.sh [CACHE_DIR]     (default: <repo>/.cache/test-kernel)
#
# Idempotent: a cache that already holds the newest kernel is left alone.
# As root it installs the tools it needs (qemu-system-x86 busybox-static cpio).
# Output layout:
#   CACHE_DIR/vmlinuz            the kernel
#   CACHE_DIR/busybox            a static busybox for the initramfs
#   CACHE_DIR/modules/*.ko       the dependency closure of MODULES, decompressed,
#                                named by module name ('-' written as '_')
#   CACHE_DIR/modules.order      load order (dependencies first), one file name a line
#   CACHE_DIR/KERNEL_VERSION     e.g. 6.1.0-56-amd64
set -eu

REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE_DIR=${1:-$REPO_ROOT/.cache/test-kernel}

# Modules the tests need; their dependencies are added from modules.dep.
MODULES="vfio vfio_iommu_type1 vfio-pci-core vfio-pci irqbypass bochs snd-hda-intel snd-hda-codec-generic"

log() { printf 'prepare.sh: %s\n' "$*"; }
die() { printf 'prepare.sh: error: %s\n' "$*" >&2; exit 1; }

# --- host tools -------------------------------------------------------------
missing=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx cttyhack && ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' \
    || missing="$missing busybox-static"
command -v cpio >/dev/null 2>&1 || missing="$missing cpio"
command -v objcopy >/dev/null 2>&1 || missing="$missing binutils"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        log "installing:$missing"
        apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
    else
        die "missing packages:$missing (run as root or: apt-get install$missing)"
    fi
else
    log "host tools present (qemu-system-x86_64, static busybox, cpio, objcopy)"
fi

# --- pick the newest Debian 6.1 kernel package ------------------------------
pkg=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null \
    | grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V \
    | while read -r p; do
        # Skip names without an installable candidate (e.g. purely virtual ones).
        if apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then echo "$p"; fi
    done | tail -n 1)
if [ -z "$pkg" ]; then
    [ "$(id -u)" = 0 ] && { log "no linux-image-6.1.0-*-amd64 known; running apt-get update"; apt-get update -qq; }
    pkg=$(apt-cache pkgnames linux-image-6.1.0- | grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V | tail -n 1)
fi
[ -n "$pkg" ] || die "no linux-image-6.1.0-*-amd64 package in the apt sources"
kver=${pkg#linux-image-}

if [ -f "$CACHE_DIR/KERNEL_VERSION" ] && [ "$(cat "$CACHE_DIR/KERNEL_VERSION")" = "$kver" ] \
    && [ -f "$CACHE_DIR/vmlinuz" ] && [ -s "$CACHE_DIR/modules.order" ]; then
    cmp -s /bin/busybox "$CACHE_DIR/busybox" || { cp /bin/busybox "$CACHE_DIR/busybox"; log "refreshed $CACHE_DIR/busybox"; }
    log "cache $CACHE_DIR already holds $kver ($(wc -l <"$CACHE_DIR/modules.order") modules); nothing to do"
    exit 0
fi

mkdir -p "$CACHE_DIR"
work=$(mktemp -d "$CACHE_DIR/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "downloading $pkg"
# apt-get download writes into the current directory; _apt must be able to write there.
chmod 0777 "$work"
(cd "$work" && apt-get download -q "$pkg") || die "apt-get download $pkg failed"
deb=$(ls "$work"/*.deb)
log "extracting $(basename "$deb")"
dpkg-deb -x "$deb" "$work/root"

moddir="$work/root/lib/modules/$kver"
[ -d "$moddir/kernel" ] || die "no modules in $deb"
[ -f "$work/root/boot/vmlinuz-$kver" ] || die "no vmlinuz in $deb"

# --- dependency closure -------------------------------------------------------
# The package ships no modules.dep (depmod runs at install time, and kmod may be
# absent), so read each module's own "depends=" from its .modinfo section.
# Module names treat '-' and '_' as the same character.
norm() { echo "$1" | tr '-' '_'; }
index="$work/index"   # "<normalised name> <path>" for every module in the package
find "$moddir/kernel" -name '*.ko*' | while read -r f; do
    n=$(basename "$f"); n=${n%.xz}; n=${n%.zst}; n=${n%.gz}; n=${n%.ko}
    echo "$(norm "$n") $f"
done >"$index"

mkdir -p "$work/plain"
# Decompressed copy of a module, made once.
plain() {
    out="$work/plain/$1.ko"
    if [ ! -f "$out" ]; then
        src=$(awk -v n="$1" '$1 == n { print $2; exit }' "$index")
        [ -n "$src" ] || return 1
        case "$src" in
            *.ko.xz) xz -dc "$src" >"$out" ;;
            *.ko.zst) zstd -qdc "$src" >"$out" ;;
            *.ko.gz) gzip -dc "$src" >"$out" ;;
            *) cp "$src" "$out" ;;
        esac
    fi
    echo "$out"
}
deps_of() {
    objcopy -O binary --only-section=.modinfo "$1" "$1.modinfo"
    tr '\0' '\n' <"$1.modinfo" | sed -n 's/^depends=//p' | tr ',' ' '
}

# Depth-first post-order gives a load order with dependencies first.
order="$work/order"
: >"$order"
visit() {
    grep -qxF "$1" "$order" && return 0
    f=$(plain "$1") || die "module $1 not in $kver (built in or renamed?)"
    for d in $(deps_of "$f"); do visit "$(norm "$d")"; done
    grep -qxF "$1" "$order" || echo "$1" >>"$order"
}
for m in $MODULES; do
    n=$(norm "$m")
    if ! grep -q "^$n " "$index"; then
        # Built into the kernel: nothing to load.
        grep -q "/$m.ko\$\|/$n.ko\$" "$moddir/modules.builtin" 2>/dev/null \
            && { log "$m is built in"; continue; }
        die "module $m not in $kver"
    fi
    visit "$n"
done

rm -rf "$CACHE_DIR/modules"
mkdir -p "$CACHE_DIR/modules"
: >"$work/modules.order"
while read -r n; do
    cp "$work/plain/$n.ko" "$CACHE_DIR/modules/$n.ko"
    echo "$n.ko" >>"$work/modules.order"
done <"$order"

cp "$work/root/boot/vmlinuz-$kver" "$CACHE_DIR/vmlinuz"
cp /bin/busybox "$CACHE_DIR/busybox"
mv "$work/modules.order" "$CACHE_DIR/modules.order"
echo "$kver" >"$CACHE_DIR/KERNEL_VERSION"

log "kernel $kver -> $CACHE_DIR/vmlinuz"
log "$(wc -l <"$CACHE_DIR/modules.order") modules (load order in modules.order):"
sed 's/^/    /' "$CACHE_DIR/modules.order"
log "done ($(du -shc "$CACHE_DIR/vmlinuz" "$CACHE_DIR/modules" | tail -n 1 | cut -f1) in $CACHE_DIR)"
