#!/bin/sh
# Boot a built image under qemu (software emulation, q35) and print the time from starting qemu
# to the console's first screen on the serial line.
#
#   host-image/boot-time.sh OUT_DIR [kernel|bios|uefi]    (default: kernel)
#
# kernel: OUT_DIR/vmlinuz + initrd.img with OUT_DIR/cmdline; bios: OUT_DIR/phyllome.iso on
# SeaBIOS; uefi: the ISO on Debian's OVMF (package ovmf). Exits 1 if no first screen within
# TIMEOUT seconds (default 300). The serial transcript is left in OUT_DIR/boot-MODE.log.
set -eu
[ $# -ge 1 ] || { echo "usage: host-image/boot-time.sh OUT_DIR [kernel|bios|uefi]" >&2; exit 2; }
OUT_DIR=$1
MODE=${2:-kernel}
TIMEOUT=${TIMEOUT:-300}
log="$OUT_DIR/boot-$MODE.log"
: >"$log"
set -- -accel tcg -machine q35 -cpu max -m 2048 -smp 2 -nodefaults -display none -no-reboot \
    -serial "file:$log"
case $MODE in
    kernel) set -- "$@" -kernel "$OUT_DIR/vmlinuz" -initrd "$OUT_DIR/initrd.img" \
        -append "$(cat "$OUT_DIR/cmdline")" ;;
    bios) set -- "$@" -cdrom "$OUT_DIR/phyllome.iso" ;;
    uefi)
        [ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] \
            || { echo "boot-time.sh: no OVMF firmware (apt-get install ovmf)" >&2; exit 2; }
        vars=$(mktemp)
        cp /usr/share/OVMF/OVMF_VARS_4M.fd "$vars"
        set -- "$@" -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
            -drive "if=pflash,format=raw,file=$vars" -cdrom "$OUT_DIR/phyllome.iso" ;;
    *) echo "boot-time.sh: unknown mode $MODE" >&2; exit 2 ;;
esac
start=$(date +%s%N)
qemu-system-x86_64 "$@" &
qemu=$!
trap 'kill "$qemu" 2>/dev/null || true; [ -z "${vars:-}" ] || rm -f "$vars"' EXIT
# The overview's tab bar is the console's first screen.
while ! grep -q 'Overview' "$log"; do
    if ! kill -0 "$qemu" 2>/dev/null; then echo "boot-time.sh: qemu exited (see $log)" >&2; exit 1; fi
    if [ $(( ($(date +%s%N) - start) / 1000000000 )) -ge "$TIMEOUT" ]; then
        echo "boot-time.sh: no first screen in ${TIMEOUT}s (see $log)" >&2; exit 1
    fi
    sleep 0.5
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf 'boot-time.sh: %s: first screen %d.%d s after qemu started\n' "$MODE" $((ms / 1000)) $((ms % 1000 / 100))
