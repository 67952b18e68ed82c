# The guest half of bench/vm_nvme_vs_kernel.sh (run it through that script, not alone): in one
# boot, on the same QEMU NVMe (0000:01:00.0, the whole 64 MiB namespace), 4 KiB random reads at
# each queue depth, with
#   udrv      `udrv nvme perf` through VFIO (polling: its worker thread spins)
#   io_uring  Debian's fio on the kernel's nvme driver, interrupts
#   hipri     fio io_uring --hipri: the kernel polls its poll queue (nvme.poll_queues=1)
#   libaio    fio libaio, interrupts
# IOPS is what each tool reports for its whole run. CPU time is sampled inside the run, in a
# window that starts 1 s after the I/O started and ends 1 s before the run does (setup, library
# loading and teardown left out), two ways (in USER_HZ = 1/100 s units):
#   process     utime + stime of the tool's process, all threads (/proc/PID/stat; their sum is
#               the scheduler's exact runtime); fio runs with --thread so that its job is in
#               that process too
#   guest-wide  both vCPUs' time in the window minus their idle and iowait time (/proc/stat;
#               exact under NO_HZ), so interrupt handling, softirqs and kworkers count too,
#               whichever task they were charged to. Not the sum of /proc/stat's busy columns:
#               those are sampled by the tick, which misses the short bursts between idle
#               periods of an interrupt-driven process (at depth 1 they read 44% busy where
#               fio's process alone had run 64% of the time)
# IOPS per CPU-second = IOPS / (CPU seconds per second in the window). The table is printed with
# a "vmtest: " prefix for the host script to pick up.
#
# Settings come from /etc/udrv-bench.conf (written by the host script): SECS REPS DEPTHS.
# shellcheck shell=sh disable=SC1091
# vm-kernel-args: nvme.poll_queues=1
# vm-timeout: 900
. /lib-guest.sh

SECS=10
REPS=1
DEPTHS="1 32"
[ -f /etc/udrv-bench.conf ] && . /etc/udrv-bench.conf
[ "$SECS" -ge 4 ] || fail "SECS must be at least 4 (1 s settle + window + 1 s margin)"
W=$((SECS - 2))
ENGINES="udrv udrv_irq io_uring hipri libaio"
USER_HZ=100 # /proc/stat and /proc/PID/stat count in USER_HZ, 100 on x86 whatever CONFIG_HZ is
R=/tmp/results
: >$R

say() { echo "vmtest: $*"; }

