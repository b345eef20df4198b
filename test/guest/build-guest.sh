#!/usr/bin/env bash
# Build (or reuse) the tiny Debian bookworm test guest.
#
# The guest is a real, bootable VM image built without KVM, loop devices or
# mounts: debootstrap into a directory, install the hedgehog-lab orchestrator
# with the test-lab driver, seal it, pack the directory into an ext4 file
# system with `mke2fs -d`, and convert it to qcow2. It boots by direct kernel
# boot (kernel and initrd are extracted next to the image), console on ttyS0.
#
# Output is cached under
#   ${LABFORGE_CACHE_DIR:-/var/cache/labforge}/tiny-guest/<hash>/
# where <hash> covers every input (this script and packer/guest/**). The
# debootstrap result is cached separately (base-<hash>.tar.zst, keyed by the
# suite and package list) so that changing the orchestrator only repeats the
# cheap steps. The last line on stdout is the cache directory; progress goes
# to stderr.
#
# Usage: build-guest.sh [--force] [--print-hash] [--base-only]
#   --force       rebuild the guest even if the cache has it (the base is kept)
#   --print-hash  print the input hash and exit
#   --base-only   only make sure the debootstrap base tarball exists
# Environment:
#   LABFORGE_CACHE_DIR   cache root (default /var/cache/labforge)
#   TINY_GUEST_MIRROR    Debian mirror (default http://deb.debian.org/debian)
#   TINY_GUEST_DISK_SIZE size of the guest's root file system (default 3G)
# Exit codes: 0 ok, 1 build failed, 2 usage error.
set -euo pipefail

readonly SUITE=bookworm
readonly PACKAGES=(
  systemd systemd-sysv udev dbus kmod
  linux-image-cloud-amd64 initramfs-tools
  openssh-server sudo jq iproute2 procps util-linux e2fsprogs
)
readonly GUEST_USER=lab
readonly KERNEL_CMDLINE="root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.show_status=1 quiet"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CACHE_ROOT="${LABFORGE_CACHE_DIR:-/var/cache/labforge}/tiny-guest"
MIRROR="${TINY_GUEST_MIRROR:-http://deb.debian.org/debian}"
DISK_SIZE="${TINY_GUEST_DISK_SIZE:-3G}"

log() { printf 'build-guest: %s\n' "$*" >&2; }
die() { printf 'build-guest: error: %s\n' "$*" >&2; exit 1; }
usage_error() {
  printf 'build-guest: %s\nUsage: build-guest.sh [--force] [--print-hash] [--base-only]\n' "$*" >&2
  exit 2
}

force=0
print_hash=0
base_only=0
while (($#)); do
  case "$1" in
    --force) force=1 ;;
    --print-hash) print_hash=1 ;;
    --base-only) base_only=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
      exit 0
      ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done

# Hash of the debootstrap base: suite, mirror-independent package list.
base_hash() {
  printf '%s\n' "$SUITE" "${PACKAGES[@]}" | sha256sum | cut -c1-16
}

# Hash of every input of the finished guest.
guest_hash() {
  (
    cd "$REPO_ROOT"
    {
      printf 'base %s\n' "$(base_hash)"
      printf 'cmdline %s\n' "$KERNEL_CMDLINE"
      printf 'disk %s\n' "$DISK_SIZE"
      find test/guest packer/guest -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-16
  )
}

hash="$(guest_hash)"
if ((print_hash)); then
  printf '%s\n' "$hash"
  exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap and chroot need it); run it with sudo"
for tool in debootstrap mke2fs qemu-img ssh-keygen jq zstd; do
  command -v "$tool" >/dev/null || die "$tool not found; install it (apt-get install debootstrap e2fsprogs qemu-utils openssh-client jq zstd)"
done

mkdir -p "$CACHE_ROOT" "$CACHE_ROOT/debs"
out_dir="$CACHE_ROOT/$hash"
base_tar="$CACHE_ROOT/base-$(base_hash).tar.zst"

# One builder at a time (parallel test workers may all ask for the guest).
exec 9>"$CACHE_ROOT/.lock"
flock 9

if [[ -f $out_dir/guest.json && $force -eq 0 && $base_only -eq 0 ]]; then
  log "cached: $out_dir"
  printf '%s\n' "$out_dir"
  exit 0
fi

