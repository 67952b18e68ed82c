#!/bin/sh
# Boot the VM tier's guest and run one test script in it.
#
#   run.sh TEST.sh BINARY...
#
# The guest is q35 with an emulated Intel IOMMU, an NVMe on a PCIe root port, an e1000e and a
# modern virtio-net on an isolated QEMU hub (no host network, ever). The BINARYs (static) are
# copied to the guest's /bin; TEST.sh runs as /test.sh under `sh -e`.
#
# Directives in TEST.sh's comments:
#   # vm-iommu: off                   boot without intel-iommu
#   # vm-kernel-args: ARGS            extra kernel command line
#   # vm-timeout: SECONDS             guest time limit (default 150)
#   # vm-qmp-on: MARKER JSON          when the guest prints MARKER, send JSON to QEMU's QMP
#
# UDRV_VM_VERBOSE=1 prints the guest console on success too; UDRV_VM_KVM=1 tries KVM.
# UDRV_VM_EXTRA=DIR copies DIR's tree into the guest's root as well (after the BINARYs), e.g. a
# dynamically linked program with its libraries and loader at their host paths (the benchmark
# bench/vm_nvme_vs_kernel.sh brings Debian's fio that way). Unset: nothing more is copied.
# UDRV_VM_NVME_AIO=threads|io_uring picks QEMU's block backend for the NVMe's image (unset:
# QEMU's default, threads, as the tests use). io_uring makes a faster device: page-cache reads
# complete inline instead of through a thread-pool worker (bench/vm_nvme_vs_kernel.sh uses both).
#
# Exit: 0 when the guest printed "UDRV-VM-RESULT: PASS", else 1 with the guest's log printed.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
test_script=$1
shift
name=$(basename "$test_script" .sh)

die() {
	echo "udrv vm: $name: $*" >&2
	exit 1
}

command -v qemu-system-x86_64 >/dev/null ||
	die "qemu-system-x86_64 is missing: apt-get install qemu-system-x86 (make check does)"
command -v socat >/dev/null || die "socat is missing: apt-get install socat"
out=$("$HERE/guest.sh") || die "could not assemble the guest (see above)"
kernel=$(echo "$out" | sed -n 1p)
base=$(echo "$out" | sed -n 2p)

work=$(mktemp -d "${TMPDIR:-/tmp}/udrv-vm-$name.XXXXXX")
qpid=""
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid" 2>/dev/null || true
		sleep 0.5
		kill -9 "$qpid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The per-test overlay: the kernel unpacks concatenated cpio archives in order.
mkdir -p "$work/ov/bin"
cp "$test_script" "$work/ov/test.sh"
cp "$HERE/lib-guest.sh" "$work/ov/lib-guest.sh"
for b in "$@"; do
	[ -x "$b" ] || die "test binary $b is missing: build the project first"
	cp "$b" "$work/ov/bin/"
done
if [ -n "${UDRV_VM_EXTRA:-}" ]; then
	[ -d "$UDRV_VM_EXTRA" ] || die "UDRV_VM_EXTRA=$UDRV_VM_EXTRA is not a directory"
	cp -a "$UDRV_VM_EXTRA/." "$work/ov/"
