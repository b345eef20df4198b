#!/usr/bin/env bats
# runner-setup/setup.sh for real on the CI machine (a throwaway root machine): the package and
# KVM-group steps with --skip-register, then a second run that changes nothing, then uninstall.
# Runs only with LABFORGE_REAL_RUNNER_SETUP=1 (set by .ci/run); it changes the real system
# (a user, the kvm group, a udev rule, /dev/kvm's group and mode) and puts everything back.
#
# --allow-no-kvm: CI machines may lack vmx/svm or /dev/kvm; the preflight then warns instead of failing.
# --packer-source distro: HashiCorp's repository is not reachable from CI; the distribution's packer is used.

SETUP=$(cd "$(dirname "$BATS_TEST_FILENAME")/../.." && pwd)/runner-setup/setup.sh
CI_USER=labforge-ci-runner
CI_NAME=labforge-ci
CI_BASE=/opt/labforge-ci-runner
CI_CACHE=/var/cache/labforge-ci-runner
ARGS=(--skip-register --allow-no-kvm --packer-source distro --name "$CI_NAME" --user "$CI_USER"
  --base-dir "$CI_BASE" --cache-dir "$CI_CACHE")
PRE=${BATS_FILE_TMPDIR:-/tmp}/labforge-real-pre

enabled() { [[ ${LABFORGE_REAL_RUNNER_SETUP:-} == 1 ]]; }

setup_file() {
  enabled || return 0
  [[ $(id -u) == 0 ]] || { echo "runner-setup-real needs root" >&2; return 1; }
  if [[ -e /etc/labforge-runner ]] || getent passwd "$CI_USER" >/dev/null; then
    echo "runner-setup-real: /etc/labforge-runner or user $CI_USER already exists; not touching this host" >&2
    return 1
  fi
  mkdir -p "$PRE"
  getent group kvm >/dev/null && touch "$PRE/kvm-group-existed"
  [[ -e /dev/kvm ]] && stat -c '%u:%g:%a' /dev/kvm >"$PRE/dev-kvm"
  return 0
}

teardown_file() {
  enabled || return 0
  # Normally uninstall (last test) has done all of this; this only repairs after a failure.
  if [[ -e /etc/labforge-runner ]]; then
    env -u SYSTEMCTL -u UDEVADM "$SETUP" uninstall "${ARGS[@]}" --purge >/dev/null 2>&1 || true
  fi
  getent passwd "$CI_USER" >/dev/null && userdel "$CI_USER"
  rm -rf -- "$CI_BASE" "$CI_CACHE" /etc/labforge-runner /etc/udev/rules.d/99-labforge-kvm.rules
  if [[ -f $PRE/dev-kvm ]]; then
    IFS=: read -r u g m <"$PRE/dev-kvm"
    chown "$u:$g" /dev/kvm && chmod "$m" /dev/kvm
  fi
  if [[ ! -e $PRE/kvm-group-existed ]] && getent group kvm >/dev/null; then groupdel kvm; fi
  rm -rf -- "$PRE"
  return 0
}

setup() {
  enabled || skip "set LABFORGE_REAL_RUNNER_SETUP=1 to change this machine for real (CI only)"
}

@test "real: packages and KVM access on this machine with --skip-register" {
  start=$(date +%s)
  run "$SETUP" install "${ARGS[@]}"
  echo "$output"
  echo "# install took $(($(date +%s) - start)) s" >&3
  [ "$status" -eq 0 ]
  [[ $output == *"verdict: READY"* ]]
  [[ $output == *"packer: Packer v"* ]]
  getent passwd "$CI_USER"
  id -nG "$CI_USER" | tr ' ' '\n' | grep -qx kvm
  [ "$(grep -v '^#' /etc/udev/rules.d/99-labforge-kvm.rules)" == 'KERNEL=="kvm", GROUP="kvm", MODE="0660"' ]
  grep -qx "LABFORGE_RUNNER_NAME=$CI_NAME" "$CI_BASE/$CI_NAME/.env"
  # the runner's directory and .env are root's (runner-setup-isolation.bats has the full checks)
  [ "$(stat -c '%U %G %a' "$CI_BASE/$CI_NAME")" == "root $CI_USER 1770" ]
  [ "$(stat -c '%U %a' "$CI_BASE/$CI_NAME/.env")" == "root 644" ]
  [ -x "$CI_BASE/hooks/job-started.sh" ]
  if [[ -e /dev/kvm ]]; then
    [ "$(stat -c '%a %G' /dev/kvm)" == "660 kvm" ]
    # checked with the system's own runuser, independent of the script's setpriv
    runuser -u "$CI_USER" -- sh -c 'exec 3<>/dev/kvm'
  fi
  for p in qemu-system-x86 qemu-utils packer genisoimage openssh-client zstd jq git curl; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p")" == installed ]
  done
}

