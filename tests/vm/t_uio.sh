# UIO without an IOMMU: open, config, BAR and DMA translation (physical addresses from
# pagemap) through uio_pci_generic, with udrv's warning shown; vfio-pci is refused with the
# boot parameter to add.
# vm-iommu: off
# vm-timeout: 150
. /lib-guest.sh

expect_refusal intel_iommu=on udrv bind $E1000E vfio-pci
udrv bind $NVME uio_pci_generic 2>&1 | tee /tmp/bind.out
expect_driver $NVME uio_pci_generic
udrv-vmtest probe $NVME nvme 2>/tmp/warn.out || { cat /tmp/warn.out; fail "probe over UIO"; }
grep -qi "IOMMU" /tmp/warn.out || fail "no warning about the missing IOMMU"
ok "warning shown: $(grep -i IOMMU /tmp/warn.out | head -n1)"
udrv-vmtest nvme-dma $NVME 2>/dev/null
udrv bind $E1000E uio_pci_generic
udrv-vmtest probe $E1000E e1000e 2>/dev/null
udrv unbind $E1000E
expect_driver $E1000E e1000e
udrv unbind $NVME
expect_driver $NVME nvme
