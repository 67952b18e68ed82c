#!/bin/sh
# The harness never passes silently: a kernel package that cannot be had and a guest that
# hangs both fail with a clear message, and no QEMU is left running afterwards.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
fails=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo 'true' >"$work/t_ok.sh"
if UDRV_VM_KERNEL_PKG=linux-image-0.0.0-udrv-bogus "$HERE/run.sh" "$work/t_ok.sh" >"$work/out" 2>&1; then
	echo "FAIL: a missing kernel package passed"; fails=$((fails + 1))
elif grep -q "cannot download linux-image-0.0.0-udrv-bogus" "$work/out"; then
	echo "ok: missing kernel package: $(grep 'cannot download' "$work/out")"
else
	echo "FAIL: missing kernel package without a clear message:"; cat "$work/out"; fails=$((fails + 1))
fi

printf '# vm-timeout: 25\necho guest hangs now\nsleep 100000\n' >"$work/t_hang.sh"
if "$HERE/run.sh" "$work/t_hang.sh" >"$work/out" 2>&1; then
	echo "FAIL: a hung guest passed"; fails=$((fails + 1))
elif grep -q "timed out after 25s" "$work/out" && grep -q "guest hangs now" "$work/out"; then
	echo "ok: hung guest: $(grep 'timed out' "$work/out")"
else
	echo "FAIL: hung guest without a clear message:"; cat "$work/out"; fails=$((fails + 1))
fi
sleep 1
if pgrep -f "udrv-vm-t_hang" >/dev/null; then
	echo "FAIL: QEMU still running after the harness returned"; fails=$((fails + 1))
	pkill -f "udrv-vm-t_hang"
else
	echo "ok: no QEMU left running"
fi
echo "$((3 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
