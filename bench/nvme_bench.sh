#!/bin/sh
# The NVMe driver's cost per I/O and IOPS against the emulated controller, in one command:
# builds bench/nvme_bench and the udrv CLI (if needed), serves `udrv emu nvme` on a temporary
# socket in the background (pinned to CPU 1, the bench to CPU 0), prints the rdtsc table, counts
# instructions with callgrind at depths 1 and 32, prints a summary and stops the controller.
#
#   bench/nvme_bench.sh [BUILD_DIR]          (default: build-bench, as `make bench`)
#
# Environment: NVME_BENCH_SECONDS (per row and repetition, 2), NVME_BENCH_REPS (3),
# NVME_BENCH_IOS (I/Os counted under callgrind, 100000), NVME_BENCH_DEPTHS (1,32),
# NVME_BENCH_OUT (where the callgrind files stay; default BUILD_DIR/nvme_bench).
# Needs valgrind (Debian: valgrind) for the instruction counts; without it they are skipped.
# See docs/performance.md, "NVMe driver", for what the columns mean.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-bench}
seconds=${NVME_BENCH_SECONDS:-2}
reps=${NVME_BENCH_REPS:-3}
ios=${NVME_BENCH_IOS:-100000}
depths=${NVME_BENCH_DEPTHS:-1,32}
out=${NVME_BENCH_OUT:-$build/nvme_bench}

# Build: configure with the benchmarks on unless the build directory already has them.
if ! grep -q '^UDRV_BENCH:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
	cmake -S "$root" -B "$build" -DUDRV_BENCH=ON >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target nvme_bench udrv-cli >/dev/null
bench=$build/bench/nvme_bench
udrv=$build/tools/udrv

# Two CPUs or more: the controller's threads on CPU 1, the driver on CPU 0.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	on_emu="taskset -c 1"
	on_drv="taskset -c 0"
else
	on_emu=""
	on_drv=""
fi

tmp=$(mktemp -d /tmp/nvme_bench.XXXXXX)
sock=$tmp/nvme.sock
emu=""
cleanup() {
	if [ -n "$emu" ]; then
		kill -CONT "$emu" 2>/dev/null || true # in case a probe left it stopped
		kill -TERM "$emu" 2>/dev/null || true
		wait "$emu" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 256 MiB in RAM with 4 KiB blocks: random writes touch all of it, so keep it small.
$on_emu "$udrv" emu nvme --socket "$sock" --size 256M --block-size 4096 2>"$tmp/emu.log" &
emu=$!
i=0
while [ ! -S "$sock" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$emu" 2>/dev/null; then
		echo "nvme_bench.sh: the emulated controller did not start:" >&2
		cat "$tmp/emu.log" >&2
		exit 1
	fi
	sleep 0.05
done
dev=vfio-user:$sock

echo "== rdtsc: driver-side cycles per I/O, IOPS and latency (reads and writes)"
$on_drv "$bench" -t "$seconds" -r "$reps" -d "$depths" -w "$dev"

if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
	echo
	echo "nvme_bench.sh: valgrind is not installed (apt-get install valgrind):" \
		"instruction counts skipped" >&2
	exit 0
fi

# Inclusive Ir of function $2 in callgrind file $1 (0 if absent).
incl() {
	callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
		awk -v f=":$2 " 'index($0, f) { gsub(",", "", $1); print $1; found = 1; exit }
			END { if (!found) print 0 }'
}

mkdir -p "$out"
summary=$tmp/summary
: >"$summary"
for op in read write; do
	[ $op = write ] && opflag=-W || opflag=
	for d in $(echo "$depths" | tr ',' ' '); do
		f=$out/callgrind.$op.qd$d
		rm -f "$f" "$f".*
		echo
		echo "== callgrind: $ios ${op}s at depth $d ($f.1 = I/O, .2 = empty polls, .3 = idle polls)"
		$on_drv valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$f" \
			"$bench" --callgrind "$ios" -d "$d" ${opflag:+"$opflag"} --emu-pid "$emu" "$dev" \
			>"$tmp/cg.txt" 2>"$tmp/cg.err" || {
			cat "$tmp/cg.err" >&2
			exit 1
		}
		line=$(grep '^callgrind:' "$tmp/cg.txt")
		echo "$line"
		val() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
		n=$(val ios)
		empty=$(val empty_polls)
		eprobe=$(val empty_probe)
		iprobe=$(val idle_probe)
		if [ "$(val client_requests)" != yes ]; then
			echo "nvme_bench.sh: nvme_bench was built without <valgrind/callgrind.h>;" \
				"counting with --toggle-collect (empty polls included, not separated)" >&2
			$on_drv valgrind --tool=callgrind --collect-atstart=no \
				--toggle-collect="udrv_nvme_$op" \
				--toggle-collect=udrv_nvme_process_completions \
				--callgrind-out-file="$f.1" "$bench" --callgrind "$ios" -d "$d" \
				${opflag:+"$opflag"} "$dev" >/dev/null 2>"$tmp/cg.err" || {
				cat "$tmp/cg.err" >&2
				exit 1
			}
			eprobe=0
			iprobe=0
		fi
		callgrind_annotate --threshold=100 "$f.1" 2>/dev/null | sed -n '/file:function/,/^$/p' |
			grep -v -e '^-' -e '^$' -e '^ *\. ' | head -16
		sub=$(incl "$f.1" "udrv_nvme_$op")
		cpl=$(incl "$f.1" udrv_nvme_process_completions)
		if [ "$eprobe" -gt 0 ]; then
			e_ir=$(incl "$f.2" udrv_nvme_process_completions)
		else
			e_ir=0
		fi
		if [ "$iprobe" -gt 0 ]; then
			i_ir=$(incl "$f.3" udrv_nvme_process_completions)
		else
			i_ir=0
		fi
		echo "$op $d $n $empty $sub $cpl $eprobe $e_ir $iprobe $i_ir" >>"$summary"
	done
done

echo
echo "== Summary: instructions (callgrind Ir) per I/O in the driver calls"
echo
echo "| op    | depth | per I/O incl. empty polls | empty polls/IO (under valgrind) | Ir/empty poll | per I/O excl. empty polls | submit | complete | Ir/idle poll |"
echo "|-------|------:|--------------------------:|--------------------------------:|--------------:|--------------------------:|-------:|---------:|-------------:|"
awk '{
	op = $1; d = $2; n = $3; empty = $4; sub_ir = $5; cpl = $6
	ep = $7; eir = $8; ip = $9; iir = $10
	e = ep > 0 ? eir / ep : 0
	idle = ip > 0 ? iir / ip : 0
	incl = (sub_ir + cpl) / n
	if (ep > 0) {
		excl = sprintf("%.0f", (sub_ir + cpl - empty * e) / n)
		comp = sprintf("%.0f", (cpl - empty * e) / n)
		es = sprintf("%.1f", e)
	} else {
		excl = "n/a"; comp = "n/a"; es = "n/a"
	}
	printf "| %-5s | %5d | %25.0f | %31.2f | %13s | %25s | %6.0f | %8s | %12s |\n",
		op, d, incl, empty / n, es, excl, sub_ir / n, comp,
		(ip > 0 ? sprintf("%.1f", idle) : "n/a")
}' "$summary"
echo
echo "submit = udrv_nvme_read/write inclusive; complete = process_completions calls that"
echo "reaped something (the empty polls' share removed at the probed cost per empty poll)."
echo "callgrind files: $out (callgrind_annotate --inclusive=yes FILE.1)"