@test "real: a second run changes nothing" {
  [ -e /etc/labforge-runner ] || skip "install did not run"
  start=$(date +%s)
  run "$SETUP" install "${ARGS[@]}"
  echo "$output"
  echo "# second run took $(($(date +%s) - start)) s" >&3
  [ "$status" -eq 0 ]
  [[ $output == *"nothing changed: the host is already set up (1 runner(s))"* ]]
}

@test "real: a re-run does not follow the links a job of the runner user planted" {
  [ -e /etc/labforge-runner ] || skip "install did not run"
  dir=$CI_BASE/$CI_NAME cache=$CI_CACHE/$CI_NAME
  mkdir -p "$PRE/target-dir"
  chmod 755 "$PRE/target-dir"
  printf 'root only\n' >"$PRE/target-file"
  chmod 600 "$PRE/target-file"
  before=$(stat -c '%n %u:%g %a' "$PRE/target-dir" "$PRE/target-file")
  # the job, as the runner user (the system's own runuser)
  runuser -u "$CI_USER" -- sh -c 'set -e
    rm -rf "$1/tmp" && ln -s "$3" "$1/tmp"
    rm -rf "$2/packer" && ln -s "$3" "$2/packer"
    ! ln -sfn "$4" "$1/.env" 2>/dev/null
    ! sh -c "echo evil >>\"\$1\"" sh "$5/hooks/job-started.sh" 2>/dev/null
    ! rm -f "$1/.path" 2>/dev/null' sh "$dir" "$cache" "$PRE/target-dir" "$PRE/target-file" "$CI_BASE"
  run "$SETUP" install "${ARGS[@]}"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(stat -c '%n %u:%g %a' "$PRE/target-dir" "$PRE/target-file")" == "$before" ]
  [ -z "$(ls -A "$PRE/target-dir")" ] && [ "$(cat "$PRE/target-file")" == "root only" ]
  [ ! -L "$dir/tmp" ] && [ "$(stat -c '%U %a' "$dir/tmp")" == "$CI_USER 700" ]
  [ ! -L "$cache/packer" ] && [ ! -L "$dir/.env" ] && [ "$(stat -c '%U' "$dir/.env" "$dir/.path")" == "root"$'\n'"root" ]
  ! grep -q evil "$CI_BASE/hooks/job-started.sh"
  [[ $output == *"warning: $dir/tmp is a symbolic link (planted by a job?)"* ]]
}

@test "real: uninstall puts the machine back" {
  [ -e /etc/labforge-runner ] || skip "install did not run"
  run "$SETUP" uninstall "${ARGS[@]}" --purge
  echo "$output"
  [ "$status" -eq 0 ]
  ! getent passwd "$CI_USER"
  [ ! -e /etc/udev/rules.d/99-labforge-kvm.rules ]
  [ ! -e "$CI_BASE" ] && [ ! -e "$CI_CACHE" ] && [ ! -e /etc/labforge-runner ]
  if [[ -e $PRE/kvm-group-existed ]]; then getent group kvm; else ! getent group kvm; fi
  if [[ -f $PRE/dev-kvm ]]; then [ "$(stat -c '%u:%g:%a' /dev/kvm)" == "$(cat "$PRE/dev-kvm")" ]; fi
}
