#!/bin/sh
# make demo: the main job on a fresh machine, as an ordinary user or root, with no hugepages:
# an NVMe controller emulated in its own process and served over vfio-user, driven by udrv's
# NVMe driver - identify, verify every block written, then a 10-second benchmark.
# Usage: scripts/demo.sh [BUILD_DIR]; DEMO_PERF_SECONDS and DEMO_SIZE shorten it.
set -eu
BUILD=${1:-build}
SECONDS_PERF=${DEMO_PERF_SECONDS:-10}
SIZE=${DEMO_SIZE:-1G}
udrv="$BUILD/tools/udrv"
dir=$(mktemp -d "${TMPDIR:-/tmp}/udrv-demo.XXXXXX")
emu_pid=""
cleanup() {
	[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

dev="vfio-user:$dir/nvme.sock"
echo "== 1. an NVMe controller ($SIZE in RAM), emulated in its own process, served over vfio-user"
"$udrv" emu nvme --socket "$dir/nvme.sock" --size "$SIZE" --queues 4 &
emu_pid=$!
i=0
while [ ! -S "$dir/nvme.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done

echo
echo "== 2. udrv nvme identify $dev"
"$udrv" nvme identify "$dev"

echo
echo "== 3. udrv nvme verify: every block written with its LBA-tagged pattern, read back, compared"
"$udrv" nvme verify "$dev" -q 32 -o 128K

echo
echo "== 4. udrv nvme perf: 4 KiB random reads, queue depth 32, ${SECONDS_PERF} s"
"$udrv" nvme perf "$dev" -q 32 -o 4096 -w randread -t "$SECONDS_PERF"

echo
echo "== done: stopping the emulated controller (everything ran as $(id -un), without hugepages)"
