# Hot-unplug: QMP device_del of the NVMe while udrv holds it through VFIO. udrv receives the
# kernel's request on the REQ eventfd, closes the device, and the kernel removes it.
# vm-timeout: 120
# vm-qmp-on: READY-FOR-UNPLUG {"execute":"device_del","arguments":{"id":"nvme0"}}
. /lib-guest.sh

udrv bind $NVME vfio-pci
expect_driver $NVME vfio-pci
udrv-vmtest hotplug $NVME
i=0
while [ -e /sys/bus/pci/devices/$NVME ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ ! -e /sys/bus/pci/devices/$NVME ] || fail "the kernel did not remove $NVME after udrv released it"
dmesg | grep -i "Relaying device request" | sed 's/^/vmtest: dmesg: /'
ok "the kernel removed $NVME"
