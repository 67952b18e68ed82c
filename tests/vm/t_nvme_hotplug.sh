# Hot-unplug under load: QMP device_del of the NVMe while `udrv nvme perf` drives it through
# VFIO. The driver sees the kernel's request, fails the outstanding I/O with -ENODEV, perf
# exits saying so and lets the device go, and the kernel removes it. Before that: a register
# access after the kernel revoked the BAR mapping does not kill the process (SIGBUS guard).
# vm-timeout: 150
# vm-qmp-on: READY-FOR-UNPLUG {"execute":"device_del","arguments":{"id":"nvme0"}}
. /lib-guest.sh

udrv bind $NVME vfio-pci
expect_driver $NVME vfio-pci
udrv-vmtest sigbus $NVME || fail "the SIGBUS guard"

(sleep 4; echo "vmtest: READY-FOR-UNPLUG") &
start=$(date +%s)
if udrv nvme perf $NVME -q 16 -o 4096 -w randrw -t 60 --yes >/tmp/perf.out 2>&1; then
	cat /tmp/perf.out
	fail "udrv nvme perf succeeded although its device was unplugged"
fi
took=$(($(date +%s) - start))
sed 's/^/vmtest: perf: /' /tmp/perf.out | tail -n 12
grep -qi "hot-unplug\|gone" /tmp/perf.out || fail "perf did not say the controller went away"
[ "$took" -lt 40 ] || fail "perf ran ${took}s: it did not stop at the unplug"
ok "udrv nvme perf stopped ${took}s after starting, the unplug at ~4s"
i=0
while [ -e /sys/bus/pci/devices/$NVME ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ ! -e /sys/bus/pci/devices/$NVME ] || fail "the kernel did not remove $NVME after udrv released it"
ok "the kernel removed $NVME"
