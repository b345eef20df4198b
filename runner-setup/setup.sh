#!/usr/bin/env bash
# labforge runner-setup: turn a bare KVM host into one or many GitHub Actions runners that can
# build labforge appliances (Packer + QEMU/KVM).
#
# Every file it writes goes under --root (default /), and every system command it runs can be
# replaced through an environment variable (SYSTEMCTL, UDEVADM, APT_GET, ...), so that the tests
# run this very script end to end against a temporary root. See --help and docs/RUNNER_SETUP.md.
set -euo pipefail
# put_file reads its content from a pipe and must update this shell's change counters.
shopt -s lastpipe

readonly SCRIPT_NAME=setup.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR

# --- defaults -------------------------------------------------------------------------------------

readonly DEFAULT_RUNNER_VERSION=2.330.0
# GitHub refuses registrations from runners older than this.
readonly MIN_RUNNER_VERSION=2.329.0
# SHA-256 of the official actions-runner-linux-x64-<version>.tar.gz release assets (as published on
# the release page and in GitHub's "New self-hosted runner" instructions).
declare -A RUNNER_SHA256_X64=(
  [2.329.0]=194f1e1e4bd02f80b7e9633fc546084d8d4e19f3928a324d512ea53430102e1d
  [2.330.0]=af5c33fa94f3cc33b8e97937939136a6b04197e6dadfcfb3b6e33ae1bf41e79a
)
readonly PACKAGES=(qemu-system-x86 qemu-utils packer genisoimage openssh-client zstd jq git curl ca-certificates)
readonly BASE_LABELS=self-hosted,linux,x64,kvm,packer
readonly UDEV_RULE_PATH=/etc/udev/rules.d/99-labforge-kvm.rules
readonly NESTED_CONF_PATH=/etc/modprobe.d/labforge-kvm-nested.conf
readonly STATE_DIR=/etc/labforge-runner
readonly RUNNER_PATH_VALUE=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
readonly HASHICORP_GPG_URL=https://apt.releases.hashicorp.com/gpg
readonly HASHICORP_KEYRING=/usr/share/keyrings/hashicorp-archive-keyring.gpg
readonly HASHICORP_LIST=/etc/apt/sources.list.d/hashicorp.list

# Seed requirements per concurrent build (warn below) and the hard minimum for one build (fail below).
readonly REC_CORES=16 REC_MEM_GB=32 REC_DISK_GB=500
readonly MIN_CORES=2 MIN_MEM_GB=8 MIN_DISK_GB=40

# Injectable commands (tests point these at test doubles) and preflight inputs.
SYSTEMCTL=${SYSTEMCTL:-systemctl}
UDEVADM=${UDEVADM:-udevadm}
APT_GET=${APT_GET:-apt-get}
DPKG_QUERY=${DPKG_QUERY:-dpkg-query}
CURL=${CURL:-curl}
GPG=${GPG:-gpg}
PACKER=${PACKER:-packer}
MODPROBE=${MODPROBE:-modprobe}
USERADD=${USERADD:-useradd}
USERMOD=${USERMOD:-usermod}
USERDEL=${USERDEL:-userdel}
GROUPADD=${GROUPADD:-groupadd}
GROUPDEL=${GROUPDEL:-groupdel}
SETPRIV=${SETPRIV:-setpriv}
CPUINFO_PATH=${CPUINFO_PATH:-/proc/cpuinfo}
MEMINFO_PATH=${MEMINFO_PATH:-/proc/meminfo}
KVM_DEVICE=${KVM_DEVICE:-/dev/kvm}
NESTED_PARAM_PATH=${NESTED_PARAM_PATH:-}
OS_RELEASE_PATH=${OS_RELEASE_PATH:-/etc/os-release}
UDEV_CONTROL_PATH=${UDEV_CONTROL_PATH:-/run/udev/control}
HOST_ARCH=${HOST_ARCH:-$(uname -m)}

# --- options ----------------------------------------------------------------------------------------

COMMAND=install
ROOT=${LABFORGE_ROOT:-/}
URL=""
TOKEN_FILE=""
TOKEN=""
RUNNER_NAME=""
COUNT=1
EXTRA_LABELS=""
RUNNER_GROUP=""
EPHEMERAL=false
GITHUB_PAT_FILE=""
RUNNER_USER=labforge-runner
RUNNER_VERSION=$DEFAULT_RUNNER_VERSION
RUNNER_SHA256=""
RUNNER_TARBALL=""
BASE_DIR=/opt/labforge-runner
CACHE_DIR=/var/cache/labforge-runner
MIN_FREE_GB=50
PACKER_SOURCE=auto
ENABLE_NESTED=false
ALLOW_NO_KVM=false
SKIP_REGISTER=false
PURGE=false
DRY_RUN=false

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME [COMMAND] [OPTIONS]

Turn a bare KVM host into one or many GitHub Actions runners that build labforge appliances.

Commands:
  install        (default) preflight, packages, KVM access, runner users, runners, services
  preflight      only the host checks; exit 0 = ready (maybe with warnings), 1 = not ready
  status         show each installed runner's service state; exit 1 if one is not active
  uninstall      stop, deregister and remove what install added (also: --uninstall)

