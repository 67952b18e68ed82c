# Helpers for guest test scripts (sourced inside the guest as /lib-guest.sh).
NVME=0000:01:00.0
E1000E=0000:00:02.0
VIRTIO=0000:00:03.0

ok() { echo "vmtest: ok   $*"; }
fail() {
	echo "vmtest: FAIL $*"
	exit 1
}
driver_of() {
	l=$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null) || {
		echo none
		return
	}
	basename "$l"
}
expect_driver() {
	d=$(driver_of "$1")
	[ "$d" = "$2" ] || fail "$1 is bound to $d, expected $2"
	ok "$1 is bound to $2"
}
# Run a command that must fail, and whose stderr must contain a phrase.
expect_refusal() {
	phrase=$1
	shift
	if "$@" >/tmp/out 2>&1; then
		cat /tmp/out
		fail "'$*' succeeded but should have been refused"
	fi
	grep -q -- "$phrase" /tmp/out || {
		cat /tmp/out
		fail "'$*' was refused without saying '$phrase'"
	}
	ok "'$*' refused: $(head -n1 /tmp/out)"
}
