#!/bin/sh
# Install the Debian packages a target needs, when missing. Usage: scripts/deps.sh GROUP...
# Groups: build (library, CLI, unit/integration tests), vm (the QEMU guest tier),
#         bench (DPDK for the ring comparison, valgrind, fio for bench/vm_nvme_vs_kernel.sh).
# As root it runs apt-get; otherwise it prints the command to run and fails.
set -eu

pkgs_build="build-essential cmake pkg-config clang libclang-rt-14-dev libpci-dev pci.ids libjson-c-dev libnvme-dev liburing-dev"
pkgs_vm="qemu-system-x86 busybox-static cpio kmod socat"
pkgs_bench="libdpdk-dev valgrind fio"

want=""
for g in "$@"; do
	eval "want=\"\$want \$pkgs_$g\""
done

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "udrv: missing Debian packages:$missing" >&2
	echo "udrv: install them with: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "udrv: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