Registration:
  --url URL              repository or organization URL (https://github.com/OWNER[/REPO])
  --token-file FILE      file holding the registration token (or set RUNNER_TOKEN in the
                         environment). Never pass a token on the command line.
                         uninstall needs a removal token the same way.
  --name NAME            runner name (default: short host name); with --count N: NAME-1..NAME-N
  --count N              N isolated runners on this host (own user, directory, work folder,
                         caches and service), 1..16 (default 1)
  --labels a,b           extra labels after $BASE_LABELS
  --runner-group NAME    runner group (organization runners)
  --ephemeral            register ephemeral runners (one job each, see docs/RUNNER_SETUP.md)
  --github-pat-file FILE with --ephemeral: a long-lived token (fine-grained PAT, "Self-hosted
                         runners: write" / repository "Administration: write") that the service
                         uses to register the runner again after each job; kept root-only
  --skip-register        prepare the host only: packages, KVM access, users, directories,
                         environment and hooks; no download, registration or service
                         (with uninstall: remove without deregistering)

Runner package:
  --runner-version V     actions/runner version (default $DEFAULT_RUNNER_VERSION, minimum $MIN_RUNNER_VERSION)
  --runner-sha256 HEX    expected SHA-256 of the tarball (built in for: ${!RUNNER_SHA256_X64[*]})
  --runner-tarball PATH  use this tarball instead of downloading it (checksum still verified)

Host:
  --user NAME            runner user (default labforge-runner; with --count N: NAME-1..NAME-N)
  --base-dir DIR         runner installations (default /opt/labforge-runner)
  --cache-dir DIR        persistent Packer caches and downloads (default /var/cache/labforge-runner)
  --min-free-gb N        job-started hook fails a job when less disk is free (default 50)
  --packer-source S      auto (HashiCorp's apt repository where reachable, else the distribution),
                         hashicorp, or distro (default auto)
  --enable-nested        turn nested virtualization on persistently (modprobe.d) and reload kvm
  --allow-no-kvm         missing /dev/kvm or CPU flags are warnings, not failures (CI hosts)

Lifecycle:
  --dry-run              print every action without doing any
  --purge                with uninstall: also remove the caches install created (only what
                         <cache-dir>/.labforge-install-manifest lists)
  --root DIR             prefix for every file written and read (default /, or LABFORGE_ROOT)
  -h, --help             this help

Exit codes: 0 done, 1 failed (preflight not passed, a step failed), 2 bad input.

Test seams (environment): SYSTEMCTL UDEVADM APT_GET DPKG_QUERY CURL GPG PACKER MODPROBE USERADD
USERMOD USERDEL GROUPADD GROUPDEL SETPRIV (commands); CPUINFO_PATH MEMINFO_PATH KVM_DEVICE
NESTED_PARAM_PATH OS_RELEASE_PATH UDEV_CONTROL_PATH HOST_ARCH (preflight inputs).
EOF
}

# --- output -----------------------------------------------------------------------------------------

CHANGES=0
LAST_CHANGED=false

say() { printf '%s\n' "$*"; }
section() { printf '\n==> %s\n' "$*"; }
warn() { printf '  warning: %s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }
die_input() {
  printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
  printf 'Run "%s --help" for usage.\n' "$SCRIPT_NAME" >&2
  exit 2
}
unchanged() { say "  = $*"; }

# Record a change that needs no command of its own (the caller did the work, or will not in a dry run).
changed() {
  CHANGES=$((CHANGES + 1))
  if $DRY_RUN; then say "  would: $*"; else say "  + $*"; fi
}

# act DESCRIPTION COMMAND...: run a command that changes the system (printed, not run, in a dry run).
act() {
  local description=$1
  shift
  changed "$description"
  $DRY_RUN && return 0
  "$@"
}

# --- paths, users, files ----------------------------------------------------------------------------

# r PATH: the path as seen from this script (under --root).
r() {
  if [[ $ROOT == / ]]; then printf '%s' "$1"; else printf '%s%s' "${ROOT%/}" "$1"; fi
}

# The shadow tools write under --prefix without chrooting.
prefix_args() {
  if [[ $ROOT != / ]]; then printf '%s\n' --prefix "${ROOT%/}"; fi
}

passwd_field() { # USER FIELD
  awk -F: -v u="$1" -v f="$2" '$1 == u { print $f; found = 1; exit } END { exit !found }' "$(r /etc/passwd)"
}
group_field() { # GROUP FIELD
  awk -F: -v g="$1" -v f="$2" '$1 == g { print $f; found = 1; exit } END { exit !found }' "$(r /etc/group)"
}
user_exists() { passwd_field "$1" 1 >/dev/null 2>&1; }
group_exists() { group_field "$1" 1 >/dev/null 2>&1; }
user_in_group() { # USER GROUP
  local members
  members=$(group_field "$2" 4 2>/dev/null) || return 1
  [[ ",$members," == *",$1,"* ]]
}
# Supplementary group ids of USER (comma separated, possibly empty).
user_groups() {
  awk -F: -v u="$1" '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) { printf "%s%s", sep, $3; sep = "," } }' "$(r /etc/group)"
}
uid_of() { if [[ $1 == root ]]; then echo 0; else passwd_field "$1" 3; fi; }
gid_of() { if [[ $1 == root ]]; then echo 0; else group_field "$1" 3; fi; }

# as_user USER COMMAND...: run a command as USER (ids from the --root user database, so it works
# for users that exist only in a test root). The caller's environment is kept: pass secrets as
# environment variables of this call, never as arguments.
as_user() {
  local user=$1 uid gid groups home
  shift
  uid=$(passwd_field "$user" 3) || die "user $user does not exist"
  gid=$(passwd_field "$user" 4)
  home=$(passwd_field "$user" 6)
  groups=$(user_groups "$user")
  local group_args=(--clear-groups)
  [[ -n $groups ]] && group_args=(--groups "$groups")
  HOME=$home USER=$user LOGNAME=$user "$SETPRIV" --reuid "$uid" --regid "$gid" "${group_args[@]}" -- "$@"
}

# Symlink policy: root never follows a symbolic link in a tree a runner user can write. Root
# creates and fixes only root-owned paths and the top of each runner tree ($dir, $cache, whose
# parents root owns); everything inside a runner tree is created and changed by the runner user
# itself (as_user), so a link a job planted there reaches nothing the user could not reach anyway.

# put_file PATH MODE OWNER GROUP < CONTENT: install a root-managed file (under --root) if its
# content, mode or owner differ. Sets LAST_CHANGED. Never for paths inside a runner tree (put_user_file).
put_file() {
  local path=$1 mode=$2 owner=$3 group=$4 dest tmp uid="" gid=""
  dest=$(r "$path")
  tmp=$(mktemp "$WORK_TMP/file.XXXXXX")
  cat >"$tmp"
  uid=$(uid_of "$owner" 2>/dev/null) || uid=""
  gid=$(gid_of "$group" 2>/dev/null) || gid=""
  LAST_CHANGED=false
  if [[ -f $dest && ! -L $dest && -n $uid && -n $gid ]] && cmp -s "$tmp" "$dest" &&
    [[ $(stat -c '%a %u %g' "$dest") == "$mode $uid $gid" ]]; then
    unchanged "$path"
    record_created file "$path"
    return 0
  fi
  LAST_CHANGED=true
  local verb=write
  [[ -e $dest || -L $dest ]] && verb=update
  changed "$verb $path ($mode $owner:$group)"
  $DRY_RUN && return 0
  mkdir -p "$(dirname "$dest")"
  chmod "$mode" "$tmp"
  chown "$uid:$gid" "$tmp"
  # mv replaces a symbolic link at the destination instead of writing through it.
  mv -fT "$tmp" "$dest"
  record_created file "$path"
}

# put_user_file PATH MODE USER < CONTENT: a file inside USER's runner tree, written by USER (a
# symbolic link there is replaced, never written through). Sets LAST_CHANGED.
put_user_file() {
  local path=$1 mode=$2 user=$3 dest tmp uid="" gid=""
  dest=$(r "$path")
  tmp=$(mktemp "$WORK_TMP/file.XXXXXX")
  cat >"$tmp"
  uid=$(passwd_field "$user" 3 2>/dev/null) || uid=""
  gid=$(passwd_field "$user" 4 2>/dev/null) || gid=""
  LAST_CHANGED=false
  if [[ -f $dest && ! -L $dest && -n $uid ]] && cmp -s "$tmp" "$dest" &&
    [[ $(stat -c '%a %u %g' "$dest") == "$mode $uid $gid" ]]; then
    unchanged "$path"
    return 0
  fi
  LAST_CHANGED=true
  if [[ -L $dest ]]; then
    warn "$path is a symbolic link (planted by a job?); replacing it with a file written as $user, not following it"
  fi
  local verb=write
  [[ -e $dest || -L $dest ]] && verb=update
  changed "$verb $path ($mode $user:$user, as $user)"
  $DRY_RUN && return 0
  # shellcheck disable=SC2016 # expanded by the inner shell
  as_user "$user" sh -c 'set -e; t=$(mktemp "$(dirname "$1")/.labforge-write.XXXXXX"); cat >"$t"; chmod "$2" "$t"; mv -fT "$t" "$1"' \
    labforge-user-write "$dest" "$mode" <"$tmp" || die "cannot write $path as $user"
}

# ensure_dir PATH MODE OWNER GROUP: a root-managed directory (parents root owns). Records it
# in the install manifest when this run creates it.
ensure_dir() {
  local path=$1 mode=$2 owner=$3 group=$4 dest uid="" gid=""
  dest=$(r "$path")
  uid=$(uid_of "$owner" 2>/dev/null) || uid=""
  gid=$(gid_of "$group" 2>/dev/null) || gid=""
  if ! [[ -d $dest && -n $uid && -n $gid && $(stat -L -c '%a %u %g' "$dest") == "$mode $uid $gid" ]]; then
    changed "directory $path ($mode $owner:$group)"
    $DRY_RUN && return 0
    if [[ -d $dest ]]; then
      chmod "$mode" "$dest"
      chown "$uid:$gid" "$dest"
    else
      mkdir -p "$(dirname "$dest")"
      install -d -m "$mode" -o "$uid" -g "$gid" "$dest"
      record_created dir "$path"
      return 0
    fi
  fi
  # Our own subdirectories (hooks, bin, downloads) are recorded even when an earlier version made
  # them; the base and cache directories themselves only when this script created them.
  [[ $path == "$BASE_DIR" || $path == "$CACHE_DIR" ]] || record_created dir "$path"
}

# ensure_user_tree PATH MODE USER: the top of a runner tree ($dir or $cache): created by root in a
# directory root owns and handed to USER. Refuses a symbolic link (chowning through it would give
# its target away) and a parent that someone other than root could change.
ensure_user_tree() {
  local path=$1 mode=$2 user=$3 dest parent uid="" gid=""
  dest=$(r "$path")
  parent=$(dirname "$dest")
  uid=$(passwd_field "$user" 3 2>/dev/null) || uid=""
  gid=$(passwd_field "$user" 4 2>/dev/null) || gid=""
  [[ -L $dest ]] && die "$path is a symbolic link; refusing to hand it to $user (remove it, then run install again)"
  if [[ -d $parent ]] && ! [[ $(stat -c '%u' "$parent") == 0 && $(stat -c '%A' "$parent") != ?????w???? && $(stat -c '%A' "$parent") != ????????w? ]]; then
    die "$(dirname "$path") must be owned by root and writable only by root ($(stat -c '%A %U:%G' "$parent")); refusing to create $path in it"
  fi
  local created=false
  if [[ -d $dest ]]; then
    [[ -n $uid && $(stat -c '%a %u %g' "$dest") == "$mode $uid $gid" ]] || {
      changed "directory $path ($mode $user:$user)"
      $DRY_RUN || { chown -h "$uid:$gid" "$dest" && chmod "$mode" "$dest"; }
    }
  else
    [[ -e $dest ]] && die "$path exists and is not a directory; refusing to replace it"
    changed "directory $path ($mode $user:$user)"
    $DRY_RUN || install -d -m "$mode" -o "$uid" -g "$gid" "$dest"
    created=true
  fi
  # A tree is recorded when created, or when an earlier run (its runner manifest) created it.
  if $created || [[ -n ${KNOWN_RUNNER:-} ]]; then record_created tree "$path"; fi
}

# ensure_user_dir PATH MODE USER: a directory inside USER's runner tree, made by USER. A symbolic
# link there (planted by a job) is replaced by a directory; its target is never touched.
ensure_user_dir() {
  local path=$1 mode=$2 user=$3 dest uid="" gid=""
  dest=$(r "$path")
  uid=$(passwd_field "$user" 3 2>/dev/null) || uid=""
  gid=$(passwd_field "$user" 4 2>/dev/null) || gid=""
  if [[ -d $dest && ! -L $dest && -n $uid && $(stat -c '%a %u %g' "$dest") == "$mode $uid $gid" ]]; then
    return 0
  fi
  if [[ -L $dest ]]; then
    warn "$path is a symbolic link (planted by a job?); replacing it with a directory made by $user, not following it"
  fi
  changed "directory $path ($mode $user:$user, as $user)"
  $DRY_RUN && return 0
  # shellcheck disable=SC2016 # expanded by the inner shell
  as_user "$user" sh -c 'set -e; if [ -L "$1" ]; then rm -f "$1"; fi; if [ ! -d "$1" ]; then mkdir "$1"; fi; chmod "$2" "$1"' \
    labforge-user-mkdir "$dest" "$mode" || die "cannot make $path as $user"
  [[ $(stat -c '%u' "$dest") == "$uid" ]] || die "$path is not owned by $user; remove it, then run install again"
}

# remove_path PATH: remove a file or directory tree under --root if present (rm never follows links).
remove_path() {
  local dest
  dest=$(r "$1")
  [[ -e $dest || -L $dest ]] || return 0
  act "remove $1" rm -rf -- "$dest"
}

# --- install manifest ---------------------------------------------------------------------------------
# What install created under the base and cache directories, one "TYPE PATH" line each (TYPE: file,
# dir = removed only when empty, tree = a runner's directory or cache, removed with its content), in
# the order created. Root-owned files: $BASE_DIR/.labforge-install-manifest for the base directory,
# $CACHE_DIR/.labforge-install-manifest for the caches (kept until uninstall --purge).
readonly INSTALL_MANIFEST=.labforge-install-manifest

manifest_for() { # PATH: the manifest that records PATH (empty: none)
  if [[ $1 == "$BASE_DIR" || $1 == "$BASE_DIR"/* ]]; then echo "$BASE_DIR/$INSTALL_MANIFEST"
  elif [[ $1 == "$CACHE_DIR" || $1 == "$CACHE_DIR"/* ]]; then echo "$CACHE_DIR/$INSTALL_MANIFEST"
  fi
}

# record_created TYPE PATH
record_created() {
  $DRY_RUN && return 0
  local manifest file line
  manifest=$(manifest_for "$2")
  [[ -n $manifest ]] || return 0
  file=$(r "$manifest")
  [[ -d $(dirname "$file") ]] || return 0
  [[ -L $file ]] && die "$manifest is a symbolic link; refusing to write through it"
  line="$1 $2"
  [[ -f $file ]] && grep -qxF -- "$line" "$file" && return 0
  printf '%s\n' "$line" >>"$file"
  chmod 644 "$file"
}

# Host-level state (what this script created, so uninstall removes exactly that).
host_state_get() { # KEY
  local file
  file=$(r "$STATE_DIR/host.conf")
  [[ -f $file ]] || return 1
  awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); print; found = 1 } END { exit !found }' "$file"
}
HOST_STATE_LINES=()
host_state_set() { HOST_STATE_LINES+=("$1=$2"); }
# Keep what earlier runs recorded (e.g. the nested config of a run with --enable-nested).
host_state_load() {
  local key value
  for key in kvm_group_created nested_conf udev_rule kvm_device_original; do
    value=$(host_state_get "$key" 2>/dev/null) && host_state_set "$key" "$value"
  done
  return 0
}

# Per-runner manifest: key=value lines, read without evaluating anything.
manifest_get() { # FILE KEY
  awk -F= -v k="$2" '$1 == k { sub(/^[^=]*=/, ""); print; found = 1 } END { exit !found }' "$1"
}
installed_manifests() {
  local dir
  dir=$(r "$STATE_DIR/runners")
  [[ -d $dir ]] || return 0
  find "$dir" -maxdepth 1 -name '*.conf' -type f | sort
}

# --- input validation ---------------------------------------------------------------------------

# need_value OPTION [NEXT...]: the option's value must follow, and must not be the next option
# ("--labels --dry-run" is a missing label, not the label "--dry-run").
need_value() {
  [[ $# -ge 2 && -n $2 ]] || die_input "$1: missing value"
  [[ $2 != -[-A-Za-z]* ]] || die_input "$1: missing value (found the option '$2' where its value should be)"
}

parse_args() {
  if [[ $# -gt 0 && $1 != -* ]]; then
    case $1 in
      install | preflight | status | uninstall) COMMAND=$1 ;;
      *) die_input "unknown command '$1' (use install, preflight, status or uninstall)" ;;
    esac
    shift
  fi
  while [[ $# -gt 0 ]]; do
    case $1 in
      -h | --help) usage; exit 0 ;;
      --url) need_value "$@"; URL=$2; shift ;;
      --token-file) need_value "$@"; TOKEN_FILE=$2; shift ;;
      --token | --token=*) die_input "--token: a token on the command line is visible to every user of this host (ps, /proc); put it in RUNNER_TOKEN or a file given with --token-file" ;;
      --name) need_value "$@"; RUNNER_NAME=$2; shift ;;
      --count) need_value "$@"; COUNT=$2; shift ;;
      --labels) need_value "$@"; EXTRA_LABELS=$2; shift ;;
      --runner-group) need_value "$@"; RUNNER_GROUP=$2; shift ;;
      --ephemeral) EPHEMERAL=true ;;
      --github-pat-file) need_value "$@"; GITHUB_PAT_FILE=$2; shift ;;
      --user) need_value "$@"; RUNNER_USER=$2; shift ;;
      --runner-version) need_value "$@"; RUNNER_VERSION=$2; shift ;;
      --runner-sha256) need_value "$@"; RUNNER_SHA256=$2; shift ;;
      --runner-tarball) need_value "$@"; RUNNER_TARBALL=$2; shift ;;
      --base-dir) need_value "$@"; BASE_DIR=$2; shift ;;
      --cache-dir) need_value "$@"; CACHE_DIR=$2; shift ;;
      --min-free-gb) need_value "$@"; MIN_FREE_GB=$2; shift ;;
      --packer-source) need_value "$@"; PACKER_SOURCE=$2; shift ;;
      --enable-nested) ENABLE_NESTED=true ;;
      --allow-no-kvm) ALLOW_NO_KVM=true ;;
      --skip-register) SKIP_REGISTER=true ;;
      --uninstall) COMMAND=uninstall ;;
      --purge) PURGE=true ;;
      --dry-run) DRY_RUN=true ;;
      --root) need_value "$@"; ROOT=$2; shift ;;
      *) die_input "unknown option '$1'" ;;
    esac
    shift
  done
}

version_at_least() { # HAVE WANT
  [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]
}

validate_common() {
  [[ $ROOT == /* ]] || die_input "--root: '$ROOT' is not an absolute path (give an absolute directory)"
  [[ -d $ROOT ]] || die_input "--root: '$ROOT' does not exist (create it or use /)"
  local opt value
  for opt in base-dir cache-dir; do
    if [[ $opt == base-dir ]]; then value=$BASE_DIR; else value=$CACHE_DIR; fi
    [[ $value == /* && $value != / && $value != *..* && $value != */./* && $value != */. ]] ||
      die_input "--$opt: '$value' must be an absolute directory other than / without '.' or '..'"
    [[ $value =~ ^[A-Za-z0-9/._+-]+$ ]] ||
      die_input "--$opt: '$value' may only contain letters, digits and / . _ + -"
    while [[ $value == *//* ]]; do value=${value//\/\//\/}; done
    value=${value%/}
    system_directory "$value" &&
      die_input "--$opt: '$value' is a system directory (uninstall would remove from it); give a directory of its own, such as /opt/labforge-runner or /var/cache/labforge-runner"
    if [[ $opt == base-dir ]]; then BASE_DIR=$value; else CACHE_DIR=$value; fi
  done
  if [[ $BASE_DIR == "$CACHE_DIR" || $BASE_DIR == "$CACHE_DIR"/* || $CACHE_DIR == "$BASE_DIR"/* ]]; then
    die_input "--cache-dir: '$CACHE_DIR' and --base-dir '$BASE_DIR' must be separate directories, neither inside the other"
  fi
  validate_numbers
  [[ $RUNNER_USER =~ ^[a-z_][a-z0-9_-]{0,28}$ ]] ||
    die_input "--user: '$RUNNER_USER' is not a valid user name (lower case letters, digits, '-', '_'; at most 29 characters)"
}

# system_directory DIR: a directory of the system (or one everybody can write to), never a base or
# cache directory of ours.
system_directory() {
  case $1 in
    / | /bin | /boot | /dev | /etc | /home | /lib | /lib32 | /lib64 | /libx32 | /media | /mnt | /opt | /proc | \
      /root | /run | /sbin | /srv | /sys | /tmp | /usr | /usr/bin | /usr/games | /usr/include | /usr/lib | \
      /usr/lib32 | /usr/lib64 | /usr/libexec | /usr/local | /usr/local/bin | /usr/local/etc | /usr/local/games | \
      /usr/local/include | /usr/local/lib | /usr/local/man | /usr/local/sbin | /usr/local/share | /usr/local/src | /usr/sbin | /usr/share | /usr/src | \
      /var | /var/backups | /var/cache | /var/lib | /var/local | /var/log | /var/mail | /var/opt | /var/spool | \
      /var/tmp | /var/www | /snap | /lost+found) return 0 ;;
    /tmp/* | /var/tmp/* | /dev/* | /proc/* | /sys/* | /run/*) return 0 ;;
  esac
  return 1
}

# validate_numbers: every numeric option, for every command (preflight computes with --count).
validate_numbers() {
  if ! [[ $COUNT =~ ^[0-9]{1,3}$ ]] || ((10#$COUNT < 1 || 10#$COUNT > 16)); then
    die_input "--count: '$COUNT' is not a number from 1 to 16"
  fi
  COUNT=$((10#$COUNT))
  if ! [[ $MIN_FREE_GB =~ ^[0-9]{1,6}$ ]]; then
    die_input "--min-free-gb: '$MIN_FREE_GB' is not a whole number of GB from 0 to 999999"
  fi
  MIN_FREE_GB=$((10#$MIN_FREE_GB))
}

validate_install() {
  if [[ -z $RUNNER_NAME ]]; then
    RUNNER_NAME=$(hostname -s 2>/dev/null || hostname)
  fi
  [[ $RUNNER_NAME =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,60}$ ]] ||
    die_input "--name: '$RUNNER_NAME' is not a valid runner name (letters, digits, '.', '_', '-'; at most 61 characters)"
  case $RUNNER_NAME in
    hooks | bin | downloads) die_input "--name: '$RUNNER_NAME' is reserved (install keeps its own $RUNNER_NAME directory next to the runners)" ;;
  esac
  if [[ -n $EXTRA_LABELS ]]; then
    [[ $EXTRA_LABELS =~ ^[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*$ ]] ||
      die_input "--labels: '$EXTRA_LABELS' must be a comma-separated list of labels (letters, digits, '.', '_', '-')"
  fi
  case $PACKER_SOURCE in
    auto | hashicorp | distro) ;;
    *) die_input "--packer-source: '$PACKER_SOURCE' is not one of auto, hashicorp, distro" ;;
  esac
  [[ $RUNNER_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die_input "--runner-version: '$RUNNER_VERSION' is not a version like $DEFAULT_RUNNER_VERSION"
  version_at_least "$RUNNER_VERSION" "$MIN_RUNNER_VERSION" ||
    die_input "--runner-version: $RUNNER_VERSION is too old; GitHub only registers runners >= $MIN_RUNNER_VERSION"
  if [[ -n $RUNNER_SHA256 ]]; then
    RUNNER_SHA256=${RUNNER_SHA256,,}
    [[ $RUNNER_SHA256 =~ ^[0-9a-f]{64}$ ]] || die_input "--runner-sha256: not a SHA-256 (64 hex digits)"
  fi
  if ! $SKIP_REGISTER; then
    [[ -n $URL ]] || die_input "--url: missing (https://github.com/OWNER/REPO or https://github.com/ORG; or use --skip-register)"
    [[ $URL =~ ^https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?/?$ ]] ||
      die_input "--url: '$URL' is not https://HOST/OWNER or https://HOST/OWNER/REPO"
    if [[ -z $RUNNER_SHA256 && -z ${RUNNER_SHA256_X64[$RUNNER_VERSION]:-} ]]; then
      die_input "--runner-sha256: no built-in checksum for runner $RUNNER_VERSION; give the SHA-256 from the release page"
    fi
    [[ -n $RUNNER_SHA256 ]] || RUNNER_SHA256=${RUNNER_SHA256_X64[$RUNNER_VERSION]}
    if [[ -n $RUNNER_TARBALL ]]; then
      [[ -f $RUNNER_TARBALL && -r $RUNNER_TARBALL ]] ||
        die_input "--runner-tarball: cannot read '$RUNNER_TARBALL' (give the path of actions-runner-linux-x64-$RUNNER_VERSION.tar.gz)"
      local actual
      actual=$(sha256sum "$RUNNER_TARBALL" | cut -d' ' -f1)
      [[ $actual == "$RUNNER_SHA256" ]] ||
        die_input "--runner-tarball: SHA-256 mismatch for $RUNNER_TARBALL: expected $RUNNER_SHA256, got $actual (refusing to install it; download it again from https://github.com/actions/runner/releases)"
    fi
    if [[ -n $GITHUB_PAT_FILE ]]; then
      $EPHEMERAL || die_input "--github-pat-file: only used with --ephemeral (to register the runner again after each job)"
      [[ -f $GITHUB_PAT_FILE && -r $GITHUB_PAT_FILE && -s $GITHUB_PAT_FILE ]] ||
        die_input "--github-pat-file: cannot read '$GITHUB_PAT_FILE' or it is empty"
    elif $EPHEMERAL; then
      warn "--ephemeral without --github-pat-file: each runner takes one job and is not registered again"
    fi
    read_token
  fi
}

# The REST API base for registration tokens of URL (github.com or GitHub Enterprise Server).
registration_api() {
  local host path api
  host=${URL#https://}
  host=${host%%/*}
  path=${URL#https://"$host"/}
  path=${path%/}
  if [[ $host == github.com ]]; then api=https://api.github.com; else api=https://$host/api/v3; fi
  if [[ $path == */* ]]; then echo "$api/repos/$path"; else echo "$api/orgs/$path"; fi
}

# The registration (or removal) token: from a file or RUNNER_TOKEN; never from argv, never printed.
read_token() {
  if [[ -n $TOKEN_FILE ]]; then
    [[ -f $TOKEN_FILE && -r $TOKEN_FILE ]] || die_input "--token-file: cannot read '$TOKEN_FILE'"
    if [[ $(stat -c '%a' "$TOKEN_FILE") =~ [0-7][0-7][1-7]$ ]]; then
      warn "--token-file: $TOKEN_FILE is readable by other users (chmod 600 it)"
    fi
    TOKEN=$(tr -d ' \t\r\n' <"$TOKEN_FILE")
  else
    TOKEN=${RUNNER_TOKEN:-}
  fi
  unset RUNNER_TOKEN
  [[ -n $TOKEN ]] ||
    die_input "registration token missing: set RUNNER_TOKEN or pass --token-file FILE (token from Settings > Actions > Runners > New self-hosted runner, or POST /repos/OWNER/REPO/actions/runners/registration-token); or use --skip-register"
  [[ $TOKEN =~ ^[^[:space:]]+$ ]] || die_input "registration token: contains white space (check the token file)"
}

# --- runner layout ------------------------------------------------------------------------------------

runner_name() { if ((COUNT == 1)); then echo "$RUNNER_NAME"; else echo "$RUNNER_NAME-$1"; fi; }
runner_user() { if ((COUNT == 1)); then echo "$RUNNER_USER"; else echo "$RUNNER_USER-$1"; fi; }
runner_dir() { echo "$BASE_DIR/$1"; }
runner_cache() { echo "$CACHE_DIR/$1"; }
runner_unit() { echo "labforge-runner-$1.service"; }
runner_labels() {
  if [[ -n $EXTRA_LABELS ]]; then echo "$BASE_LABELS,$EXTRA_LABELS"; else echo "$BASE_LABELS"; fi
}

# --- preflight ----------------------------------------------------------------------------------------

PF_FAILS=0
PF_WARNS=0
CPU_VENDOR=""

# os_release_value KEY: a value from os-release (parsed, not sourced).
os_release_value() {
  [[ -r $OS_RELEASE_PATH ]] || return 0
  awk -v k="$1" 'index($0, k "=") == 1 { v = substr($0, length(k) + 2); gsub(/^["\047]|["\047]$/, "", v); print v; exit }' "$OS_RELEASE_PATH"
}

pf_ok() { printf '  [ok]   %s\n' "$*"; }
pf_warn() { PF_WARNS=$((PF_WARNS + 1)); printf '  [warn] %s\n' "$*"; }
pf_fail() { PF_FAILS=$((PF_FAILS + 1)); printf '  [FAIL] %s\n' "$*"; }
pf_kvm_problem() { if $ALLOW_NO_KVM; then pf_warn "$* (allowed by --allow-no-kvm)"; else pf_fail "$*"; fi; }

# Nearest existing ancestor of PATH (for df before the directory exists).
existing_ancestor() {
  local p=$1
  while [[ ! -e $p ]]; do p=$(dirname "$p"); done
  printf '%s' "$p"
}

preflight() {
  section "preflight"
  local id version pretty
  id=$(os_release_value ID)
  version=$(os_release_value VERSION_ID)
  pretty=$(os_release_value PRETTY_NAME)
  [[ -n $pretty ]] || pretty="$id $version"
  case "$id:$version" in
    ubuntu:22.04 | ubuntu:24.04 | debian:12) pf_ok "os: $pretty" ;;
    *) pf_fail "os: '${pretty:-unknown}' is not supported (Ubuntu 22.04, Ubuntu 24.04 or Debian 12)" ;;
  esac

  if [[ $HOST_ARCH == x86_64 ]]; then
    pf_ok "architecture: x86_64"
  else
    pf_fail "architecture: $HOST_ARCH (labforge builds x86-64 appliances; KVM acceleration needs an x86-64 host)"
  fi

  local flags="" cores=0
  if [[ -r $CPUINFO_PATH ]]; then
    flags=$(grep -m1 '^flags' "$CPUINFO_PATH" || true)
    cores=$(grep -c '^processor' "$CPUINFO_PATH" || true)
  fi
  if [[ " $flags " == *" vmx "* ]]; then
    CPU_VENDOR=intel
    pf_ok "cpu virtualization: vmx (Intel VT-x)"
  elif [[ " $flags " == *" svm "* ]]; then
    CPU_VENDOR=amd
    pf_ok "cpu virtualization: svm (AMD-V)"
  else
    pf_kvm_problem "cpu virtualization: no vmx/svm flag in $CPUINFO_PATH (enable VT-x/AMD-V in the firmware, or nested virtualization on the hypervisor of this VM); Packer would fall back to slow software emulation"
  fi

  if [[ -c $KVM_DEVICE ]]; then
    pf_ok "kvm device: $KVM_DEVICE"
  elif [[ -e $KVM_DEVICE ]]; then
    pf_kvm_problem "kvm device: $KVM_DEVICE exists but is not a character device"
  else
    pf_kvm_problem "kvm device: $KVM_DEVICE missing (load kvm_intel or kvm_amd: modprobe kvm_intel)"
  fi

  local nested_path=$NESTED_PARAM_PATH module=""
  case $CPU_VENDOR in
    intel) module=kvm_intel ;;
    amd) module=kvm_amd ;;
  esac
  if [[ -z $nested_path && -n $module ]]; then nested_path=/sys/module/$module/parameters/nested; fi
  if [[ -z $nested_path ]]; then
    pf_warn "nested virtualization: unknown (no vmx/svm CPU); pre-warmed builds need it"
  elif [[ -r $nested_path ]]; then
    local nested
    nested=$(tr -d '[:space:]' <"$nested_path")
    if [[ $nested == Y || $nested == 1 ]]; then
      pf_ok "nested virtualization: enabled ($nested_path)"
    else
      pf_warn "nested virtualization: disabled ($nested_path = $nested); pre-warmed builds run the lab's VMs inside the build VM: rerun with --enable-nested"
    fi
  else
    pf_warn "nested virtualization: $nested_path missing (${module:-kvm} module not loaded); pre-warmed builds need it: rerun with --enable-nested"
  fi

  local rec_cores=$((REC_CORES * COUNT))
  if ((cores < MIN_CORES)); then
    pf_fail "cores: $cores (a build needs at least $MIN_CORES)"
  elif ((cores < rec_cores)); then
    pf_warn "cores: $cores (recommended $rec_cores for $COUNT concurrent build(s))"
  else
    pf_ok "cores: $cores"
  fi

  local mem_kb=0 mem_gb rec_mem=$((REC_MEM_GB * COUNT))
  [[ -r $MEMINFO_PATH ]] && mem_kb=$(awk '/^MemTotal:/ { print $2 }' "$MEMINFO_PATH")
  mem_gb=$(((${mem_kb:-0} + 524288) / 1048576))
  if ((mem_gb < MIN_MEM_GB)); then
    pf_fail "memory: ${mem_gb} GB (a build needs at least $MIN_MEM_GB GB)"
  elif ((mem_gb < rec_mem)); then
    pf_warn "memory: ${mem_gb} GB (recommended $rec_mem GB for $COUNT concurrent build(s))"
  else
    pf_ok "memory: ${mem_gb} GB"
  fi

  local dir free_kb free_gb rec_disk=$((REC_DISK_GB * COUNT)) seen=""
  for dir in "$BASE_DIR" "$CACHE_DIR"; do
    local at
    at=$(existing_ancestor "$(r "$dir")")
    local fs
    fs=$(df -P "$at" | awk 'NR == 2 { print $1 " " $6 }')
    [[ " $seen " == *" $fs "* ]] && continue
    seen="$seen $fs"
    free_kb=$(df -Pk "$at" | awk 'NR == 2 { print $4 }')
    free_gb=$((free_kb / 1048576))
    if ((free_gb < MIN_DISK_GB)); then
      pf_fail "free disk for $dir: ${free_gb} GB (a build needs at least $MIN_DISK_GB GB)"
    elif ((free_gb < rec_disk)); then
      pf_warn "free disk for $dir: ${free_gb} GB (recommended $rec_disk GB for $COUNT concurrent build(s))"
    else
      pf_ok "free disk for $dir: ${free_gb} GB"
    fi
  done

  if ((PF_FAILS > 0)); then
    say "  verdict: NOT READY ($PF_FAILS failure(s), $PF_WARNS warning(s))"
    return 1
  fi
  say "  verdict: READY ($PF_WARNS warning(s))"
}

# --- packages ---------------------------------------------------------------------------------------

dpkg_installed() {
  local args=()
  [[ $ROOT != / ]] && args=(--admindir "$(r /var/lib/dpkg)")
  # shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
  [[ $("$DPKG_QUERY" "${args[@]}" -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

os_codename() { os_release_value VERSION_CODENAME; }

hashicorp_repository() {
  local key
  key=$(mktemp "$WORK_TMP/hashicorp.XXXXXX")
  if ! "$CURL" -fsSL --max-time 10 -o "$key" "$HASHICORP_GPG_URL" 2>/dev/null; then
    return 1
  fi
  local codename
  codename=$(os_codename)
  [[ -n $codename ]] || return 1
  if ! $DRY_RUN; then
    mkdir -p "$(dirname "$(r "$HASHICORP_KEYRING")")"
    "$GPG" --batch --yes --dearmor -o "$(r "$HASHICORP_KEYRING")" "$key"
  fi
  changed "HashiCorp signing key $HASHICORP_KEYRING"
  printf 'deb [arch=amd64 signed-by=%s] https://apt.releases.hashicorp.com %s main\n' "$HASHICORP_KEYRING" "$codename" |
    put_file "$HASHICORP_LIST" 644 root root
}

install_packages() {
  section "packages"
  local missing=() p
  for p in "${PACKAGES[@]}"; do dpkg_installed "$p" || missing+=("$p"); done
  if ((${#missing[@]} == 0)); then
    unchanged "all ${#PACKAGES[@]} packages installed (${PACKAGES[*]})"
  else
    local packer_from=""
    if [[ " ${missing[*]} " == *" packer "* ]]; then
      case $PACKER_SOURCE in
        distro) packer_from="distribution package (--packer-source distro)" ;;
        hashicorp | auto)
          if hashicorp_repository; then
            packer_from="HashiCorp apt repository"
          elif [[ $PACKER_SOURCE == hashicorp ]]; then
            die "packages: $HASHICORP_GPG_URL is not reachable (use --packer-source distro, or allow access to apt.releases.hashicorp.com)"
          else
            packer_from="distribution package (apt.releases.hashicorp.com not reachable)"
          fi
          ;;
      esac
      say "  packer source: $packer_from"
    fi
    act "apt-get update" env DEBIAN_FRONTEND=noninteractive "$APT_GET" update -q ||
      die "packages: apt-get update failed (check /etc/apt/sources.list and the network)"
    act "apt-get install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q --no-install-recommends "${missing[@]}" ||
      die "packages: apt-get install ${missing[*]} failed (packer is not in every distribution release: try --packer-source hashicorp)"
  fi
  if $DRY_RUN && [[ " ${missing[*]} " == *" packer "* ]]; then
    say "  packer: (not installed yet)"
  else
    local pv
    pv=$("$PACKER" version 2>/dev/null | head -n1) || pv="not runnable"
    say "  packer: ${pv:-unknown}"
  fi
}

# --- nested virtualization -------------------------------------------------------------------------

enable_nested() {
  $ENABLE_NESTED || return 0
  section "nested virtualization"
  local module
  case $CPU_VENDOR in
    intel) module=kvm_intel ;;
    amd) module=kvm_amd ;;
    *) warn "--enable-nested: no vmx/svm CPU flag, nothing to enable"; return 0 ;;
  esac
  printf '# Installed by labforge runner-setup: nested virtualization for pre-warmed builds.\noptions %s nested=1\n' "$module" |
    put_file "$NESTED_CONF_PATH" 644 root root
  host_state_set nested_conf "$NESTED_CONF_PATH"
  if $LAST_CHANGED && ! $DRY_RUN; then
    if "$MODPROBE" -r "$module" 2>/dev/null && "$MODPROBE" "$module"; then
      say "  reloaded $module with nested=1"
    else
      warn "$module is in use (running VMs?): nested virtualization is enabled from the next reboot or module reload"
    fi
  fi
}

# --- KVM access -------------------------------------------------------------------------------------

install_kvm_rule() {
  section "kvm access"
  if group_exists kvm; then
    unchanged "group kvm"
  else
    local args
    mapfile -t args < <(prefix_args)
    act "create system group kvm" "$GROUPADD" "${args[@]}" --system kvm
    host_state_set kvm_group_created 1
  fi
  # Written after the packages: a package's own rules or triggers must not win the race.
  printf '# Installed by labforge runner-setup: members of the kvm group may use KVM.\nKERNEL=="kvm", GROUP="kvm", MODE="0660"\n' |
    put_file "$UDEV_RULE_PATH" 644 root root
  host_state_set udev_rule "$UDEV_RULE_PATH"
  local rule_changed=$LAST_CHANGED
  if [[ ! -e $KVM_DEVICE ]]; then
    if [[ -e $UDEV_CONTROL_PATH ]] && $rule_changed; then
      act "reload udev rules" "$UDEVADM" control --reload-rules
    fi
    say "  $KVM_DEVICE missing: the rule applies when the kvm module is loaded"
    return 0
  fi
  local kvm_gid perms_ok=false
  kvm_gid=$(gid_of kvm 2>/dev/null) || kvm_gid=""
  [[ $(stat -c '%a %g' "$KVM_DEVICE") == "660 $kvm_gid" ]] && perms_ok=true
  if $rule_changed || ! $perms_ok; then
    if [[ -e $UDEV_CONTROL_PATH ]]; then
      act "reload udev rules" "$UDEVADM" control --reload-rules
      act "udevadm trigger $KVM_DEVICE" "$UDEVADM" trigger --action=change --name-match="$KVM_DEVICE"
      act "udevadm settle" "$UDEVADM" settle --timeout=30
    else
      # No udevd (containers, some CI machines): apply what the rule says directly, and remember
      # the original owner and mode so that uninstall can put them back.
      if ! host_state_get kvm_device_original >/dev/null 2>&1; then
        host_state_set kvm_device_original "$(stat -c '%u:%g:%a' "$KVM_DEVICE")"
      fi
      act "chgrp kvm + chmod 0660 $KVM_DEVICE (udev is not running)" set_owner_mode "0:$kvm_gid" 660 "$KVM_DEVICE"
    fi
  else
    unchanged "$KVM_DEVICE is root:kvm 0660"
  fi
}

set_owner_mode() { chown "$1" "$3" && chmod "$2" "$3"; } # OWNER:GROUP MODE PATH

# verify_kvm_open USER: the user must be able to open the KVM device read-write.
verify_kvm_open() {
  local user=$1
  if [[ ! -e $KVM_DEVICE ]]; then
    warn "$KVM_DEVICE missing: cannot verify that $user can use KVM"
    return 0
  fi
  if $DRY_RUN && ! user_exists "$user"; then
    say "  would verify that $user can open $KVM_DEVICE"
    return 0
  fi
  # shellcheck disable=SC2016 # expanded by the inner shell
  if as_user "$user" sh -c 'exec 3<>"$1"' sh "$KVM_DEVICE" 2>/dev/null; then
    say "  ok: $user can open $KVM_DEVICE"
  else
    die "kvm access: $user cannot open $KVM_DEVICE read-write ($(stat -c '%A %U:%G' "$KVM_DEVICE")); Packer would silently fall back to software emulation. Check the kvm group and $UDEV_RULE_PATH"
  fi
}

# --- runner users and directories -----------------------------------------------------------------

ensure_user() { # USER HOME
  local user=$1 home=$2 args
  mapfile -t args < <(prefix_args)
  if user_exists "$user"; then
    unchanged "user $user"
  else
    act "create user $user (home $home)" "$USERADD" "${args[@]}" --system --user-group \
      --home-dir "$home" --no-create-home --shell /bin/bash --comment "labforge GitHub Actions runner" "$user"
    USER_CREATED=1
  fi
  if user_in_group "$user" kvm; then
    unchanged "$user in group kvm"
  else
    act "add $user to group kvm" "$USERMOD" "${args[@]}" --append --groups kvm "$user"
  fi
}

write_runner_env() { # NAME DIR CACHE USER
  local name=$1 dir=$2 cache=$3 user=$4
  ENV_CHANGED=false
  cat <<EOF | put_user_file "$dir/.env" 644 "$user"
LANG=C.UTF-8
PACKER_CACHE_DIR=$cache/packer
PACKER_PLUGIN_PATH=$cache/plugins
TMPDIR=$dir/tmp
LABFORGE_RUNNER_NAME=$name
LABFORGE_RUNNER_TMP=$dir/tmp
LABFORGE_MIN_FREE_GB=$MIN_FREE_GB
ACTIONS_RUNNER_HOOK_JOB_STARTED=$BASE_DIR/hooks/job-started.sh
ACTIONS_RUNNER_HOOK_JOB_COMPLETED=$BASE_DIR/hooks/job-completed.sh
EOF
  $LAST_CHANGED && ENV_CHANGED=true
  printf '%s\n' "$RUNNER_PATH_VALUE" | put_user_file "$dir/.path" 644 "$user"
  $LAST_CHANGED && ENV_CHANGED=true
  # The hooks only empty a directory that carries this marker.
  : | put_user_file "$dir/tmp/.labforge-runner-tmp" 644 "$user"
}

install_hooks() {
  section "job hooks"
  ensure_dir "$BASE_DIR" 755 root root
  ensure_dir "$BASE_DIR/hooks" 755 root root
  local hook
  for hook in job-started.sh job-completed.sh runner-cleanup.sh; do
    put_file "$BASE_DIR/hooks/$hook" 755 root root <"$SCRIPT_DIR/hooks/$hook"
  done
  if [[ -n $GITHUB_PAT_FILE ]]; then
    ensure_dir "$BASE_DIR/bin" 755 root root
    put_file "$BASE_DIR/bin/labforge-reregister" 755 root root <"$SCRIPT_DIR/reregister.sh"
    ensure_dir "$STATE_DIR" 755 root root
    tr -d ' \t\r\n' <"$GITHUB_PAT_FILE" | put_file "$STATE_DIR/github-pat" 600 root root
  fi
}

# --- runner package ---------------------------------------------------------------------------------

RUNNER_PACKAGE=""

# Download (once) and verify the runner tarball; sets RUNNER_PACKAGE.
fetch_runner_package() {
  [[ -n $RUNNER_PACKAGE ]] && return 0
  if [[ -n $RUNNER_TARBALL ]]; then
    RUNNER_PACKAGE=$RUNNER_TARBALL # verified during input validation
    return 0
  fi
  local file=actions-runner-linux-x64-$RUNNER_VERSION.tar.gz
  local cached
  cached=$(r "$CACHE_DIR/downloads/$file")
  if [[ -f $cached && $(sha256sum "$cached" | cut -d' ' -f1) == "$RUNNER_SHA256" ]]; then
    unchanged "runner package $CACHE_DIR/downloads/$file (SHA-256 verified)"
    record_created file "$CACHE_DIR/downloads/$file"
    RUNNER_PACKAGE=$cached
    return 0
  fi
  local url=https://github.com/actions/runner/releases/download/v$RUNNER_VERSION/$file
  if $DRY_RUN; then
    changed "download $url and verify SHA-256 $RUNNER_SHA256"
    RUNNER_PACKAGE=$cached
    return 0
  fi
  local tmp
  tmp=$(mktemp "$WORK_TMP/runner.XXXXXX")
  say "  downloading $url"
  "$CURL" -fsSL --retry 3 -o "$tmp" "$url" || die "runner: download of $url failed"
  local actual
  actual=$(sha256sum "$tmp" | cut -d' ' -f1)
  [[ $actual == "$RUNNER_SHA256" ]] ||
    die "runner: SHA-256 mismatch for $url: expected $RUNNER_SHA256, got $actual (refusing to install it)"
  ensure_dir "$CACHE_DIR" 755 root root
  ensure_dir "$CACHE_DIR/downloads" 755 root root
  mv -fT "$tmp" "$cached"
  record_created file "$CACHE_DIR/downloads/$file"
  changed "runner package $CACHE_DIR/downloads/$file (SHA-256 verified)"
  RUNNER_PACKAGE=$cached
}

# The runner package installed in a runner directory ("VERSION SHA256"), recorded in the runner's
# root-owned manifest; RUNNER_PACKAGE_RECORD carries it to the manifest this run writes.
RUNNER_PACKAGE_RECORD=""

# install_runner_package DIR USER MANIFEST: unpack the verified package into DIR as USER (a link a
# job planted there reaches only what USER may write), then run the package's
# bin/installdependencies.sh as root from a root-only copy taken from the verified tarball, never
# from the runner directory (USER could have changed it).
install_runner_package() {
  local dir=$1 user=$2 manifest=$3 recorded="" legacy
  RUNNER_PACKAGE_RECORD=""
  [[ -f $(r "$manifest") ]] && recorded=$(manifest_get "$(r "$manifest")" runner_package 2>/dev/null || true)
  # Earlier versions kept this record in the runner directory; read it only as a plain file.
  legacy=$(r "$dir/.labforge-runner-package")
  if [[ -z $recorded && -f $legacy && ! -L $legacy ]]; then
    recorded=$(head -c 200 "$legacy" | head -n1)
    [[ $recorded =~ ^[0-9.]+\ [0-9a-f]{64}$ ]] || recorded="unknown (recorded by an earlier version)"
  fi
  if [[ -n $recorded ]]; then
    RUNNER_PACKAGE_RECORD=$recorded
    unchanged "runner package ${recorded%% *} in $dir (the runner updates itself)"
    return 0
  fi
  fetch_runner_package
  act "unpack runner $RUNNER_VERSION into $dir (as $user)" \
    unpack_as_user "$user" "$RUNNER_PACKAGE" "$(r "$dir")" || die "runner: unpacking into $dir as $user failed"
  RUNNER_PACKAGE_RECORD="$RUNNER_VERSION $RUNNER_SHA256"
  if $DRY_RUN || tar -tzf "$RUNNER_PACKAGE" | grep -Eq '^(\./)?bin/installdependencies\.sh$'; then
    act "install the runner's own dependencies (bin/installdependencies.sh, from the verified package)" \
      run_package_dependencies "$RUNNER_PACKAGE" || die "runner: bin/installdependencies.sh failed"
  fi
}

unpack_as_user() { # USER TARBALL DIR
  as_user "$1" tar --no-overwrite-dir --no-same-owner -xzf - -C "$3" <"$2"
}

run_package_dependencies() { # TARBALL
  local stage
  stage=$(mktemp -d "$WORK_TMP/runner-deps.XXXXXX")
  tar --no-same-owner -xzf "$1" -C "$stage" --wildcards --no-anchored 'bin/installdependencies.sh'
  # shellcheck disable=SC2016 # expanded by the inner shell
  sh -c 'cd "$1" && ./bin/installdependencies.sh' sh "$stage"
}

# in_dir_as_user USER DIR COMMAND...: run COMMAND as USER in DIR (the user changes directory, not root).
in_dir_as_user() {
  local user=$1 dir=$2
  shift 2
  # shellcheck disable=SC2016 # expanded by the inner shell
  as_user "$user" sh -c 'cd "$1" || exit 1; shift; exec "$@"' labforge-in-dir "$dir" "$@"
}

register_runner() { # NAME DIR USER
  local name=$1 dir=$2 user=$3
  if [[ -f $(r "$dir/.runner") ]]; then
    unchanged "runner $name registered ($dir/.runner)"
    return 0
  fi
  local args=(--unattended --url "$URL" --name "$name" --labels "$(runner_labels)" --work _work --replace)
  [[ -n $RUNNER_GROUP ]] && args+=(--runnergroup "$RUNNER_GROUP")
  $EPHEMERAL && args+=(--ephemeral)
  changed "register runner $name: config.sh ${args[*]} (token passed in the environment)"
  $DRY_RUN && return 0
  # config.sh reads ACTIONS_RUNNER_INPUT_TOKEN from its environment (and removes it from there),
  # so the token never appears in any argv; /proc/PID/environ is readable only by its owner and root.
  ACTIONS_RUNNER_INPUT_TOKEN=$TOKEN in_dir_as_user "$user" "$(r "$dir")" ./config.sh "${args[@]}" ||
    die "runner $name: registration failed (config.sh exit status $?); an expired token (they last one hour) is the usual cause"
}

write_unit() { # NAME DIR USER UNIT
  local name=$1 dir=$2 user=$3 unit=$4 pre=""
  if $EPHEMERAL && [[ -n $GITHUB_PAT_FILE ]]; then
    pre="# An ephemeral runner deregisters after its job: register it again (as root: reads the token).
ExecStartPre=+$BASE_DIR/bin/labforge-reregister $STATE_DIR/runners/$name.conf
"
  fi
  cat <<EOF | put_file "/etc/systemd/system/$unit" 644 root root
# Installed by labforge runner-setup.
[Unit]
Description=GitHub Actions runner $name (labforge)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=$user
Group=$user
# Belt and braces: KVM access even before a fresh login picks up the group membership.
SupplementaryGroups=kvm
WorkingDirectory=$dir
${pre}ExecStart=$dir/bin/runsvc.sh
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec=5min
Restart=always
RestartSec=5s
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
EOF
}

start_service() { # UNIT RESTART_NEEDED
  local unit=$1 restart=$2
  if [[ $("$SYSTEMCTL" is-enabled "$unit" 2>/dev/null) == enabled ]]; then
    unchanged "$unit enabled"
  else
    act "enable $unit" "$SYSTEMCTL" enable "$unit"
  fi
  if [[ $("$SYSTEMCTL" is-active "$unit" 2>/dev/null) == active ]]; then
    if $restart; then
      act "restart $unit (configuration changed)" "$SYSTEMCTL" restart "$unit"
    else
      unchanged "$unit active"
    fi
  else
    act "start $unit" "$SYSTEMCTL" start "$unit"
  fi
}

# --- commands -----------------------------------------------------------------------------------------

cmd_preflight() {
  validate_common
  preflight || exit 1
}

cmd_install() {
  validate_common
  validate_install
  $DRY_RUN && say "dry run: nothing will be changed"
  host_state_load
  preflight || die "preflight failed: fix the [FAIL] items above (or --allow-no-kvm where KVM is not needed)"
  install_packages
  enable_nested
  install_kvm_rule
  install_hooks

  local i units_changed=false
  local restart_flags=()
  for ((i = 1; i <= COUNT; i++)); do
    local name user dir cache unit manifest
    name=$(runner_name "$i")
    user=$(runner_user "$i")
    dir=$(runner_dir "$name")
    cache=$(runner_cache "$name")
    unit=$(runner_unit "$name")
    manifest=$STATE_DIR/runners/$name.conf
    section "runner $name (user $user, $dir)"
    USER_CREATED=0
    KNOWN_RUNNER=""
    if [[ -f $(r "$manifest") ]]; then
      KNOWN_RUNNER=1
      USER_CREATED=$(manifest_get "$(r "$manifest")" user_created || echo 0)
      local registered_url
      registered_url=$(manifest_get "$(r "$manifest")" url || true)
      if ! $SKIP_REGISTER && [[ -n $registered_url && $registered_url != "$URL" ]]; then
        die "runner $name is registered to $registered_url, not $URL (uninstall it first)"
      fi
    fi
    ensure_user "$user" "$dir"
    verify_kvm_open "$user"
    ensure_user_tree "$dir" 750 "$user"
    ensure_user_dir "$dir/tmp" 700 "$user"
    ensure_dir "$CACHE_DIR" 755 root root
    ensure_user_tree "$cache" 750 "$user"
    ensure_user_dir "$cache/packer" 750 "$user"
    ensure_user_dir "$cache/plugins" 750 "$user"
    local restart=false
    RUNNER_PACKAGE_RECORD=""
    [[ -f $(r "$manifest") ]] && RUNNER_PACKAGE_RECORD=$(manifest_get "$(r "$manifest")" runner_package 2>/dev/null || true)
    if ! $SKIP_REGISTER; then
      install_runner_package "$dir" "$user" "$manifest"
      register_runner "$name" "$dir" "$user"
    fi
    write_runner_env "$name" "$dir" "$cache" "$user"
    $ENV_CHANGED && restart=true
    local url_line=""
    $SKIP_REGISTER || url_line=$URL
    {
      echo "name=$name"
      echo "user=$user"
      echo "user_created=$USER_CREATED"
      echo "dir=$dir"
      echo "cache=$cache"
      echo "unit=$unit"
      echo "url=$url_line"
      echo "labels=$(runner_labels)"
      echo "ephemeral=$EPHEMERAL"
      echo "runner_group=$RUNNER_GROUP"
      [[ -n $RUNNER_PACKAGE_RECORD ]] && echo "runner_package=$RUNNER_PACKAGE_RECORD"
      if [[ -n $GITHUB_PAT_FILE ]]; then
        echo "registration_api=$(registration_api)"
        echo "pat_file=$STATE_DIR/github-pat"
      fi
    } | put_file "$manifest" 644 root root
    if ! $SKIP_REGISTER; then
      write_unit "$name" "$dir" "$user" "$unit"
      if $LAST_CHANGED; then units_changed=true; restart=true; fi
    fi
    restart_flags+=("$unit:$restart")
  done

  local other
  while IFS= read -r other; do
    local other_name
    other_name=$(manifest_get "$other" name || true)
    local known=false
    for ((i = 1; i <= COUNT; i++)); do [[ $(runner_name "$i") == "$other_name" ]] && known=true; done
    $known || warn "runner $other_name is installed but not part of this configuration (remove it with uninstall)"
  done < <(installed_manifests)

  section "host state"
  local line
  {
    for line in "${HOST_STATE_LINES[@]}"; do echo "$line"; done
    echo "base_dir=$BASE_DIR"
    echo "cache_dir=$CACHE_DIR"
  } | sort -u | put_file "$STATE_DIR/host.conf" 644 root root

  if ! $SKIP_REGISTER; then
    section "services"
    if $units_changed; then act "systemctl daemon-reload" "$SYSTEMCTL" daemon-reload; fi
    local entry
    for entry in "${restart_flags[@]}"; do start_service "${entry%%:*}" "${entry##*:}"; done
  fi

  section "summary"
  if $DRY_RUN; then
    say "  dry run: $CHANGES change(s) would be made; nothing was changed"
  elif ((CHANGES == 0)); then
    say "  nothing changed: the host is already set up ($COUNT runner(s))"
  else
    say "  $CHANGES change(s) made ($COUNT runner(s))"
  fi
}

cmd_status() {
  validate_common
  local manifests=() m
  mapfile -t manifests < <(installed_manifests)
  if ((${#manifests[@]} == 0)); then
    say "no labforge runners installed under $(r "$STATE_DIR")"
    exit 1
  fi
  local bad=0
  printf '%-24s %-22s %-10s %-9s %-10s %s\n' RUNNER USER SERVICE ENABLED REGISTERED DIRECTORY
  for m in "${manifests[@]}"; do
    local name user dir unit active enabled registered
    name=$(manifest_get "$m" name)
    user=$(manifest_get "$m" user)
    dir=$(manifest_get "$m" dir)
    unit=$(manifest_get "$m" unit)
    active=$("$SYSTEMCTL" is-active "$unit" 2>/dev/null) || true
    enabled=$("$SYSTEMCTL" is-enabled "$unit" 2>/dev/null) || true
    registered=no
    [[ -f $(r "$dir/.runner") ]] && registered=yes
    [[ $active == active ]] || bad=1
    printf '%-24s %-22s %-10s %-9s %-10s %s\n' "$name" "$user" "${active:-unknown}" "${enabled:-unknown}" "$registered" "$dir"
  done
  exit "$bad"
}

# install_manifest_entries TOP: the "TYPE PATH" lines of TOP's install manifest, oldest first. An
# installation by an earlier version (no manifest, but a host record) gets the list that version
# would have written: its own files and directories by name, and the runner trees it recorded.
install_manifest_entries() {
  local top=$1 file m
  file=$(r "$top/$INSTALL_MANIFEST")
  if [[ -L $file ]]; then
    warn "$top/$INSTALL_MANIFEST is a symbolic link; ignored (nothing under $top is removed)"
    return 0
  fi
  if [[ -f $file ]]; then
    [[ $(stat -c '%u' "$file") == 0 ]] || { warn "$top/$INSTALL_MANIFEST is not owned by root; ignored"; return 0; }
    grep -E '^(file|dir|tree) /' "$file" || true
    return 0
  fi
  [[ -f $(r "$STATE_DIR/host.conf") ]] || return 0
  echo "dir $top"
  if [[ $top == "$BASE_DIR" ]]; then
    printf 'dir %s\n' "$top/hooks" "$top/bin"
    printf 'file %s\n' "$top"/hooks/{job-started.sh,job-completed.sh,runner-cleanup.sh} "$top/bin/labforge-reregister"
    while IFS= read -r m; do echo "tree $(manifest_get "$m" dir)"; done < <(installed_manifests)
  else
    echo "dir $top/downloads"
    find "$(r "$top/downloads")" -maxdepth 1 -type f -name 'actions-runner-linux-x64-*.tar.gz' -printf "file $top/downloads/%f\n" 2>/dev/null || true
    while IFS= read -r m; do echo "tree $(manifest_get "$m" cache)"; done < <(installed_manifests)
  fi
}

declare -A REMOVED=()

# remove_recorded TYPE PATH TOP: remove what install recorded, only while it is still of the recorded
# type and no link stands in the way (between TOP and PATH, or PATH itself); a directory only when
# nothing but what was removed was in it.
remove_recorded() {
  local type=$1 path=$2 top=$3 dest p
  dest=$(r "$path")
  [[ -e $dest || -L $dest ]] || return 0
  p=$path
  while [[ $p != "$top" && $p == "$top"/* ]]; do
    if [[ -L $(r "$p") ]]; then
      warn "kept $path: $p is a symbolic link (not following it)"
      return 0
    fi
    p=$(dirname "$p")
  done
  case $type in
    file)
      [[ -f $dest ]] || { warn "kept $path: no longer a file"; return 0; }
      act "remove $path" rm -f -- "$dest"
      ;;
    tree)
      [[ -d $dest ]] || { warn "kept $path: no longer a directory"; return 0; }
      act "remove $path" rm -rf --one-file-system -- "$dest"
      ;;
    dir)
      [[ -d $dest ]] || { warn "kept $path: no longer a directory"; return 0; }
      local child others=()
      while IFS= read -r child; do
        [[ -n ${REMOVED[${child#"${ROOT%/}"}]:-} ]] || others+=("${child##*/}")
      done < <(find "$dest" -mindepth 1 -maxdepth 1)
      if ((${#others[@]} > 0)); then
        say "  kept $path: it holds what install did not create (${others[*]:0:3}$( ((${#others[@]} > 3)) && echo ' ...'))"
        return 0
      fi
      act "remove $path" rmdir -- "$dest"
      ;;
  esac
  REMOVED[$path]=1
}

# remove_install_manifest TOP ENTRY...: remove the recorded entries newest first, then the manifest,
# then TOP itself if install created it and it is empty.
remove_install_manifest() {
  local top=$1 i type path top_recorded=false
  shift
  local entries=("$@")
  for ((i = ${#entries[@]} - 1; i >= 0; i--)); do
    type=${entries[i]%% *}
    path=${entries[i]#* }
    if [[ $path == "$top" ]]; then top_recorded=true; continue; fi
    if [[ $path != "$top"/?* || $path == *..* ]]; then
      warn "$top/$INSTALL_MANIFEST: ignoring $path (not under $top)"
      continue
    fi
    remove_recorded "$type" "$path" "$top"
  done
  local manifest=$top/$INSTALL_MANIFEST
  if [[ -f $(r "$manifest") && ! -L $(r "$manifest") ]]; then
    act "remove $manifest" rm -f -- "$(r "$manifest")"
    REMOVED[$manifest]=1
  fi
  if $top_recorded; then remove_recorded dir "$top" "$top"; fi
  return 0
}

cmd_uninstall() {
  validate_common
  local recorded
  if recorded=$(host_state_get base_dir 2>/dev/null); then BASE_DIR=$recorded; fi
  if recorded=$(host_state_get cache_dir 2>/dev/null); then CACHE_DIR=$recorded; fi
  system_directory "$BASE_DIR" && die "$STATE_DIR/host.conf: base_dir $BASE_DIR is a system directory; not removing anything from it"
  system_directory "$CACHE_DIR" && die "$STATE_DIR/host.conf: cache_dir $CACHE_DIR is a system directory; not removing anything from it"
  local manifests=() m base_entries=() cache_entries=()
  mapfile -t manifests < <(installed_manifests)
  mapfile -t base_entries < <(install_manifest_entries "$BASE_DIR")
  mapfile -t cache_entries < <(install_manifest_entries "$CACHE_DIR")
  local needs_token=false
  for m in "${manifests[@]}"; do
    [[ -f $(r "$(manifest_get "$m" dir)/.runner") ]] && needs_token=true
  done
  if $needs_token && ! $SKIP_REGISTER; then read_token; fi
  $DRY_RUN && say "dry run: nothing will be changed"

  local units_removed=false
  for m in "${manifests[@]}"; do
    local name user dir cache unit created
    name=$(manifest_get "$m" name)
    user=$(manifest_get "$m" user)
    dir=$(manifest_get "$m" dir)
    cache=$(manifest_get "$m" cache)
    unit=$(manifest_get "$m" unit)
    created=$(manifest_get "$m" user_created || echo 0)
    section "remove runner $name"
    [[ $dir == "$BASE_DIR"/?* && $dir != *..* ]] || die "manifest $m: directory '$dir' is not under $BASE_DIR; not removing it"
    if [[ -f $(r "/etc/systemd/system/$unit") ]]; then
      act "stop and disable $unit" "$SYSTEMCTL" disable --now "$unit"
      remove_path "/etc/systemd/system/$unit"
      units_removed=true
    fi
    if [[ -f $(r "$dir/.runner") ]]; then
      if $SKIP_REGISTER; then
        warn "runner $name stays listed (offline) on GitHub until removed there (--skip-register)"
      else
        changed "deregister runner $name: config.sh remove --unattended (token passed in the environment)"
        if ! $DRY_RUN; then
          ACTIONS_RUNNER_INPUT_TOKEN=$TOKEN in_dir_as_user "$user" "$(r "$dir")" ./config.sh remove --unattended ||
            die "runner $name: deregistration failed; nothing removed (get a fresh removal token, or --skip-register to remove it locally only)"
        fi
      fi
    fi
    if printf '%s\n' "${base_entries[@]}" | grep -qxF "tree $dir"; then
      remove_recorded tree "$dir" "$BASE_DIR"
    elif [[ -e $(r "$dir") ]]; then
      say "  kept $dir: install did not create it (not in $BASE_DIR/$INSTALL_MANIFEST)"
    fi
    if [[ $created == 1 ]] && user_exists "$user"; then
      local args
      mapfile -t args < <(prefix_args)
      act "delete user $user" "$USERDEL" "${args[@]}" "$user"
    fi
    if ! $PURGE && [[ -e $(r "$cache") ]]; then
      say "  kept cache $cache (--purge removes it)"
    fi
    remove_path "${m#"${ROOT%/}"}"
  done

  section "host"
  if $units_removed; then act "systemctl daemon-reload" "$SYSTEMCTL" daemon-reload; fi
  remove_install_manifest "$BASE_DIR" "${base_entries[@]}"
  local rule nested
  rule=$(host_state_get udev_rule 2>/dev/null) || rule=""
  if [[ -n $rule && -f $(r "$rule") ]]; then
    remove_path "$rule"
    if [[ -e $UDEV_CONTROL_PATH ]]; then
      act "reload udev rules" "$UDEVADM" control --reload-rules
      if [[ -e $KVM_DEVICE ]]; then
        act "udevadm trigger $KVM_DEVICE" "$UDEVADM" trigger --action=change --name-match="$KVM_DEVICE"
      fi
    fi
  fi
  nested=$(host_state_get nested_conf 2>/dev/null) || nested=""
  local original
  if original=$(host_state_get kvm_device_original 2>/dev/null) && [[ -e $KVM_DEVICE ]]; then
    local o_uid o_gid o_mode
    IFS=: read -r o_uid o_gid o_mode <<<"$original"
    act "restore $KVM_DEVICE to $o_uid:$o_gid $o_mode" set_owner_mode "$o_uid:$o_gid" "$o_mode" "$KVM_DEVICE"
  fi
  [[ -n $nested ]] && remove_path "$nested"
  if [[ $(host_state_get kvm_group_created 2>/dev/null) == 1 ]] && group_exists kvm; then
    if [[ -z $(group_field kvm 4) ]] || $DRY_RUN; then
      local args
      mapfile -t args < <(prefix_args)
      act "delete group kvm (created by install)" "$GROUPDEL" "${args[@]}" kvm
    else
      warn "group kvm has other members ($(group_field kvm 4)); kept"
    fi
  fi
  if $PURGE; then
    remove_install_manifest "$CACHE_DIR" "${cache_entries[@]}"
  fi
  remove_path "$STATE_DIR"
  say "  packages stay installed (qemu, packer, ...): remove them with apt-get if nothing else needs them"

  section "summary"
  if $DRY_RUN; then
    say "  dry run: $CHANGES change(s) would be made; nothing was changed"
  elif ((CHANGES == 0)); then
    say "  nothing to remove"
  else
    say "  $CHANGES change(s) made"
  fi
}

main() {
  parse_args "$@"
  if [[ $COMMAND == install || $COMMAND == uninstall ]] && ! $DRY_RUN && [[ $(id -u) != 0 ]]; then
    die "$COMMAND must run as root (sudo $SCRIPT_NAME ...); --dry-run and preflight do not"
  fi
  WORK_TMP=$(mktemp -d)
  trap 'rm -rf -- "$WORK_TMP"' EXIT
  case $COMMAND in
    install) cmd_install ;;
    preflight) cmd_preflight ;;
    status) cmd_status ;;
    uninstall) cmd_uninstall ;;
  esac
}

main "$@"
