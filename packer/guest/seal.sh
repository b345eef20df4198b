#!/usr/bin/env bash
# seal.sh: clone hygiene, run as the last step before an appliance image is
# shut down for packaging (standard build, and again after the warm stage).
#
# Every clone must get its own identity on first boot:
#   - /etc/machine-id emptied (systemd makes a new one on first boot),
#     /var/lib/dbus/machine-id pointed at it
#   - SSH host keys removed (hedgehog-lab-hostkeys.service makes new ones)
#   - cloud-init state, seed and logs removed (it runs again as on a new
#     instance: `cloud-init clean --logs --seed` on a running system, the same
#     file removals with --root), and the installer's copy of the autoinstall
#     user-data (it holds the build key)
#   - build-time authorized keys removed (--remove-authorized-keys USER, or
#     every user's, root's included: --remove-all-authorized-keys)
#   - users the image must not ship removed (--remove-user USER: the
#     distribution's default user, e.g. ubuntu): passwd, shadow, group
#     memberships, sudoers.d lines, home under /home
#   - registry credentials removed, always: docker's config.json of root and
#     every /home user, the build's tmpfs copy (/run/hedgehog-lab/registry),
#     and lab.conf lines whose key names a token, password, secret or auth
#   - DHCP leases, random seed (and its save at this shutdown), journal, apt
#     caches and shell history removed
#   - free space trimmed (fstrim), so that the exported disk stays small
#
# Usage: seal.sh [--root DIR] [--remove-authorized-keys USER]... [--remove-all-authorized-keys]
#                [--remove-user USER]... [--no-trim] [--keep-logs]
#   --root DIR                      seal the tree at DIR instead of / (image builds, tests)
#   --remove-authorized-keys USER   delete USER's ~/.ssh/authorized_keys (repeatable)
#   --remove-all-authorized-keys    delete authorized_keys and authorized_keys2 of every
#                                   user of the tree's passwd (root too) and under /home;
#                                   never through a symlink (a symlinked ~/.ssh is refused)
#   --remove-user USER              remove USER from the tree (repeatable; absent: a note)
#   --no-trim                       skip fstrim (always skipped with --root)
#   --keep-logs                     keep /var/log and the journal
# Exit codes: 0 sealed, 1 a step failed, 2 usage error.
set -euo pipefail

root=""
trim=1
keep_logs=0
remove_all_keys=0
remove_keys_for=()
remove_users=()