NCPU=$(nproc)
idle_ticks() { awk '$1 == "cpu" { print $5 + $6; exit }' /proc/stat; }
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo -1; }
uptime_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
disk_reads() { awk '{ print $1 }' /sys/block/nvme0n1/stat; }
nvme_irqs() { awk '/nvme0q/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts; }

# The kernel's nvme driver has the controller again and its namespace is there.
wait_kernel_nvme() {
	i=0
	while [ ! -b /dev/nvme0n1 ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -b /dev/nvme0n1 ] || fail "/dev/nvme0n1 did not come back after udrv unbind"
}

# window PID KIND: wait until PID's I/O has started (udrv: its worker thread exists; fio: the
# namespace's read counter moves), settle 1 s, then sample for W seconds.
# Sets win_cs, win_proc, win_busy. Fails if PID ends first.
window() {
	wpid=$1
	i=0
	if [ "$2" = udrv ]; then
		while [ "$(find "/proc/$wpid/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" -lt 2 ]; do
			kill -0 "$wpid" 2>/dev/null || return 1
			[ $i -lt 600 ] || return 1
			sleep 0.05
			i=$((i + 1))
		done
	else
		r0=$(disk_reads)
		while [ "$(disk_reads)" = "$r0" ]; do
			kill -0 "$wpid" 2>/dev/null || return 1
			[ $i -lt 600 ] || return 1
			sleep 0.05
			i=$((i + 1))
		done
	fi
	sleep 1
	t0=$(uptime_cs)
	p0=$(proc_ticks "$wpid")
	i0=$(idle_ticks)
	sleep $W
	t1=$(uptime_cs)
	p1=$(proc_ticks "$wpid")
	i1=$(idle_ticks)
	kill -0 "$wpid" 2>/dev/null || return 1
	[ "$p0" -ge 0 ] && [ "$p1" -ge 0 ] || return 1
	win_cs=$((t1 - t0))
	win_proc=$((p1 - p0))
	win_busy=$((NCPU * win_cs - (i1 - i0)))
}

# JSON, flattened: the first number after KEY following ANCHOR.
jnum() { tr -d ' \n\t' <"$1" | sed 's/.*"'"$2"'":{//' | sed -n 's/^[^}]*"'"$3"'":\([0-9.e+-]*\).*/\1/p'; }

run_udrv() {
	qd=$1
	name=${2:-udrv}
	flag=""
	[ "$name" = udrv_irq ] && flag=--interrupts
	udrv nvme perf "$NVME" -q "$qd" -o 4096 -w randread -t "$SECS" $flag --json >/tmp/u.json 2>/tmp/u.err &
	pid=$!
	window $pid udrv || {
		wait $pid || true
		cat /tmp/u.err
		fail "udrv nvme perf -q $qd ended before its measurement window"
	}
	wait $pid || {
		cat /tmp/u.json /tmp/u.err
		fail "udrv nvme perf -q $qd failed"
	}
	iops=$(jnum /tmp/u.json total iops)
	[ -n "$iops" ] || {
		cat /tmp/u.json
		fail "no total IOPS in udrv nvme perf --json"
	}
	echo "$qd $name $iops $win_cs $win_proc $win_busy -" >>$R
	say "raw: qd=$qd $name iops=$iops window=${win_cs}cs proc=${win_proc}t busy=${win_busy}t"
}

run_fio() {
	qd=$1
	eng=$2
	case $eng in
	hipri)
		[ "$(cat /sys/block/nvme0n1/queue/io_poll)" = 1 ] ||
			fail "io_poll is off on nvme0n1: no poll queues (nvme.poll_queues=1 not applied?)"
		set -- --ioengine=io_uring --hipri
		;;
	*) set -- --ioengine="$eng" ;;
	esac
	d0=$(disk_reads)
	q0=$(nvme_irqs)
	fio --name="qd$qd" --filename=/dev/nvme0n1 --rw=randread --bs=4k --direct=1 "$@" \
		--iodepth="$qd" --runtime="$SECS" --time_based --thread --norandommap \
		--randrepeat=0 --output-format=json >/tmp/f.json 2>/tmp/f.err &
	pid=$!
	window $pid kernel || {
		wait $pid || true
		cat /tmp/f.err
		fail "fio $eng -q $qd ended before its measurement window"
	}
	wait $pid || {
		cat /tmp/f.json /tmp/f.err
		fail "fio $eng -q $qd failed"
	}
	d1=$(disk_reads)
	q1=$(nvme_irqs)
	iops=$(jnum /tmp/f.json read iops)
	usr=$(tr -d ' \n\t' </tmp/f.json | sed -n 's/.*"usr_cpu":\([0-9.]*\).*/\1/p')
	sys=$(tr -d ' \n\t' </tmp/f.json | sed -n 's/.*"sys_cpu":\([0-9.]*\).*/\1/p')
	[ -n "$iops" ] || {
		cat /tmp/f.json
		fail "no read IOPS in fio's JSON"
	}
	irq=$(awk -v q=$((q1 - q0)) -v d=$((d1 - d0)) 'BEGIN { printf "%.2f", d ? q / d : 0 }')
	echo "$qd $eng $iops $win_cs $win_proc $win_busy $irq" >>$R
	say "raw: qd=$qd fio $eng iops=$iops window=${win_cs}cs proc=${win_proc}t" \
		"busy=${win_busy}t irqs/io=$irq (fio's own job CPU: usr ${usr}% sys ${sys}%)"
}

say "fio: $(fio --version); kernel $(uname -r); $(nproc) vCPUs;" \
	"nvme poll queues: $(cat /sys/module/nvme/parameters/poll_queues)"
say "settings: ${SECS} s per run (window ${W} s), ${REPS} repetition(s), queue depths $DEPTHS"
[ -b /dev/nvme0n1 ] || fail "no /dev/nvme0n1 at boot"
dmesg | grep -e "iommu: Default domain" -e "DMA domain TLB invalidation" | sed 's/^\[[^]]*\] /vmtest: kernel: /' || true
say "nvme0n1: $(cat /sys/block/nvme0n1/size) sectors of $(cat /sys/block/nvme0n1/queue/logical_block_size) B," \
	"io_poll=$(cat /sys/block/nvme0n1/queue/io_poll)"

