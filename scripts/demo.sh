#!/bin/sh
# make demo: the main job on a fresh machine, as an ordinary user or root. Until the NVMe
# driver lands, it runs udrv's sample device (a DMA copy engine emulated in another process
# and served over vfio-user) under its driver, then shows what udrv sees on this machine.
set -eu
BUILD=${1:-build}
dir=$(mktemp -d "${TMPDIR:-/tmp}/udrv-demo.XXXXXX")
emu_pid=""
cleanup() {
	[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

echo "== 1. start the sample device (DMA copy engine) in its own process, served over vfio-user"
"$BUILD/examples/udrv-dmacopy-emu" --socket "$dir/dmacopy.sock" &
emu_pid=$!
i=0
while [ ! -S "$dir/dmacopy.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done

echo "== 2. drive it: 100000 copies of 4 KiB, every byte checked"
"$BUILD/examples/udrv-dmacopy" "vfio-user:$dir/dmacopy.sock" --copies 100000 --size 4096

echo "== 3. PCI devices on this machine, their drivers and IOMMU groups (udrv list)"
"$BUILD/tools/udrv" list
