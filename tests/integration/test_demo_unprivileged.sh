#!/bin/sh
# `make demo`'s path as an ordinary user with no hugepages reserved, shortened: the emulated
# controller, identify, verify and perf must all work without root. Run by ctest as root
# (it drops to nobody) or as any other user (as is). Usage: test_demo_unprivileged.sh BUILD
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() {
	env DEMO_PERF_SECONDS=2 DEMO_SIZE=64M TMPDIR=/tmp sh "$src/scripts/demo.sh" "$build"
}
if [ "$(id -u)" -eq 0 ]; then
	# nobody must reach the build tree; say so instead of failing obscurely.
	if ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$build/tools/udrv"; then
		echo "SKIP: user nobody cannot run $build/tools/udrv (directory permissions)"
		exit 77
	fi
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		env DEMO_PERF_SECONDS=2 DEMO_SIZE=64M TMPDIR=/tmp HOME=/tmp \
		sh "$src/scripts/demo.sh" "$build" >"$out" 2>&1 || { cat "$out"; exit 1; }
	user=nobody
else
	run >"$out" 2>&1 || { cat "$out"; exit 1; }
	user=$(id -un)
fi
cat "$out"
grep -q "udrv emulated NVMe" "$out" || { echo "FAIL: identify printed no model"; exit 1; }
grep -qi "iops" "$out" || { echo "FAIL: perf printed no IOPS"; exit 1; }
grep -Eq "^cpu: .*: [0-9]+\.[0-9]+ us of CPU per I/O" "$out" ||
	{ echo "FAIL: perf printed no CPU time per I/O"; exit 1; }
grep -q "everything ran as $user" "$out" || { echo "FAIL: the demo did not finish"; exit 1; }
echo "ok: the demo ran as $user"
