#!/bin/sh
# Assemble the VM tier's guest, cached outside the repository:
#   $CACHE/kernel-KVER/vmlinuz             Debian's kernel, unpacked (never installed here)
#   $CACHE/base-KVER-HASH.cpio.gz          busybox, the modules udrv's tests need, /init
# Rebuilt when the kernel version or this script changes. Prints the two paths.
# Facts behind every choice here: shared/guide/vm-lab.md.
set -eu

CACHE=${UDRV_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/udrv/vm}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$CACHE/dl"

die() {
	echo "udrv vm: $*" >&2
	exit 1
}

command -v busybox >/dev/null || die "busybox is missing: apt-get install busybox-static"
busybox --list | grep -qx modprobe || die "busybox lacks modprobe: apt-get install busybox-static"
command -v depmod >/dev/null || die "depmod is missing: apt-get install kmod"
command -v cpio >/dev/null || die "cpio is missing: apt-get install cpio"

# The kernel Debian's linux-image-amd64 points at; a fresh machine may need its lists first.
kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
kpkg=${UDRV_VM_KERNEL_PKG:-$(kernel_pkg)}
if [ -z "$kpkg" ] && [ "$(id -u)" -eq 0 ]; then
	apt-get update -q >&2 || true
	kpkg=$(kernel_pkg)
fi
[ -n "$kpkg" ] || die "cannot find Debian's kernel package (apt-cache depends linux-image-amd64 \
found nothing): run apt-get update"
kver=${kpkg#linux-image-}
kdir="$CACHE/kernel-$kver"

if [ ! -f "$kdir/.done" ]; then
	rm -rf "$kdir"
	deb=$(ls "$CACHE/dl/${kpkg}_"*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		(cd "$CACHE/dl" && apt-get download "$kpkg" >/dev/null 2>&1) ||
			die "cannot download $kpkg (apt-get download failed): check apt sources"
		deb=$(ls "$CACHE/dl/${kpkg}_"*.deb | head -n1)
	fi
	mkdir -p "$kdir/root"
	dpkg -x "$deb" "$kdir/root" || die "cannot unpack $deb"
	cp "$kdir/root/boot/vmlinuz-$kver" "$kdir/vmlinuz"
	# The package ships no modules.dep: make one for busybox modprobe.
	depmod -b "$kdir/root" "$kver"
	touch "$kdir/.done"
fi

# Modules the tests load, with their dependencies resolved on the host.
mods="vfio vfio_iommu_type1 vfio_virqfd vfio-pci uio uio_pci_generic nvme e1000e virtio_pci \
virtio_net ext4 crc32c_generic"

stamp=$(cat "$0" "$HERE/init.sh" | md5sum | cut -c1-12)
base="$CACHE/base-$kver-$stamp.cpio.gz"
if [ ! -f "$base" ]; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	r="$work/root"
	mkdir -p "$r/bin" "$r/sbin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/mnt" \
		"$r/run" "$r/var/run" "$r/lib/modules/$kver" "$r/usr/share/misc"
	cp "$(command -v busybox)" "$r/bin/busybox"
	for a in $(busybox --list); do
		[ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
	done
	for m in $mods; do
		modprobe -d "$kdir/root" -S "$kver" --show-depends "$m" |
			awk '$1 == "insmod" {print $2}'
	done | sort -u | while read -r ko; do
		rel=${ko#"$kdir/root/lib/modules/$kver/"}
		mkdir -p "$r/lib/modules/$kver/$(dirname "$rel")"
		cp "$ko" "$r/lib/modules/$kver/$rel"
	done
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		cp "$kdir/root/lib/modules/$kver/$f" "$r/lib/modules/$kver/"
	done
	depmod -b "$r" "$kver"
	[ -f /usr/share/misc/pci.ids ] && cp /usr/share/misc/pci.ids "$r/usr/share/misc/"
	cp "$HERE/init.sh" "$r/init"
	chmod +x "$r/init"
	(cd "$r" && find . | cpio -o -H newc --quiet | gzip -1) >"$base.tmp"
	mv "$base.tmp" "$base"
	# Older bases of this kernel are stale.
	for old in "$CACHE"/base-"$kver"-*.cpio.gz; do
		[ "$old" = "$base" ] || rm -f "$old"
	done
fi

echo "$kdir/vmlinuz"
echo "$base"
