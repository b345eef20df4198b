#!/usr/bin/env bash
# Build (or reuse) the base disk image of the demo-lab appliance.
#
# A BIOS-bootable Debian bookworm disk (qcow2) made without root, loop
# devices or mounts: mmdebstrap --mode=unshare makes the root file system
# (cached as a tarball keyed by the suite and package list), the rest runs in
# a user namespace (see "Unprivileged use"): configure cloud-init for NoCloud,
# install the hedgehog-lab orchestrator (driver test-lab, build type
# standard), seal, `mke2fs -t ext4 -d` the tree into a partition image, then
# a dos partition table (sfdisk on the file), the partition dd'd in at sector
# 2048, GRUB i386-pc (boot.img to sector 0, core.img from sector 1) and a
# grub.cfg that boots root=LABEL=demoroot with the console on tty0 and ttyS0.
# The kernel, initrd and command line are exported next to the image for
# callers that prefer direct kernel boot.
#
# The image has no user, no password and no SSH key: logins come only from a
# cloud-init NoCloud seed (an ISO labelled cidata) at boot. Booted through
# GRUB, the base does not start the lab: its grub.cfg appends
# hedgehog-lab.skip (`set base_args=...`), which the demo-lab Packer build
# empties; with direct kernel boot the caller's command line decides.
#
# cloud-init cost under TCG (2 cores, -m 1024, -smp 2; measured once each
# while writing this, single runs vary by +-10 s):
#   time from QEMU start to an SSH login via firmware+GRUB: 43-70 s (stock
#   Debian cloud.cfg: 43-46 s); via direct kernel boot 36 s; to the sshd
#   banner with cloud-init=disabled (direct boot): 21 s. So cloud-init costs
#   about 15-20 s before SSH: its local and network stages (each a ~5-10 s
#   Python start under TCG) run before ssh.service, whatever the module list.
#   Trimming the modules does not shorten that; it shortens the time until
#   `cloud-init status --wait` is done (what the Packer build waits for):
#   47 s trimmed vs 53 s stock. systemd-analyze blame, trimmed:
#   cloud-init-local 11 s, cloud-init 7 s, cloud-config 6 s, cloud-final 5 s.
#   Disabled: every module a NoCloud appliance does not use (migrator,
#   seed_random, bootcmd, growpart/resizefs, disk_setup, mounts, ca-certs,
#   rsyslog, apt/locale/timezone/ntp/keyboard/grub-dpkg, snap, puppet/chef/...,
#   ssh_authkey_fingerprints, keys_to_console, phone_home, power_state_change),
#   host key generation in cloud-init (hedgehog-lab-hostkeys.service makes them
#   once), network configuration (systemd-networkd does DHCP) and every data
#   source but NoCloud. Kept: write_files (+deferred), set_hostname,
#   update_hostname, update_etc_hosts, users_groups, ssh (authorized keys),
#   set_passwords, runcmd/scripts_*, final_message. The stock config also
#   creates the user `debian` for "users: [default]"; this one creates nobody.
#
# Output is cached under
#   ${LABFORGE_CACHE_DIR:-/var/cache/labforge}/demo-lab/<hash>/
# (as a non-root user the default is ${XDG_CACHE_HOME:-$HOME/.cache}/labforge)
# where <hash> covers every input: this script, packer/guest/**, the package
# list, the suite and the disk size. The mmdebstrap result is cached
# separately (rootfs-<hash>.tar.zst, keyed by the suite and package list), so
# a change of the orchestrator only repeats the cheap steps. Parallel callers
# wait for each other (flock); results are renamed into place atomically.
#
# Progress goes to stderr. The last line of stdout is one JSON object
#   {"hash", "dir", "image", "imageFormat": "qcow2", "kernel", "initrd",
#    "kernelCmdline", "suite": "bookworm", "builtAt"}
# which is also saved as <dir>/base.json.
#
# Usage: build-base.sh [--force] [--print-hash]
#   --force       rebuild the image even if the cache has it (the rootfs
#                 tarball is kept)
#   --print-hash  print the input hash and exit
# Environment:
#   LABFORGE_CACHE_DIR    cache root (see above)
#   DEMO_LAB_MIRROR       Debian mirror (default http://deb.debian.org/debian)
#   DEMO_LAB_DISK_SIZE    size of the disk (default 3G; qemu-img size syntax)
# Unprivileged use: needs mmdebstrap, unshare (util-linux >= 2.38) and
#   newuidmap/newgidmap (package uidmap), unprivileged user namespaces
#   (kernel.unprivileged_userns_clone=1 where that sysctl exists) and a range
#   of at least 65536 ids for the user in /etc/subuid and /etc/subgid, e.g.
#   `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 runner`
#   (useradd adds one by default).
# Exit codes: 0 ok, 1 build failed or a tool is missing, 2 usage error.
set -euo pipefail

