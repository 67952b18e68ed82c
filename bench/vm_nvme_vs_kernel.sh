#!/bin/sh
# udrv's NVMe driver against the kernel's, side by side in ONE boot of the VM tier's QEMU guest
# (TCG, q35 + intel-iommu, QEMU NVMe with a 64 MiB namespace): 4 KiB random reads over the whole
# namespace at queue depths 1 and 32, `udrv nvme perf` through VFIO, then Debian's fio on the
# kernel's nvme driver with io_uring, io_uring --hipri (polled: nvme.poll_queues=1) and libaio.
# Prints IOPS, CPU time per I/O and IOPS per CPU-second, and udrv's ratio to each kernel engine.
# One boot per QEMU block backend behind the emulated NVMe (VM_BENCH_NVME_AIO, default
# "threads io_uring"): QEMU's default thread pool adds host thread hand-offs to every I/O that
# both drivers wait through; io_uring completes page-cache reads inline (a faster device).
# The guest half, and how CPU time is measured: bench/vm/nvme_vs_kernel.sh.
# Results and caveats: docs/performance.md, "udrv vs the kernel's nvme driver in a guest".
#
#   bench/vm_nvme_vs_kernel.sh [BUILD_DIR]      (default: build-bench, as `make bench`)
#
# Environment: VM_BENCH_SECONDS per run (10, at least 4), VM_BENCH_REPS repetitions of the whole
# sequence in the same boot, pooled (3), VM_BENCH_DEPTHS ("1 32"), VM_BENCH_NVME_AIO (the
# backends, one boot each: "threads io_uring"), VM_BENCH_LOG (keep the guest output there, one
# file per backend: LOG.threads, LOG.io_uring). Needs what the VM tier needs plus fio
# (scripts/deps.sh vm bench). It is a benchmark: never part of `make check`. Per boot, under a
# minute of boot and start-up plus, per repetition, 10 runs of `seconds`: about 7 minutes per
# backend with the defaults.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-bench}
secs=${VM_BENCH_SECONDS:-10}
reps=${VM_BENCH_REPS:-3}
depths=${VM_BENCH_DEPTHS:-1 32}
backends=${VM_BENCH_NVME_AIO:-threads io_uring}

die() {
	echo "vm_nvme_vs_kernel.sh: $*" >&2
	exit 1
}

case $secs in '' | *[!0-9]*) die "VM_BENCH_SECONDS must be whole seconds, not '$secs'" ;; esac
case $reps in '' | *[!0-9]*) die "VM_BENCH_REPS must be a number, not '$reps'" ;; esac
[ "$secs" -ge 4 ] || die "VM_BENCH_SECONDS must be at least 4 (the CPU window is seconds - 2)"
[ "$reps" -ge 1 ] || die "VM_BENCH_REPS must be at least 1"
for b in $backends; do
	case $b in threads | io_uring) ;; *) die "VM_BENCH_NVME_AIO: '$b' is neither threads nor io_uring" ;; esac
done

# Packages: the VM tier's, and fio (in the bench group). As root they are installed; otherwise
# deps.sh names what is missing and how to install it.
"$root/scripts/deps.sh" build vm ||
	die "missing packages for the build or the QEMU guest (see above)"
if ! command -v fio >/dev/null; then
	"$root/scripts/deps.sh" bench ||
		die "fio is missing (Debian package fio): apt-get install fio, or scripts/deps.sh bench as root"
	command -v fio >/dev/null || die "fio is still missing after scripts/deps.sh bench"
fi

# The static udrv for the guest.
if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target udrv-static >/dev/null ||
	die "cannot build the guest's static udrv in $build"
udrv=$build/tests/vm/guest-bin/udrv
[ -x "$udrv" ] || die "$udrv is missing (a sanitizer build has no VM tier: use another BUILD_DIR)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm_nvme_vs_kernel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Debian's fio is dynamically linked: it goes into the guest with every library ldd names and
# the dynamic loader, each at its host path (tests/vm/run.sh copies UDRV_VM_EXTRA's tree).
extra=$tmp/extra
fio=$(command -v fio)
mkdir -p "$extra/usr/bin" "$extra/etc"
cp -L "$fio" "$extra/usr/bin/fio"
libs=$(ldd "$fio" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }')
[ -n "$libs" ] || die "ldd $fio named no libraries"
for l in $libs; do
	mkdir -p "$extra$(dirname "$l")"
	cp -L "$l" "$extra$l"
done
cat >"$extra/etc/udrv-bench.conf" <<EOF
SECS=$secs
REPS=$reps
DEPTHS="$depths"
EOF

# The guest script, with a time limit for these settings: per repetition and depth, udrv twice
# (polled, --interrupts) and three fio runs of $secs seconds plus start-up (fio loads ~60
# libraries under TCG), bind, unbind.
ndepths=$(echo "$depths" | wc -w)
timeout_s=$((180 + reps * ndepths * 5 * (secs + 15)))
sed "s/^# vm-timeout: .*/# vm-timeout: $timeout_s/" "$root/bench/vm/nvme_vs_kernel.sh" \
	>"$tmp/nvme_vs_kernel.sh"

for b in $backends; do
	if pgrep -f qemu-system-x86_64 >/dev/null 2>&1; then
		echo "vm_nvme_vs_kernel.sh: warning: another QEMU is running on this machine; the numbers" \
			"will be noisier (the guest has 2 vCPUs on $(nproc) host CPUs)" >&2
	fi
	echo "vm_nvme_vs_kernel.sh: QEMU aio=$b: one boot, $reps x depths ($depths) x 5 runs of" \
		"${secs} s; host $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); guest time" \
		"limit ${timeout_s} s" >&2
	out=$tmp/out.$b
	if ! UDRV_VM_NVME_AIO=$b UDRV_VM_EXTRA=$extra "$root/tests/vm/run.sh" "$tmp/nvme_vs_kernel.sh" \
		"$udrv" >"$out" 2>&1; then
		cat "$out" >&2
		[ -n "${VM_BENCH_LOG:-}" ] && cp "$out" "$VM_BENCH_LOG.$b"
		die "the guest run with aio=$b failed (its console is above)"
	fi
	[ -n "${VM_BENCH_LOG:-}" ] && cp "$out" "$VM_BENCH_LOG.$b"
	grep "^udrv vm:" "$out" >&2 || true
	echo "== the NVMe's image behind QEMU aio=$b =="
	sed -n 's/^vmtest: \{0,1\}//p' "$out"
	echo
done
