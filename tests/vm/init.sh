#!/bin/sh
# The guest's /init: mount the basics, load the modules, run /test.sh, report, power off.
# The host harness (run.sh) reads "UDRV-VM-RESULT: <status>" from the console.
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/hugepages /dev/pts
mount -t hugetlbfs hugetlbfs /dev/hugepages
mount -t tmpfs tmpfs /tmp
echo 16 >/proc/sys/vm/nr_hugepages
for m in vfio vfio_iommu_type1 vfio-pci uio_pci_generic nvme e1000e virtio_pci virtio_net crc32c_generic ext4; do
	modprobe "$m" || echo "init: modprobe $m failed"
done
# Let the kernel drivers finish probing (nvme namespaces appear asynchronously).
i=0
while [ ! -e /dev/nvme0n1 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
echo "UDRV-VM-BOOTED"
cd /
sh -e /test.sh
rc=$?
if [ $rc -eq 0 ]; then
	echo "UDRV-VM-RESULT: PASS"
else
	echo "UDRV-VM-RESULT: FAIL ($rc)"
fi
sync
poweroff -f