readonly SUITE=bookworm
# The generic kernel, not linux-image-cloud-amd64: an imported OVA gets the controllers its OVF declares
# (LSI Logic SCSI, an E1000 NIC) or a hypervisor's AHCI CD-ROM, and the cloud kernel has drivers for none of
# them (mptspi, e1000, ahci), only virtio and the VMware paravirtual ones.
readonly PACKAGES=(
  systemd systemd-sysv udev dbus kmod
  linux-image-amd64 initramfs-tools
  openssh-server sudo jq iproute2 procps util-linux e2fsprogs
  cloud-init
)
readonly FS_LABEL=demoroot
readonly KERNEL_CMDLINE="root=LABEL=$FS_LABEL ro console=tty0 console=ttyS0 net.ifnames=0 systemd.show_status=1 quiet"

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SCRIPT_DIR="$(dirname "$SCRIPT_PATH")"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
MIRROR="${DEMO_LAB_MIRROR:-http://deb.debian.org/debian}"
DISK_SIZE="${DEMO_LAB_DISK_SIZE:-3G}"
if [[ $(id -u) -eq 0 ]]; then
  CACHE_ROOT="${LABFORGE_CACHE_DIR:-/var/cache/labforge}/demo-lab"
else
  CACHE_ROOT="${LABFORGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/labforge}/demo-lab"
fi

log() { printf 'build-base: %s\n' "$*" >&2; }
die() { printf 'build-base: error: %s\n' "$*" >&2; exit 1; }
usage_error() {
  printf 'build-base: %s (usage: build-base.sh [--force] [--print-hash] [-h|--help])\n' "$*" >&2
  exit 2
}

# ---------------------------------------------------------------------------
# Inner stage: runs as (namespace) root on a work directory made by the outer
# stage. Every path it writes is inside WORK; it never writes through a
# symbolic link (the tree comes from Debian packages, but be strict).
# ---------------------------------------------------------------------------

# Fail when any component of ROOTFS/REL (REL itself included) is a symlink.
no_symlinks() {
  local p="$1" rel="$2" part
  local -a parts
  IFS=/ read -ra parts <<<"$rel"
  for part in "${parts[@]}"; do
    [[ -n $part ]] || continue
    p="$p/$part"
    [[ ! -L $p ]] || die "refusing to write through the symbolic link $p"
  done
}

# put ROOTFS REL MODE < content: replace the file (never through a symlink).
put() {
  local rootfs="$1" rel="$2" mode="$3"
  no_symlinks "$rootfs" "$rel"
  mkdir -p "$(dirname "$rootfs/$rel")"
  rm -f "$rootfs/$rel"
  cat >"$rootfs/$rel"
  chmod "$mode" "$rootfs/$rel"
}

