#!/usr/bin/env bats
# scripts/setup.sh: options, the package list, the message for a user who is not root, and a second run that
# does no slow work. Nothing here installs a Debian package: the runs that could are skipped when the list
# is not all installed, and the not-root case uses a list with a package that does not exist.

REPO=$(cd "$(dirname "$BATS_TEST_FILENAME")/../.." && pwd)
SETUP=$REPO/scripts/setup.sh
LIST=$REPO/scripts/debian-packages.txt

setup() {
  WORK=$(mktemp -d /tmp/labforge-setup-bats.XXXXXX)
  chmod 755 "$WORK"
}

teardown() {
  [[ -n ${WORK:-} && $WORK == /tmp/labforge-setup-bats.* ]] && rm -rf -- "$WORK"
  return 0
}

# A checkout-shaped copy: scripts/setup.sh, a package list, and a project without dependencies whose build
# appends a line to build.log (so that a build that runs leaves a trace).
copy_checkout() {
  mkdir -p "$WORK/repo/scripts"
  cp "$SETUP" "$WORK/repo/scripts/setup.sh"
  cp "$LIST" "$WORK/repo/scripts/debian-packages.txt"
  cat >"$WORK/repo/package.json" <<'EOF'
{ "name": "setup-fixture", "version": "1.0.0", "private": true, "scripts": { "build": "echo built >> build.log" } }
EOF
  cat >"$WORK/repo/package-lock.json" <<'EOF'
{ "name": "setup-fixture", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": { "": { "name": "setup-fixture", "version": "1.0.0" } } }
EOF
  chmod -R a+rX "$WORK/repo"
}

# The packages of the list file, read independently of setup.sh.
listed() { grep -v '^[[:space:]]*#' "$LIST" | awk 'NF { print $1 }' | paste -sd' '; }

all_installed() {
  local p installed
  # shellcheck disable=SC2046 # one word per package
  installed=" $({ dpkg-query -W -f='${db:Status-Abbrev}${Package}\n' $(listed) 2>/dev/null || true; } | sed -n 's/^ii  *//p' | paste -sd' ') "
  for p in $(listed); do [[ $installed == *" $p "* ]] || return 1; done
}

@test "a bad option: exit 2 and one line naming it" {
  run bash "$SETUP" --no-such-option
  [ "$status" -eq 2 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ ${lines[0]} == "setup: unknown option '--no-such-option' (options: --dry-run, --no-npm, --no-build, --no-apt-update, --help)" ]]
}

@test "--help prints the usage and exits 0" {
  run bash "$SETUP" --help
  [ "$status" -eq 0 ]
  [[ $output == *"Usage: scripts/setup.sh [--dry-run] [--no-npm] [--no-build] [--no-apt-update] [--help]"* ]]
}

@test "--dry-run lists exactly the packages of scripts/debian-packages.txt, and changes nothing" {
  run bash "$SETUP" --dry-run
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "setup: packages: $(listed)" ]
  [ "$(listed | wc -w)" -ge 20 ]
  [[ ${lines[1]} == "setup: missing: "* ]]
  [[ $output != *"installing"* && $output != *"setup: npm ci ("* && $output != *"setup: npm run build"* ]]
}

@test "the list holds every package the issue names, chromium among them" {
  for p in packer qemu-utils qemu-system-x86 openssh-server openssh-client genisoimage mmdebstrap e2fsprogs chromium bats shellcheck; do
    [[ " $(listed) " == *" $p "* ]] || { echo "missing $p"; return 1; }
  done
}

@test "not root and a package missing: one line with the apt-get command to run as root, exit 1" {
  [ "$(id -u)" -eq 0 ] || skip "needs root to run the script as nobody"
  copy_checkout
  printf '# test list\nbash\nlabforge-no-such-package-for-tests\n' >"$WORK/repo/scripts/debian-packages.txt"
  run setpriv --reuid=65534 --regid=65534 --clear-groups bash "$WORK/repo/scripts/setup.sh"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [ "${lines[0]}" = "setup: 1 Debian package(s) missing and this is not root (no sudo is tried); run as root: apt-get update && apt-get install -y labforge-no-such-package-for-tests" ]
  [ ! -e "$WORK/repo/node_modules" ]
}

@test "a second run on this machine is fast: apt, npm ci and the build are all skipped" {
  all_installed || skip "not every listed package is installed here (this test never installs one)"
  copy_checkout
  cd "$WORK/repo"
  run bash scripts/setup.sh --no-apt-update
  [ "$status" -eq 0 ] || { echo "$output"; return 1; }
  [[ $output == *"setup: Debian packages: all $(listed | wc -w) installed"* ]]
  [[ $output == *"setup: npm ci (package-lock.json sha256 "* ]]
  [ "$(cat build.log)" = "built" ]
  touch node_modules/left-by-the-first-run # npm ci would remove it
  start=$(date +%s%N)
  run bash scripts/setup.sh --no-apt-update
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  [ "$status" -eq 0 ] || { echo "$output"; return 1; }
  [[ $output == *"npm ci skipped"* ]]
  [[ $output == *"build skipped"* ]]
  [ -e node_modules/left-by-the-first-run ]
  [ "$(cat build.log)" = "built" ]
  echo "second run: $elapsed_ms ms" >&3
  [ "$elapsed_ms" -lt 10000 ]
}

@test "a changed package-lock.json runs npm ci again" {
  all_installed || skip "not every listed package is installed here (this test never installs one)"
  copy_checkout
  cd "$WORK/repo"
  run bash scripts/setup.sh --no-apt-update --no-build
  [ "$status" -eq 0 ]
  sed -i 's/"requires": true/"requires": true /' package-lock.json
  run bash scripts/setup.sh --no-apt-update --no-build
  [ "$status" -eq 0 ]
  [[ $output == *"setup: npm ci (package-lock.json sha256 "* ]]
}