work="$(mktemp -d "$CACHE_ROOT/.work-XXXXXX")"
cleanup() {
  local rc=$?
  # Never follow into a half-made rootfs with rm -rf across mounts: debootstrap
  # unmounts what it mounted, but make sure.
  if [[ -d $work/rootfs/proc ]] && mountpoint -q "$work/rootfs/proc"; then umount -l "$work/rootfs/proc" || true; fi
  if [[ -d $work/rootfs/sys ]] && mountpoint -q "$work/rootfs/sys"; then umount -l "$work/rootfs/sys" || true; fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs"

start=$SECONDS
if [[ -f $base_tar ]]; then
  log "unpacking base $(basename "$base_tar")"
  tar --zstd --numeric-owner --xattrs --xattrs-include='*' -xpf "$base_tar" -C "$rootfs"
else
  log "debootstrap $SUITE from $MIRROR (takes a few minutes)"
  include="$(IFS=,; printf '%s' "${PACKAGES[*]}")"
  debootstrap --variant=minbase --include="$include" --cache-dir="$CACHE_ROOT/debs" \
    "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    die "debootstrap failed (log above); check that $MIRROR is reachable"
  }
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/*
  log "saving base $(basename "$base_tar") ($((SECONDS - start)) s so far)"
  tar --zstd --numeric-owner --xattrs --xattrs-include='*' -cf "$base_tar.tmp" -C "$rootfs" .
  mv "$base_tar.tmp" "$base_tar"
fi
if ((base_only)); then
  log "base ready: $base_tar"
  exit 0
fi

log "configuring guest"
printf 'tiny-guest\n' >"$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 tiny-guest\n::1 localhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
printf '/dev/vda / ext4 defaults,discard,errors=remount-ro 0 1\n' >"$rootfs/etc/fstab"
mkdir -p "$rootfs/etc/systemd/network"
printf '[Match]\nName=eth* en*\n\n[Network]\nDHCP=yes\n' >"$rootfs/etc/systemd/network/10-dhcp.network"
systemctl --root="$rootfs" enable systemd-networkd.service >/dev/null 2>&1
systemctl --root="$rootfs" enable ssh.service >/dev/null 2>&1
# No resolver is needed; avoid waiting for DNS in the test network.
printf 'nameserver 10.0.2.3\n' >"$rootfs/etc/resolv.conf"

chroot "$rootfs" useradd --create-home --shell /bin/bash --groups sudo "$GUEST_USER"
# '*' (not '!'): no password login, but the account is not "locked" for sshd.
chroot "$rootfs" usermod --password '*' "$GUEST_USER"
printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$GUEST_USER" >"$rootfs/etc/sudoers.d/90-$GUEST_USER"
chmod 0440 "$rootfs/etc/sudoers.d/90-$GUEST_USER"

out="$work/out"
mkdir -p "$out"
ssh-keygen -q -t ed25519 -N '' -C "labforge-tiny-guest-$hash" -f "$out/id_ed25519"
install -d -m 0700 "$rootfs/home/$GUEST_USER/.ssh"
install -m 0600 "$out/id_ed25519.pub" "$rootfs/home/$GUEST_USER/.ssh/authorized_keys"
chroot "$rootfs" chown -R "$GUEST_USER:$GUEST_USER" "/home/$GUEST_USER/.ssh"

log "installing the hedgehog-lab orchestrator (driver test-lab, build type standard)"
"$REPO_ROOT/packer/guest/install.sh" --root "$rootfs" --driver test-lab --build-type standard >&2
# Probe often: a test boot should not wait 5 s for nothing.
printf 'READY_INTERVAL=1\n' >>"$rootfs/etc/hedgehog-lab/lab.conf"

log "sealing"
# The test key of user lab stays: it is how tests log in. Trim is meaningless
# on a directory (mke2fs -d only writes used blocks anyway).
"$REPO_ROOT/packer/guest/seal.sh" --root "$rootfs" --no-trim >&2

cp "$(find "$rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n1)" "$out/vmlinuz"
cp "$(find "$rootfs/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -n1)" "$out/initrd.img"

log "making the ext4 image (mke2fs -d, $DISK_SIZE)"
mke2fs -q -F -t ext4 -L tinyroot -d "$rootfs" "$work/root.raw" "$DISK_SIZE"
qemu-img convert -f raw -O qcow2 "$work/root.raw" "$out/guest.qcow2"
rm -f "$work/root.raw"
chmod 0444 "$out/guest.qcow2"

final="$out_dir"
jq -n \
  --arg hash "$hash" \
  --arg dir "$final" \
  --arg image "$final/guest.qcow2" \
  --arg kernel "$final/vmlinuz" \
  --arg initrd "$final/initrd.img" \
  --arg key "$final/id_ed25519" \
  --arg user "$GUEST_USER" \
  --arg cmdline "$KERNEL_CMDLINE" \
  --arg suite "$SUITE" \
  --arg built "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  '{hash: $hash, dir: $dir, image: $image, imageFormat: "qcow2",
    kernel: $kernel, initrd: $initrd, kernelCmdline: $cmdline,
    qemuArgs: ["-kernel", $kernel, "-initrd", $initrd, "-append", $cmdline],
    user: $user, privateKey: $key, publicKey: ($key + ".pub"),
    buildType: "standard", driver: "test-lab", debianSuite: $suite, builtAt: $built}' \
  >"$out/guest.json"

rm -rf "$out_dir"
mv "$out" "$out_dir"
log "built $out_dir in $((SECONDS - start)) s"
printf '%s\n' "$out_dir"
