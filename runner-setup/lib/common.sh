# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/common.sh: defaults, injectable commands, option variables, output, paths and the user database.
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

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

# --- output -----------------------------------------------------------------------------------------

CHANGES=0
LAST_CHANGED=false

say() { printf '%s\n' "$*"; }
section() { printf '\n==> %s\n' "$*"; }
# one_line TEXT: TEXT with every control character (newline, escape, ...) shown as '?', so that
# a value echoed from input or a file stays on its line and cannot drive the terminal.
one_line() {
  local text=$*
  if [[ $text == *[[:cntrl:]]* ]]; then text=$(printf '%s' "$text" | LC_ALL=C tr '\000-\037\177' '?'); fi
  printf '%s' "$text"
}
warn() { printf '  warning: %s\n' "$(one_line "$*")" >&2; }
die() { printf '%s: error: %s\n' "$SCRIPT_NAME" "$(one_line "$*")" >&2; exit 1; }
# die_input MESSAGE: bad input: one line naming the option, exit 2.
die_input() {
  printf '%s: %s (see %s --help)\n' "$SCRIPT_NAME" "$(one_line "$*")" "$SCRIPT_NAME" >&2
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
