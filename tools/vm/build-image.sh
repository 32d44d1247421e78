#!/usr/bin/env bash
# tools/vm/build-image.sh - build the arraysim initiator guest (once; later calls are no-ops).
#
# The guest is a minimal Debian 12 (bookworm) with the stock Debian kernel plus the
# Linux iSCSI initiator stack (open-iscsi, sg3-utils, lsscsi, multipath-tools, fio,
# e2fsprogs, xfsprogs). tools/vm/run.sh boots it and runs a test script inside.
#
# Result, in $ARRAYSIM_VM_CACHE/image (default /var/cache/arraysim-vm/image):
#   vmlinuz, initrd.img   kernel + a tiny initrd (virtio + ext4 only)
#   root.img              raw ext4 filesystem image (no partitions), made by mkfs.ext4 -d
#   packages.txt          guest package list with versions
#   stamp                 hash of the inputs; the image is rebuilt when they change
#
# Usage:  build-image.sh [--force]
# Needs root (debootstrap, chroot) and access to the Debian mirror this host's apt uses.
# Missing host tools (debootstrap, e2fsprogs, qemu-system-x86) are apt-installed.
# Env:    ARRAYSIM_VM_CACHE, ARRAYSIM_VM_SUITE (bookworm),
#         ARRAYSIM_VM_MIRROR, ARRAYSIM_VM_SECURITY_MIRROR (default: from apt-cache policy)
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ARRAYSIM_VM_CACHE:-/var/cache/arraysim-vm}
SUITE=${ARRAYSIM_VM_SUITE:-bookworm}
IMAGE=$CACHE/image

# What goes into the guest on top of debootstrap's "minbase" variant.
GUEST_PACKAGES=(
  linux-image-amd64 initramfs-tools zstd kmod systemd-sysv udev iproute2 procps
  open-iscsi sg3-utils lsscsi multipath-tools e2fsprogs xfsprogs fio util-linux
)
# The initrd only has to mount an ext4 root on virtio-blk. Everything else (9p,
# iscsi_tcp, sd_mod, sg, dm-multipath) is loaded later from the root disk.
INITRD_MODULES=(virtio_pci virtio_blk ext4 crc32c_generic crc32c_intel)
# Module trees a headless test VM never uses; dropping them saves ~160 MiB.
PRUNE_MODULES=(drivers/gpu drivers/media drivers/net/wireless drivers/bluetooth
  drivers/staging drivers/iio drivers/infiniband sound net/wireless net/mac80211 net/bluetooth)

say() { printf 'build-image: %s\n' "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

force=false
case ${1:-} in
  --force) force=true ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

# Which mirror the host's apt uses for a given suite (e.g. "bookworm-security").
host_mirror() {
  apt-cache policy 2>/dev/null | awk -v want="$1/main" '$3 == want || index($3, want "/") == 1 {print $2; exit}'
}
MIRROR=${ARRAYSIM_VM_MIRROR:-$(host_mirror "$SUITE")}
SECURITY_MIRROR=${ARRAYSIM_VM_SECURITY_MIRROR:-$(host_mirror "$SUITE-security")}

