# udrv's NVMe driver on QEMU's NVMe through real VFIO, the IOMMU translating: identify, verify,
# a short perf, and byte-for-byte agreement with the kernel's nvme driver in both directions;
# DMA aimed at memory udrv did not map is blocked by the IOMMU; `udrv unbind` gives the
# controller back to the kernel.
# vm-timeout: 300
. /lib-guest.sh

udrv bind $NVME vfio-pci
expect_driver $NVME vfio-pci
udrv nvme identify $NVME | tee /tmp/id.out
grep -q "QEMU NVMe Ctrl" /tmp/id.out || fail "udrv nvme identify printed no QEMU model"
ok "udrv nvme identify through VFIO"
udrv nvme identify $NVME --json >/tmp/id.json
grep -q '"QEMU NVMe Ctrl' /tmp/id.json || fail "udrv nvme identify --json"
ok "udrv nvme identify --json"

dmesg -c >/dev/null
udrv-vmtest nvme-confine $NVME || fail "confinement"
sleep 0.2
dmesg | grep -i "DMAR.*fault" | head -n 3 | sed 's/^/vmtest: dmesg: /'
dmesg | grep -qi "DMAR.*fault" || fail "no DMAR fault: the DMA to an unmapped IOVA was not blocked"
ok "the IOMMU blocked the controller's DMA to an IOVA udrv never mapped"

udrv nvme verify $NVME -q 16 -o 64K --yes || fail "udrv nvme verify over VFIO"
ok "udrv nvme verify: every block of the namespace written, read back and compared"
udrv nvme perf $NVME -q 16 -o 4096 -w randrw -t 3 --yes | tee /tmp/perf.out
grep -q "^total" /tmp/perf.out || fail "udrv nvme perf printed no total"
ok "udrv nvme perf: $(grep '^total' /tmp/perf.out | tr -s ' ')"
grep -Eq "^cpu: .*: [0-9]+\.[0-9]+ us of CPU per I/O" /tmp/perf.out ||
	fail "udrv nvme perf printed no CPU time per I/O"
ok "udrv nvme perf: $(grep '^cpu:' /tmp/perf.out)"

# udrv writes 4 MiB of random bytes; the kernel's driver reads them back.
head -c 4194304 /dev/urandom >/tmp/a
udrv nvme write $NVME --lba 2048 --count 8192 -f /tmp/a || fail "udrv nvme write"
udrv unbind $NVME
expect_driver $NVME nvme
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
want=$(sha256sum </tmp/a | cut -d' ' -f1)
got=$(dd if=/dev/nvme0n1 bs=512 skip=2048 count=8192 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "the kernel read $got where udrv wrote $want"
ok "the kernel's nvme driver reads back what udrv wrote (sha256 $want)"

# The kernel writes; udrv reads it back.
head -c 4194304 /dev/urandom >/tmp/b
dd if=/tmp/b of=/dev/nvme0n1 bs=4096 seek=3072 conv=fsync 2>/dev/null || fail "kernel write"
udrv bind $NVME vfio-pci
expect_driver $NVME vfio-pci
udrv nvme read $NVME --lba 24576 --count 8192 -f /tmp/c || fail "udrv nvme read"
cmp /tmp/b /tmp/c || fail "udrv read other bytes than the kernel wrote"
ok "udrv reads back what the kernel's nvme driver wrote ($(sha256sum </tmp/b | cut -c1-16)...)"

udrv unbind $NVME
expect_driver $NVME nvme
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
dd if=/dev/nvme0n1 of=/dev/null bs=4096 count=16 2>/dev/null || fail "kernel nvme cannot read"
ok "the kernel's nvme driver has the controller back"
