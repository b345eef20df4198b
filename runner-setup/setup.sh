#!/usr/bin/env bash
# labforge runner-setup: turn a bare KVM host into one or many GitHub Actions runners that can
# build labforge appliances (Packer + QEMU/KVM).
#
# Every file it writes goes under --root (default /), and every system command it runs can be
# replaced through an environment variable (SYSTEMCTL, UDEVADM, APT_GET, ...), so that the tests
# run this very script end to end against a temporary root. See --help and docs/RUNNER_SETUP.md.
#
# This file only checks and sources its parts in lib/ (one concern each: common, options, files,
# preflight, packages, kvm, hooks, package, runner, install, uninstall) and dispatches the command.
set -euo pipefail
# put_file reads its content from a pipe and must update this shell's change counters.
shopt -s lastpipe


readonly SCRIPT_NAME=setup.sh
# The real location of this script (it may be started through a symbolic link): its lib/ is there.
SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
readonly SCRIPT_PATH SCRIPT_DIR=${SCRIPT_PATH%/*}

# The parts, one concern each, in the order they are sourced.
readonly LIB_FILES=(common options files preflight packages kvm hooks package runner install uninstall)

# check_own_code PATH...: this is root-run code: refuse a part that is missing, not a regular file,
# writable by group or others, or (when run as root) not owned by root; someone who can change it
# could run anything as root. The same holds for the directories they are in.
check_own_code() {
  local path mode owner
  for path in "$@"; do
    if [[ ! -e $path ]]; then
      printf '%s: error: %s is missing (runner-setup is incomplete: copy the whole runner-setup directory)\n' "$SCRIPT_NAME" "$path" >&2
      exit 1
    fi
    if [[ -L $path ]] || ! [[ -f $path || -d $path ]]; then
      printf '%s: error: %s is not a regular file or directory; refusing to run it as part of runner-setup\n' "$SCRIPT_NAME" "$path" >&2
      exit 1
    fi
  done
  # One stat for all (this runs before every command, bad input included: keep it quick).
  while read -r mode owner path; do
    if [[ $mode == ?????w???? || $mode == ????????w? ]]; then
      printf '%s: error: %s is writable by group or others (%s); runner-setup runs as root: chmod go-w it\n' "$SCRIPT_NAME" "$path" "$mode" >&2
      exit 1
    fi
    if [[ $EUID == 0 && $owner != 0 ]]; then
      printf '%s: error: %s is owned by uid %s, not root; runner-setup runs as root, so its files must be root'"'"'s: chown -R root:root the runner-setup directory (or copy it as root)\n' "$SCRIPT_NAME" "$path" "$owner" >&2
      exit 1
    fi
  done < <(stat -c '%A %u %n' -- "$@")
}

# Also the script itself, and what install copies to be run later (the hooks run in every job,
# labforge-reregister as root).
lib_paths=("$SCRIPT_DIR" "$SCRIPT_PATH" "$SCRIPT_DIR/reregister.sh" "$SCRIPT_DIR/hooks"
  "$SCRIPT_DIR/hooks/job-started.sh" "$SCRIPT_DIR/hooks/job-completed.sh" "$SCRIPT_DIR/hooks/runner-cleanup.sh" "$SCRIPT_DIR/lib")
for lib in "${LIB_FILES[@]}"; do lib_paths+=("$SCRIPT_DIR/lib/$lib.sh"); done
check_own_code "${lib_paths[@]}"
unset lib lib_paths
# shellcheck source=runner-setup/lib/common.sh
. "$SCRIPT_DIR/lib/common.sh"
# shellcheck source=runner-setup/lib/options.sh
. "$SCRIPT_DIR/lib/options.sh"
# shellcheck source=runner-setup/lib/files.sh
. "$SCRIPT_DIR/lib/files.sh"
# shellcheck source=runner-setup/lib/preflight.sh
. "$SCRIPT_DIR/lib/preflight.sh"
# shellcheck source=runner-setup/lib/packages.sh
. "$SCRIPT_DIR/lib/packages.sh"
# shellcheck source=runner-setup/lib/kvm.sh
. "$SCRIPT_DIR/lib/kvm.sh"
# shellcheck source=runner-setup/lib/hooks.sh
. "$SCRIPT_DIR/lib/hooks.sh"
# shellcheck source=runner-setup/lib/package.sh
. "$SCRIPT_DIR/lib/package.sh"
# shellcheck source=runner-setup/lib/runner.sh
. "$SCRIPT_DIR/lib/runner.sh"
# shellcheck source=runner-setup/lib/install.sh
. "$SCRIPT_DIR/lib/install.sh"
# shellcheck source=runner-setup/lib/uninstall.sh
. "$SCRIPT_DIR/lib/uninstall.sh"

main() {
  parse_args "$@"
  if [[ $COMMAND == install || $COMMAND == uninstall ]] && ! $DRY_RUN && [[ $(id -u) != 0 ]]; then
    die "$COMMAND must run as root (sudo $SCRIPT_NAME ...); --dry-run and preflight do not"
  fi
  WORK_TMP=$(mktemp -d)
  STAGE_DIR="" # a package being unpacked (package.sh): removed if this run ends half way
  trap 'rm -rf -- "$WORK_TMP" ${STAGE_DIR:+"$STAGE_DIR"}' EXIT
  case $COMMAND in
    install) cmd_install ;;
    preflight) cmd_preflight ;;
    status) cmd_status ;;
    uninstall) cmd_uninstall ;;
  esac
}

main "$@"