usage_error() {
  printf 'seal.sh: %s\nUsage: seal.sh [--root DIR] [--remove-authorized-keys USER]... [--remove-all-authorized-keys] [--remove-user USER]... [--no-trim] [--keep-logs]\n' "$*" >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --root) [[ $# -ge 2 ]] || usage_error "--root needs a directory"; root="$2"; shift ;;
    --remove-authorized-keys) [[ $# -ge 2 ]] || usage_error "--remove-authorized-keys needs a user name"; remove_keys_for+=("$2"); shift ;;
    --remove-all-authorized-keys) remove_all_keys=1 ;;
    --no-trim) trim=0 ;;
    --keep-logs) keep_logs=1 ;;
    --remove-user) [[ $# -ge 2 && $2 =~ ^[a-z_][a-z0-9_-]*$ ]] || usage_error "--remove-user needs a user name"; remove_users+=("$2"); shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done
if [[ -n $root ]]; then
  [[ -d $root ]] || usage_error "--root: '$root' is not a directory"
  root="$(cd "$root" && pwd)"
  [[ $root != / ]] || root=""
fi

say() { printf 'seal: %s\n' "$*" >&2; }

# Home directory of USER from the tree's passwd.
home_of() {
  local user="$1"
  awk -F: -v u="$user" '$1 == u { print $6; found = 1 } END { exit !found }' "$root/etc/passwd"
}

# remove_keys_in HOME: delete HOME/.ssh/authorized_keys{,2} (regular files
# or symlinks themselves, never what a link points to). A symlinked home or
# .ssh is refused: deleting through it could reach outside the tree.
remove_keys_in() {
  local home="$1" dir
  dir="$root${home%/}/.ssh"
  [[ -n $home && $home == /* ]] || return 0
  if [[ -L $root${home%/} || -L $dir ]]; then
    # A system account's home like /bin (-> usr/bin) has no keys: nothing to do.
    [[ -e $dir || -L $dir ]] || return 0
    say "refusing to remove authorized keys through the symlink ${home%/} or ${home%/}/.ssh"
    return 1
  fi
  [[ -d $dir ]] || return 0
  find -P "$dir" -mindepth 1 -maxdepth 1 \( -name authorized_keys -o -name authorized_keys2 \) \
    \( -type f -o -type l \) -delete
}

for user in "${remove_keys_for[@]}"; do
  home="$(home_of "$user")" || usage_error "--remove-authorized-keys: no user '$user' in $root/etc/passwd"
  remove_keys_in "$home" || exit 1
  say "removed authorized keys of $user"
done

if ((remove_all_keys)); then
  failed=0
  # Every home of the passwd (root's too), plus directories under /home that
  # no passwd entry names (a deleted user's keys would still be in the image).
  while IFS= read -r home; do
    remove_keys_in "$home" || failed=1
  done < <({
    awk -F: '$6 ~ /^\// { print $6 }' "$root/etc/passwd"
    if [[ -d $root/home && ! -L $root/home ]]; then
      find -P "$root/home" -mindepth 1 -maxdepth 1 -printf '/home/%f\n'
    fi
  } | sort -u)
  ((failed == 0)) || exit 1
  say "removed the authorized keys of every user"
fi

# Users the image must not ship: their entries (file contents rewritten in
# place, so owner and mode stay), group memberships, sudoers lines and home.
for user in "${remove_users[@]}"; do
  if ! home="$(home_of "$user")"; then
    say "no user $user in the tree: nothing to remove"
    continue
  fi
  for f in passwd shadow group gshadow subuid subgid; do
    [[ -f $root/etc/$f ]] || continue
    awk -F: -v OFS=: -v u="$user" -v f="$f" '$1 == u { next }
      f == "group" || f == "gshadow" {
        for (i = (f == "group" ? 4 : 3); i <= 4 && i <= NF; i++) {
          n = split($i, m, ","); out = ""
          for (j = 1; j <= n; j++) if (m[j] != u) out = out (out == "" ? "" : ",") m[j]
          $i = out
        }
      } { print }' "$root/etc/$f" >"$root/etc/$f.seal-new"
    cat "$root/etc/$f.seal-new" >"$root/etc/$f"
    rm -f "$root/etc/$f.seal-new"
  done
  if [[ -d $root/etc/sudoers.d ]]; then
    find -P "$root/etc/sudoers.d" -maxdepth 1 -type f -exec sed -i -E "/^[[:space:]]*${user}[[:space:]]/d" {} +
  fi
  if [[ $home == /home/?* && -d $root$home && ! -L $root$home ]]; then rm -rf -- "$root$home"; fi
  say "removed user $user"
done

# Registry credentials never ship: docker's config (what hhfab and oras read),
# the build's tmpfs copy, and secrets in lab.conf.
rm -rf "$root/run/hedgehog-lab/registry"
for docker_dir in "$root/root/.docker" "$root"/home/*/.docker; do
  [[ -d $docker_dir && ! -L $docker_dir ]] || continue
  find -P "$docker_dir" -maxdepth 1 \( -name config.json -o -name 'config.json.*' \) -delete
done
if [[ -f $root/etc/hedgehog-lab/lab.conf ]]; then
  sed -i -E '/^[[:space:]]*[A-Z0-9_]*(TOKEN|PASSWORD|PASSWD|SECRET|AUTH)[A-Z0-9_]*=/d' "$root/etc/hedgehog-lab/lab.conf"
fi
say "registry credentials removed"

# machine-id: empty file, not absent (absent makes some tools fail; empty
# tells systemd "first boot": it generates and commits a new id).
if [[ -e $root/etc/machine-id ]]; then
  : >"$root/etc/machine-id"
fi
if [[ -d $root/var/lib/dbus ]]; then
  rm -f "$root/var/lib/dbus/machine-id"
  ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
fi
say "machine-id emptied"

rm -f "$root"/etc/ssh/ssh_host_*_key "$root"/etc/ssh/ssh_host_*_key.pub
say "SSH host keys removed (regenerated on first boot)"

if [[ -z $root ]] && command -v cloud-init >/dev/null; then
  cloud-init clean --logs --seed >&2 || say "cloud-init clean failed; removing its files"
fi
# The same by hand (with --root, without cloud-init, or after a failed clean):
# everything under /var/lib/cloud (instance state, the seed, semaphores,
# scripts) and its logs.
if [[ -d $root/var/lib/cloud && ! -L $root/var/lib/cloud ]]; then
  find -P "$root/var/lib/cloud" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
fi
rm -f "$root"/var/log/cloud-init.log "$root"/var/log/cloud-init-output.log
# Ubuntu's installer keeps the autoinstall user-data (with the build's SSH
# key) as cloud-init config; every clone would re-add the key from it.
rm -f "$root/etc/cloud/cloud.cfg.d/99-installer.cfg"
say "cloud-init state cleaned"

rm -f "$root"/var/lib/dhcp/*.leases "$root"/var/lib/NetworkManager/*.lease \
  "$root"/var/lib/systemd/network/*.lease 2>/dev/null || true
rm -f "$root/var/lib/systemd/random-seed"
if [[ -z $root && -d /run/systemd/system ]]; then
  # systemd-random-seed.service saves a new seed file at shutdown: every clone
  # would boot with the same one (and systemd 252 under TCG, no RDRAND, then
  # hung minutes in getrandom at boot). Not on this shutdown: a runtime
  # drop-in, gone with /run on the next boot.
  mkdir -p /run/systemd/system/systemd-random-seed.service.d
  printf '[Service]\nExecStop=\n' >/run/systemd/system/systemd-random-seed.service.d/50-hedgehog-lab-seal.conf
  systemctl daemon-reload || say "systemctl daemon-reload failed; the shutdown may save a random seed"
fi
rm -f "$root"/root/.bash_history "$root"/home/*/.bash_history
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin
rm -rf "$root"/tmp/* "$root"/var/tmp/*

if ((keep_logs == 0)); then
  rm -rf "$root"/var/log/journal/*
  find "$root/var/log" -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete 2>/dev/null || true
  # Keep the files (services expect them), drop their content; keep the
  # orchestrator's own log: it tells how the lab was initialized.
  find "$root/var/log" -type f ! -name 'hedgehog-lab.log' -exec truncate -s 0 {} + 2>/dev/null || true
  say "logs cleared"
fi

# The package inventory the build turns into the appliance's SBOM (taken last:
# the image is final now), in /var/lib/hedgehog-lab/sbom-inventory.json. A
# tree without a dpkg database (not Debian/Ubuntu) has none.
if [[ -f $root/var/lib/dpkg/status ]]; then
  inventory="$(dirname "${BASH_SOURCE[0]}")/hedgehog-lab-sbom-inventory"
  [[ -x $inventory ]] || inventory="$(dirname "${BASH_SOURCE[0]}")/sbom-inventory.sh"
  "$inventory" ${root:+--root "$root"} || { say "the SBOM package inventory failed"; exit 1; }
else
  say "no dpkg database in the tree: no SBOM package inventory"
fi

if ((trim)) && [[ -z $root ]]; then
  sync
  if command -v fstrim >/dev/null; then
    fstrim --all --verbose >&2 || say "fstrim failed (is discard enabled on the virtual disk?)"
  fi
fi
sync
say "sealed${root:+ $root}"