inner_rootfs() {
  local work="$1" base_tar="$2" part_sectors="$3"
  local rootfs="$work/rootfs" guest="$work/guest" out="$work/out"
  mkdir -p "$rootfs" "$out"
  log "unpacking $(basename "$base_tar")"
  # Device nodes cannot be made in a user namespace; the guest mounts
  # devtmpfs on /dev anyway.
  tar --zstd --numeric-owner --xattrs --xattrs-include='*' --exclude='./dev/*' \
    -xpf "$base_tar" -C "$rootfs"

  log "configuring the guest"
  printf 'demo-lab\n' | put "$rootfs" etc/hostname 0644
  printf '127.0.0.1 localhost\n127.0.1.1 demo-lab\n::1 localhost ip6-localhost ip6-loopback\n' |
    put "$rootfs" etc/hosts 0644
  printf 'LABEL=%s / ext4 defaults,discard,errors=remount-ro 0 1\n' "$FS_LABEL" | put "$rootfs" etc/fstab 0644
  printf '[Match]\nName=eth*\n\n[Network]\nDHCP=yes\n' | put "$rootfs" etc/systemd/network/10-dhcp.network 0644
  # No resolver is installed (the lab needs none); DHCP's DNS is not written.
  printf '# demo-lab: no resolver configured\n' | put "$rootfs" etc/resolv.conf 0644
  no_symlinks "$rootfs" etc/systemd/system
  systemctl --root="$rootfs" enable systemd-networkd.service ssh.service >/dev/null 2>&1
  # No password for root; logins come from the cloud-init seed only.
  sed -i -e 's/^root:[^:]*:/root:*:/' "$rootfs/etc/shadow"

  # cloud-init: NoCloud only, no default user, only the modules an
  # appliance seeded with users and keys needs (see the numbers at the top).
  put "$rootfs" etc/cloud/cloud.cfg 0644 <<'EOF'
# demo-lab: cloud-init for a NoCloud seed (cidata ISO), trimmed for a fast
# boot. Users, keys and commands come from the seed's user-data only; there is
# no default user ("users: [default]" creates nobody: no default_user below).
datasource_list: [ NoCloud, None ]
users: []
disable_root: true
ssh_pwauth: false
preserve_hostname: false
# hedgehog-lab-hostkeys.service makes the host keys (once); cloud-init keeps them.
ssh_deletekeys: false
ssh_genkeytypes: []
# systemd-networkd does DHCP on eth*.
network:
  config: disabled
cloud_init_modules:
  - write_files
  - set_hostname
  - update_hostname
  - update_etc_hosts
  - users_groups
  - ssh
  - set_passwords
cloud_config_modules:
  - runcmd
cloud_final_modules:
  - write_files_deferred
  - scripts_per_once
  - scripts_per_boot
  - scripts_per_instance
  - scripts_user
  - final_message
system_info:
  distro: debian
  paths:
    cloud_dir: /var/lib/cloud/
    templates_dir: /etc/cloud/templates/
  ssh_svcname: ssh
EOF
  # Debian's drop-ins (e.g. 01_debian_cloud.cfg of some images) must not
  # bring the default user or other data sources back.
  no_symlinks "$rootfs" etc/cloud/cloud.cfg.d
  find -P "$rootfs/etc/cloud/cloud.cfg.d" -mindepth 1 -maxdepth 1 -name '*.cfg' \
    ! -name 05_logging.cfg -delete
  printf 'datasource_list: [ NoCloud, None ]\n' | put "$rootfs" etc/cloud/cloud.cfg.d/90_dpkg.cfg 0644

  log "installing the hedgehog-lab orchestrator (driver test-lab, build type standard)"
  no_symlinks "$rootfs" usr/local/sbin
  no_symlinks "$rootfs" usr/local/lib
  no_symlinks "$rootfs" etc/hedgehog-lab
  no_symlinks "$rootfs" var/lib/hedgehog-lab
  bash "$guest/install.sh" --root "$rootfs" --driver test-lab --build-type standard >&2

  log "sealing"
  bash "$guest/seal.sh" --root "$rootfs" --no-trim --remove-all-authorized-keys >&2

  # GRUB reads /vmlinuz and /initrd.img (kept current by the kernel packages).
  local kernel initrd
  kernel="$(find -P "$rootfs/boot" -maxdepth 1 -type f -name 'vmlinuz-*' | sort -V | tail -n1)"
  initrd="$(find -P "$rootfs/boot" -maxdepth 1 -type f -name 'initrd.img-*' | sort -V | tail -n1)"
  [[ -n $kernel && -n $initrd ]] || die "no kernel or initrd in the rootfs /boot"
  local kpath=/vmlinuz ipath=/initrd.img
  [[ -L $rootfs/vmlinuz ]] || kpath="/boot/${kernel##*/}"
  [[ -L $rootfs/initrd.img ]] || ipath="/boot/${initrd##*/}"
  put "$rootfs" boot/grub/grub.cfg 0644 <<EOF
# demo-lab: written by packer/demo-lab/build-base.sh (no grub package in the
# guest; the kernel packages keep /vmlinuz and /initrd.img current).
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set default=0
set timeout=0
# The base disk booted through GRUB never starts the lab (above all in the
# Packer build VM: the image would ship an initialized lab). The demo-lab
# Packer build empties this line; direct kernel boot is up to the caller.
set base_args="hedgehog-lab.skip"
export base_args
menuentry 'demo-lab' {
  linux $kpath $KERNEL_CMDLINE \$base_args
  initrd $ipath
}
EOF
  cp "$kernel" "$out/vmlinuz"
  cp "$initrd" "$out/initrd.img"
  chmod 0644 "$out/vmlinuz" "$out/initrd.img"

  log "making the ext4 file system (mke2fs -d, label $FS_LABEL)"
  truncate -s "$((part_sectors * 512))" "$work/part.raw"
  mke2fs -q -F -t ext4 -L "$FS_LABEL" -E root_owner=0:0 -d "$rootfs" "$work/part.raw"
  rm -rf "$rootfs"
}

