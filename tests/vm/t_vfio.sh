# The real VFIO path, IOMMU translating: for the NVMe, the e1000e and the virtio-net, `udrv list`
# shows them with their groups, `udrv bind` hands them to vfio-pci (refused while in use), the
# device opens through udrv_device_open, config space, BAR0, DMA and MSI-X work, and `udrv unbind`
# gives each back to a kernel driver that works again. Also: UIO under a translating IOMMU is
# blocked by DMAR rather than corrupting memory.
# vm-timeout: 200
. /lib-guest.sh

udrv list
udrv list --json >/tmp/list.json
for a in $NVME $E1000E $VIRTIO; do
	grep -q "\"$a\"" /tmp/list.json || fail "udrv list --json lacks $a"
	g=$(basename "$(readlink /sys/bus/pci/devices/$a/iommu_group)")
	udrv list | grep "$a" | grep -qw "$g" || fail "udrv list does not show $a in group $g"
	ok "udrv list shows $a in IOMMU group $g"
done

# In use: a mounted filesystem on the NVMe, an interface that is up on the e1000e.
mke2fs -q /dev/nvme0n1
mount -t ext4 /dev/nvme0n1 /mnt
expect_refusal mounted udrv bind $NVME vfio-pci
expect_driver $NVME nvme
umount /mnt
ifname=$(ls /sys/bus/pci/devices/$E1000E/net/)
ip link set "$ifname" up
expect_refusal up udrv bind $E1000E vfio-pci
ip link set "$ifname" down

for spec in "$NVME nvme" "$E1000E e1000e" "$VIRTIO virtio-net"; do
	set -- $spec
	udrv bind "$1" vfio-pci
	expect_driver "$1" vfio-pci
	g=$(basename "$(readlink /sys/bus/pci/devices/$1/iommu_group)")
	[ -c "/dev/vfio/$g" ] || fail "/dev/vfio/$g missing after bind"
	udrv-vmtest probe "$1" "$2"
done
udrv-vmtest nvme-dma $NVME

# Two devices sharing one DMA domain share one VFIO container: covered by probing in turn;
# now give everything back and check the kernel drivers work again.
udrv unbind $NVME
expect_driver $NVME nvme
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
dd if=/dev/nvme0n1 of=/dev/null bs=4096 count=16 2>/dev/null || fail "kernel nvme cannot read"
ok "kernel nvme driver reads /dev/nvme0n1 again"
udrv unbind $E1000E
expect_driver $E1000E e1000e
[ -n "$(ls /sys/bus/pci/devices/$E1000E/net/ 2>/dev/null)" ] || fail "e1000e interface not back"
ip link set "$(ls /sys/bus/pci/devices/$E1000E/net/)" up || fail "e1000e interface cannot go up"
ok "e1000e interface back and up"
ip link set "$(ls /sys/bus/pci/devices/$E1000E/net/)" down
udrv unbind $VIRTIO
expect_driver $VIRTIO virtio-pci

# UIO while the IOMMU translates: the device's physical-address DMA must be blocked.
udrv bind $NVME uio_pci_generic 2>&1
expect_driver $NVME uio_pci_generic
udrv-vmtest nvme-dma uio:$NVME expect-blocked
dmesg | grep -i "DMAR.*fault" | head -n 3 | sed 's/^/vmtest: dmesg: /'
dmesg | grep -qi "DMAR.*fault" || fail "no DMAR fault logged for the blocked DMA"
ok "DMAR fault logged: the IOMMU blocked UIO's physical-address DMA"
udrv unbind $NVME
expect_driver $NVME nvme