rep=1
while [ $rep -le "$REPS" ]; do
	for qd in $DEPTHS; do
		udrv bind "$NVME" vfio-pci >/dev/null
		expect_driver "$NVME" vfio-pci >/dev/null
		run_udrv "$qd"
		run_udrv "$qd" udrv_irq
		udrv unbind "$NVME" >/dev/null
		expect_driver "$NVME" nvme >/dev/null
		wait_kernel_nvme
		for e in io_uring hipri libaio; do
			run_fio "$qd" $e
		done
	done
	rep=$((rep + 1))
done

# Pool the repetitions (sum of IOPS, window time and ticks), then the table.
say ""
say "4 KiB random reads, whole 64 MiB namespace, ${SECS} s per run, ${REPS} run(s) each;"
say "CPU: share of one vCPU over the in-run window (process: the tool's threads;"
say "guest-wide: both vCPUs' time minus idle and iowait); 100% = one vCPU for the whole window."
say ""
say "| QD | engine | IOPS | process CPU | CPU µs/IO (process) | IOPS per CPU-s (process) | udrv ÷ engine (process) | guest-wide CPU | IOPS per CPU-s (guest-wide) | udrv ÷ engine (guest-wide) | IRQs/IO |"
say "|---:|--------|-----:|------------:|--------------------:|-------------------------:|------------------------:|---------------:|----------------------------:|---------------------------:|--------:|"
awk -v hz=$USER_HZ -v engines="$ENGINES" -v depths="$DEPTHS" '
	{ k = $1 " " $2; n[k]++; iops[k] += $3; cs[k] += $4; pt[k] += $5; bt[k] += $6; irq[k] = $7 }
	END {
		ne = split(engines, E, " "); nd = split(depths, D, " ")
		for (i = 1; i <= nd; i++) for (j = 1; j <= ne; j++) {
			k = D[i] " " E[j]
			if (!n[k]) continue
			io = iops[k] / n[k]
			up = pt[k] / hz / (cs[k] / 100)  # CPU seconds per second, process
			ub = bt[k] / hz / (cs[k] / 100)  # CPU seconds per second, guest-wide
			ep[k] = up > 0 ? io / up : 0
			eb[k] = ub > 0 ? io / ub : 0
			IO[k] = io; UP[k] = up; UB[k] = ub
		}
		for (i = 1; i <= nd; i++) for (j = 1; j <= ne; j++) {
			k = D[i] " " E[j]; u = D[i] " udrv"
			if (!n[k]) continue
			rp = ep[k] > 0 ? sprintf("%.2f×", ep[u] / ep[k]) : "n/a"
			rb = eb[k] > 0 ? sprintf("%.2f×", eb[u] / eb[k]) : "n/a"
			if (E[j] ~ /^udrv/) { rp = "—"; rb = "—" }
			name = E[j] == "udrv" ? "udrv (VFIO, polled)" : \
			       E[j] == "udrv_irq" ? "udrv (VFIO, --interrupts)" : \
			       E[j] == "hipri" ? "fio io_uring --hipri" : "fio " E[j]
			us = IO[k] > 0 ? UP[k] / IO[k] * 1e6 : 0
			printf "vmtest: | %s | %s | %.0f | %.0f%% | %.1f | %.0f | %s | %.0f%% | %.0f | %s | %s |\n",
				D[i], name, IO[k], UP[k] * 100, us, ep[k], rp,
				UB[k] * 100, eb[k], rb, irq[k]
		}
		# The goal: udrv at least 2x the kernel IOPS per CPU-second at queue depth 1.
		for (m = 1; m <= 2; m++) {
		u = m == 1 ? "1 udrv" : "1 udrv_irq"
		if (!n[u]) continue
		for (j = 1; j <= ne; j++) {
			k = "1 " E[j]
			if (E[j] ~ /^udrv/ || !n[k]) continue
			printf "vmtest: goal at QD 1, %s vs %s: %.2f× (process), %.2f× (guest-wide): %s\n",
				m == 1 ? "udrv polled" : "udrv --interrupts", E[j], ep[u] / ep[k], eb[u] / eb[k],
				(ep[u] >= 2 * ep[k] && eb[u] >= 2 * eb[k]) ? "met (≥ 2×)" : \
				(ep[u] >= 2 * ep[k] || eb[u] >= 2 * eb[k]) ? "met by one measure only" : "NOT met (< 2×)"
		}
		}
	}' $R