fi
(cd "$work/ov" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/overlay.cpio.gz"
cat "$base" "$work/overlay.cpio.gz" >"$work/initrd"

directive() {
	sed -n "s/^# $1: //p" "$test_script"
}
timeout_s=$(directive vm-timeout)
timeout_s=${timeout_s:-150}
iommu=$(directive vm-iommu)
kargs="console=ttyS0 panic=-1 loglevel=4 $(directive vm-kernel-args)"
iommu_dev=""
if [ "$iommu" != "off" ]; then
	iommu_dev="-device intel-iommu,intremap=on,caching-mode=on"
	kargs="$kargs intel_iommu=on"
fi
accel="-machine q35,accel=tcg -cpu max"
if [ "${UDRV_VM_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then
	accel="-machine q35,accel=kvm,kernel-irqchip=split -cpu host"
fi

truncate -s 64M "$work/nvme.img"
log="$work/guest.log"
: >"$log"
# -nodefaults: no default NIC (which would reach the host network) and no VGA.
# shellcheck disable=SC2086
# timeout(1) kills QEMU by itself even if this script is killed (e.g. by CTest's TIMEOUT).
timeout -k 5 $((timeout_s + 20)) qemu-system-x86_64 $accel -m 1G -smp 2 -nodefaults -no-user-config -display none \
	-serial "file:$log" -monitor none -no-reboot \
	-kernel "$kernel" -initrd "$work/initrd" -append "$kargs" \
	$iommu_dev \
	-device pcie-root-port,id=rp1,chassis=1,slot=1 \
	-drive "file=$work/nvme.img,if=none,id=nvm,format=raw${UDRV_VM_NVME_AIO:+,aio=$UDRV_VM_NVME_AIO}" \
	-device nvme,serial=deadbeef,drive=nvm,bus=rp1,id=nvme0 \
	-netdev hubport,id=n0,hubid=0 -device e1000e,netdev=n0,romfile=,id=nic0 \
	-netdev hubport,id=n1,hubid=0 \
	-device virtio-net-pci,netdev=n1,iommu_platform=on,disable-legacy=on,romfile=,id=nic1 \
	-qmp "unix:$work/qmp.sock,server=on,wait=off" \
	>"$work/qemu.out" 2>&1 &
qpid=$!

qmp() {
	(printf '{"execute":"qmp_capabilities"}\n%s\n' "$1"; sleep 1) |
		socat - "UNIX-CONNECT:$work/qmp.sock" >>"$work/qmp.log" 2>&1 || true
}

directive vm-qmp-on >"$work/qmp-actions"
start=$(date +%s)
status=""
while kill -0 "$qpid" 2>/dev/null; do
	if grep -q "UDRV-VM-RESULT:" "$log"; then
		break
	fi
	while IFS= read -r action; do
		[ -n "$action" ] || continue
		marker=${action%% *}
		json=${action#* }
		if grep -q "$marker" "$log" && ! grep -qxF "$marker" "$work/qmp-done" 2>/dev/null; then
			echo "$marker" >>"$work/qmp-done"
			echo "udrv vm: $name: guest said $marker; QMP $json" >>"$work/harness.log"
			qmp "$json"
		fi
	done <"$work/qmp-actions"
	if [ $(($(date +%s) - start)) -ge "$timeout_s" ]; then
		status="timed out after ${timeout_s}s"
		break
	fi
	sleep 0.2
done
# Give the guest a moment to power off by itself, then make sure QEMU is gone.
i=0
while kill -0 "$qpid" 2>/dev/null && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
cleanup_qemu_rc=0
wait "$qpid" 2>/dev/null || cleanup_qemu_rc=$?
qpid=""

elapsed=$(($(date +%s) - start))
if grep -q "UDRV-VM-RESULT: PASS" "$log"; then
	echo "udrv vm: $name: PASS in ${elapsed}s"
	if [ "${UDRV_VM_VERBOSE:-0}" = 1 ]; then
		cat "$log"
	else
		grep "^vmtest:" "$log" || true
	fi
	exit 0
fi
[ -n "$status" ] || status=$(grep -o "UDRV-VM-RESULT: .*" "$log" || echo "guest ended without a result (QEMU exit $cleanup_qemu_rc)")
echo "udrv vm: $name: FAIL: $status" >&2
echo "---- QEMU output ----" >&2
cat "$work/qemu.out" >&2
[ -f "$work/harness.log" ] && cat "$work/harness.log" >&2
[ -f "$work/qmp.log" ] && { echo "---- QMP ----" >&2; cat "$work/qmp.log" >&2; }
echo "---- guest console ----" >&2
cat "$log" >&2
exit 1
