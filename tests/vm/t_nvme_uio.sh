# udrv's NVMe driver through uio_pci_generic in a guest without an IOMMU: identify and verify
# work on physical addresses (hugepages), with udrv's warning that nothing confines the DMA.
# vm-iommu: off
# vm-timeout: 240
. /lib-guest.sh

echo 64 >/proc/sys/vm/nr_hugepages
udrv bind $NVME uio_pci_generic
expect_driver $NVME uio_pci_generic
udrv nvme identify $NVME >/tmp/id.out 2>/tmp/warn.out || { cat /tmp/warn.out; fail "identify over UIO"; }
cat /tmp/id.out
grep -q "QEMU NVMe Ctrl" /tmp/id.out || fail "udrv nvme identify printed no QEMU model"
grep -qi "IOMMU" /tmp/warn.out || fail "no warning about the missing IOMMU"
ok "udrv nvme identify over UIO, warning shown: $(grep -i IOMMU /tmp/warn.out | head -n1)"
udrv nvme verify $NVME -q 16 -o 64K --count 65536 --yes 2>/dev/null || fail "udrv nvme verify over UIO"
ok "udrv nvme verify over UIO: 32 MiB written, read back and compared"
udrv unbind $NVME
expect_driver $NVME nvme