# The stamp covers everything that ends up in the image.
stamp=$( { cat "$VM_DIR/build-image.sh" "$VM_DIR"/guest/*; echo "$SUITE|$MIRROR|$SECURITY_MIRROR"; } \
         | sha256sum | cut -c1-16)
image_current() {
  [[ -s $IMAGE/vmlinuz && -s $IMAGE/initrd.img && -s $IMAGE/root.img && -f $IMAGE/stamp ]] \
    && [[ $(<"$IMAGE/stamp") == "$stamp" ]]
}
if ! $force && image_current; then
  say "image in $IMAGE is current (stamp $stamp)"
  exit 0
fi

[[ $EUID -eq 0 ]] || fail "the image in $IMAGE is missing or stale; building it needs root (run: sudo $0)"
[[ -n $MIRROR ]] || fail "cannot tell which Debian mirror to use for '$SUITE' (run apt-get update, or set ARRAYSIM_VM_MIRROR)"

# Host tools. As root we may install what is missing.
need_pkgs=()
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
command -v mkfs.ext4 >/dev/null || need_pkgs+=(e2fsprogs)
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
if ((${#need_pkgs[@]})); then
  say "installing host packages: ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2 \
    || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2; } \
    || fail "could not install ${need_pkgs[*]}"
fi

mkdir -p "$CACHE"
exec 8>"$CACHE/build.lock"
flock 8                                  # concurrent callers wait for one build
if ! $force && image_current; then say "image was built by a concurrent run"; exit 0; fi

t0=$SECONDS
build=$(mktemp -d "$CACHE/build.XXXXXX")
rootfs=$build/rootfs
mounted=()
on_exit() {
  local m
  for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$build"
}
trap on_exit EXIT
chroot_run() {
  chroot "$rootfs" /usr/bin/env -i HOME=/root LC_ALL=C DEBIAN_FRONTEND=noninteractive \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
logged() {   # logged LOGFILE CMD...: run quietly, show the log tail on failure
  local logf=$1; shift
  "$@" >>"$logf" 2>&1 || { tail -n 40 "$logf" >&2; return 1; }
}

# --- 1. base system -------------------------------------------------------------------
say "debootstrap --variant=minbase $SUITE from $MIRROR"
logged "$build/debootstrap.log" debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" \
  || fail "debootstrap failed"

cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
${SECURITY_MIRROR:+deb $SECURITY_MIRROR $SUITE-security main}
SOURCES

# initramfs-tools reads this when the kernel package is installed below.
mkdir -p "$rootfs/etc/initramfs-tools/conf.d"
printf 'MODULES=list\nCOMPRESS=zstd\n' >"$rootfs/etc/initramfs-tools/conf.d/arraysim.conf"
printf '%s\n' "${INITRD_MODULES[@]}" >>"$rootfs/etc/initramfs-tools/modules"
# Package scripts must not start daemons in the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

# --- 2. packages ----------------------------------------------------------------------
say "installing ${#GUEST_PACKAGES[@]} guest packages"
mount -t proc proc "$rootfs/proc" && mounted+=("$rootfs/proc")
mount -t sysfs sysfs "$rootfs/sys" && mounted=("$rootfs/sys" "${mounted[@]}")
apt_opts=(-y -q -o Dpkg::Options::=--force-confold -o APT::Install-Recommends=false)
logged "$build/apt.log" chroot_run apt-get -q update || fail "apt-get update failed"
logged "$build/apt.log" chroot_run apt-get "${apt_opts[@]}" dist-upgrade || fail "dist-upgrade failed"
logged "$build/apt.log" chroot_run apt-get "${apt_opts[@]}" install "${GUEST_PACKAGES[@]}" \
  || fail "package installation failed"
chroot_run apt-get clean
# shellcheck disable=SC2016
chroot_run dpkg-query -W -f '${Package} ${Version}\n' >"$build/packages.txt"
for m in "${mounted[@]}"; do umount "$m"; done
mounted=()
rm -f "$rootfs/usr/sbin/policy-rc.d"

# --- 3. guest configuration -----------------------------------------------------------
say "configuring the guest"
echo arraysim-vm >"$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tarraysim-vm\n' >"$rootfs/etc/hosts"
echo '/dev/vda / ext4 rw,noatime 0 0' >"$rootfs/etc/fstab"
# Isolated on purpose: the guest has no DNS and no default route (see guest/arraysim-vm-run).
echo '# arraysim VM guest: no DNS' >"$rootfs/etc/resolv.conf"
chroot_run passwd -d root >/dev/null
# Fixed machine-id so systemd does not run first-boot setup on every boot.
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$rootfs/etc/machine-id"
echo >>"$rootfs/etc/machine-id"
# open-iscsi makes a random initiator name on first start. The root disk is a
# throw-away snapshot, so every boot gets a new name unless the test sets one.
echo 'GenerateName=yes' >"$rootfs/etc/iscsi/initiatorname.iscsi"
mkdir -p "$rootfs/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$rootfs/etc/systemd/journald.conf.d/arraysim.conf"
# Mask what only slows the boot down or clutters the serial console.
for unit in getty.target getty@tty1.service serial-getty@ttyS0.service \
            systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
            dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
  ln -sfn /dev/null "$rootfs/etc/systemd/system/$unit"
done
printf 'blacklist %s\n' ahci pcspkr kvm_intel kvm_amd acpi_cpufreq powernow_k8 \
  >"$rootfs/etc/modprobe.d/arraysim-vm.conf"
# The test runner, started at boot; it powers the guest off when done.
install -m 0755 "$VM_DIR/guest/arraysim-vm-run" "$rootfs/usr/local/sbin/arraysim-vm-run"
install -m 0644 "$VM_DIR/guest/arraysim-vm-run.service" "$rootfs/etc/systemd/system/"
mkdir -p "$rootfs/etc/systemd/system/multi-user.target.wants"
ln -sfn ../arraysim-vm-run.service "$rootfs/etc/systemd/system/multi-user.target.wants/arraysim-vm-run.service"

# --- 4. kernel, initrd, root image ----------------------------------------------------
kernels=("$rootfs"/lib/modules/*)
((${#kernels[@]} == 1)) || fail "expected one kernel in the guest, found ${#kernels[@]}"
kver=${kernels[0]##*/}
for d in "${PRUNE_MODULES[@]}"; do rm -rf "${rootfs:?}/lib/modules/$kver/kernel/$d"; done
chroot_run depmod -a "$kver"
mkdir -p "$build/image"
cp "$rootfs/boot/vmlinuz-$kver" "$build/image/vmlinuz"
mv "$rootfs/boot/initrd.img-$kver" "$build/image/initrd.img"   # the guest itself never needs it
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/tmp/* "$rootfs"/var/log/*.log
mv "$build/packages.txt" "$build/image/packages.txt"

# mkfs.ext4 -d copies the tree into the new filesystem: no loop device, no mount.
# Size = content + 25 % + 1 GiB headroom for test files; the file is sparse.
used_mib=$(du -sm "$rootfs" | cut -f1)
img_mib=$((used_mib * 5 / 4 + 1024))
truncate -s "${img_mib}M" "$build/image/root.img"
logged "$build/mkfs.log" mkfs.ext4 -q -F -L arraysim-vm -d "$rootfs" "$build/image/root.img" \
  || fail "mkfs.ext4 -d failed (needs e2fsprogs >= 1.43)"
echo "$stamp" >"$build/image/stamp"

# Replace the old image only now that the new one is complete.
rm -rf "$IMAGE.old"
if [[ -d $IMAGE ]]; then mv "$IMAGE" "$IMAGE.old"; fi
mv "$build/image" "$IMAGE"
rm -rf "$IMAGE.old"
say "built in $((SECONDS - t0)) s: kernel $kver, rootfs $used_mib MiB, root.img $img_mib MiB sparse" \
    "($(du -sm "$IMAGE" | cut -f1) MiB on disk) in $IMAGE"