inner_clean() {
  rm -rf "$1"
}

if [[ ${1:-} == __inner ]]; then
  shift
  case "$1" in
    rootfs) inner_rootfs "$2" "$3" "$4" ;;
    clean) inner_clean "$2" ;;
  esac
  exit 0
fi

# ---------------------------------------------------------------------------
# Outer stage
# ---------------------------------------------------------------------------
force=0
print_hash=0
while (($#)); do
  case "$1" in
    --force) force=1 ;;
    --print-hash) print_hash=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$SCRIPT_PATH" | sed -e '$d' -e 's/^# \{0,1\}//'
      exit 0
      ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done

[[ $DISK_SIZE =~ ^[1-9][0-9]*[MG]$ ]] || usage_error "DEMO_LAB_DISK_SIZE=$DISK_SIZE is not a size like 3G or 2048M"

# Hash of the mmdebstrap result.
base_hash() {
  printf '%s\n' "$SUITE" minbase no-recommends "${PACKAGES[@]}" | sha256sum | cut -c1-16
}

# Hash of every input of the image.
image_hash() {
  (
    cd "$REPO_ROOT"
    {
      printf 'base %s\n' "$(base_hash)"
      printf 'disk %s\n' "$DISK_SIZE"
      sha256sum "packer/demo-lab/$(basename "$SCRIPT_PATH")"
      find -P packer/guest \( -type f -o -type l \) -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-16
  )
}

hash="$(image_hash)"
if ((print_hash)); then
  printf '%s\n' "$hash"
  exit 0
fi

need() {
  command -v "$1" >/dev/null || die "$1 not found; install it (apt-get install $2)"
}
need mmdebstrap mmdebstrap
need zstd zstd
need mke2fs e2fsprogs
need sfdisk fdisk
need grub-mkimage grub-pc-bin
[[ -f /usr/lib/grub/i386-pc/boot.img ]] || die "/usr/lib/grub/i386-pc/boot.img not found; install it (apt-get install grub-pc-bin)"
need qemu-img qemu-utils
need jq jq
need flock util-linux
need unshare util-linux

# Run the inner stage: directly as root, else in a user namespace where the
# caller is root and ids 1..65536 are the caller's subordinate ids (so the
# rootfs keeps its real owners and mke2fs -d records them).
in_ns() {
  if [[ $(id -u) -eq 0 ]]; then
    bash "$SCRIPT_PATH" __inner "$@"
  else
    unshare --map-user=0 --map-group=0 \
      --map-users="$subuid,1,65536" --map-groups="$subgid,1,65536" \
      bash "$SCRIPT_PATH" __inner "$@"
  fi
}

# First range of at least 65536 ids of the caller in /etc/subuid or subgid.
sub_range() {
  local file="$1" name uid
  name="$(id -un)"
  uid="$(id -u)"
  awk -F: -v n="$name" -v u="$uid" '($1 == n || $1 == u) && $3 >= 65536 { print $2; exit }' "$file" 2>/dev/null
}

if [[ $(id -u) -ne 0 ]]; then
  need newuidmap uidmap
  subuid="$(sub_range /etc/subuid)"
  subgid="$(sub_range /etc/subgid)"
  [[ -n $subuid && -n $subgid ]] ||
    die "no range of 65536 subordinate ids for $(id -un) in /etc/subuid and /etc/subgid (add one: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $(id -un))"
  unshare --map-user=0 --map-group=0 --map-users="$subuid,1,65536" --map-groups="$subgid,1,65536" true 2>/dev/null ||
    die "cannot create a user namespace with the ids of /etc/subuid (unprivileged user namespaces disabled? newuidmap from package uidmap missing or not setuid?)"
fi

mkdir -p "$CACHE_ROOT"
if [[ $(id -u) -eq 0 && $(stat -c %u "$CACHE_ROOT") -ne 0 ]]; then
  die "$CACHE_ROOT is not owned by root; refusing to build as root in it"
fi
chmod go-w "$CACHE_ROOT"
out_dir="$CACHE_ROOT/$hash"
base_tar="$CACHE_ROOT/rootfs-$(base_hash).tar.zst"

# One builder at a time (parallel callers wait, then find the result).
exec 9>"$CACHE_ROOT/.lock"
flock 9

if [[ -f $out_dir/base.json && $force -eq 0 ]]; then
  log "cached: $out_dir"
  jq -c . "$out_dir/base.json"
  exit 0
fi

start=$SECONDS
work="$(mktemp -d "$CACHE_ROOT/.work-XXXXXX")"
cleanup() {
  local rc=$?
  in_ns clean "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
chmod 0755 "$work"

if [[ ! -f $base_tar ]]; then
  log "mmdebstrap $SUITE from $MIRROR (takes a few minutes)"
  include="$(IFS=,; printf '%s' "${PACKAGES[*]}")"
  mmdebstrap --mode=unshare --variant=minbase --include="$include" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$SUITE" "$work/rootfs.tar.zst" "$MIRROR" >"$work/mmdebstrap.log" 2>&1 || {
    tail -n 30 "$work/mmdebstrap.log" >&2
    die "mmdebstrap failed (log above); check that $MIRROR is reachable"
  }
  mv "$work/rootfs.tar.zst" "$base_tar"
  log "rootfs cached: $base_tar ($((SECONDS - start)) s)"
else
  log "reusing rootfs $base_tar"
fi

# Snapshot the orchestrator: no symlinks or special files (a root-run step
# must not follow links planted in a tree that someone else may write).
bad="$(find -P "$REPO_ROOT/packer/guest" ! -type f ! -type d -print -quit)"
[[ -z $bad ]] || die "refusing $bad: packer/guest may contain regular files and directories only"
mkdir "$work/guest"
cp -R -P "$REPO_ROOT/packer/guest/." "$work/guest/"
mkdir "$work/out"

size_bytes="$(numfmt --from=iec "$DISK_SIZE")"
disk_sectors=$((size_bytes / 512))
part_sectors=$((disk_sectors - 2048))
# Namespace root must be able to write the work directory (it is the caller).
in_ns rootfs "$work" "$base_tar" "$part_sectors"

log "partitioning the disk image and installing GRUB (i386-pc)"
disk="$work/disk.raw"
truncate -s "$size_bytes" "$disk"
printf 'label: dos\nstart=2048, size=%s, type=83, bootable\n' "$part_sectors" |
  sfdisk --quiet --no-reread --no-tell-kernel "$disk" >&2
dd if="$work/part.raw" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$work/part.raw"
grub-mkimage -O i386-pc -o "$work/core.img" -p '(hd0,msdos1)/boot/grub' \
  biosdisk part_msdos ext2 normal linux configfile serial terminal search search_label echo test
core_sectors=$((($(stat -c %s "$work/core.img") + 511) / 512))
((core_sectors < 2047)) || die "core.img does not fit before sector 2048 ($core_sectors sectors)"
dd if=/usr/lib/grub/i386-pc/boot.img of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none

log "converting to qcow2"
qemu-img convert -f raw -O qcow2 "$disk" "$work/out/disk.qcow2"
rm -f "$disk"
chmod 0444 "$work/out/disk.qcow2"
printf '%s\n' "$KERNEL_CMDLINE" >"$work/out/cmdline"

jq -cn \
  --arg hash "$hash" \
  --arg dir "$out_dir" \
  --arg image "$out_dir/disk.qcow2" \
  --arg kernel "$out_dir/vmlinuz" \
  --arg initrd "$out_dir/initrd.img" \
  --arg cmdline "$KERNEL_CMDLINE" \
  --arg suite "$SUITE" \
  --arg built "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  '{hash: $hash, dir: $dir, image: $image, imageFormat: "qcow2", kernel: $kernel,
    initrd: $initrd, kernelCmdline: $cmdline, suite: $suite, builtAt: $built}' \
  >"$work/out/base.json"

# Atomic: a reader sees either no directory or a complete one.
if [[ -e $out_dir ]]; then
  mv "$out_dir" "$work/old"
fi
mv "$work/out" "$out_dir"
log "built $out_dir in $((SECONDS - start)) s"
cat "$out_dir/base.json"
