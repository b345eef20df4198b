#!/usr/bin/env bats
# runner-setup/setup.sh as root never follows a symbolic link that a runner user (a job) could have
# planted: the real script against a temporary root (see the helpers), a simulated job that runs as
# the runner's uid (setpriv, ids from the test root's user database) and plants links in every place
# of its trees that install touches again, then install re-run as root.

load ../fixtures/runner-setup/helpers.bash

setup() { rs_make_host; }
teardown() { rs_cleanup_host; }

# Owner, mode and content of the root-owned link targets (stand-ins for /usr/local/bin, /etc/shadow ...).
targets() {
  local t
  for t in "$RS_ROOT"/usr/local/{bin,lib,share} "$RS_ROOT"/etc/cron.d "$RS_ROOT"/etc/secret; do
    printf '%s %s' "$t" "$(stat -c '%u:%g %a %F' "$t")"
    if [ -f "$t" ]; then printf ' %s\n' "$(sha256sum <"$t")"; else printf ' [%s]\n' "$(ls -A "$t" | tr '\n' ' ')"; fi
  done
}

@test "a re-run of install replaces the links a job planted and leaves their targets alone" {
  rs_install
  [ "$status" -eq 0 ]
  dir=$RS_ROOT/opt/labforge-runner/build01
  cache=$RS_ROOT/var/cache/labforge-runner/build01
  mkdir -p "$RS_ROOT"/usr/local/{bin,lib,share} "$RS_ROOT/etc/cron.d"
  printf 'root-only secret\n' >"$RS_ROOT/etc/secret"
  chmod 600 "$RS_ROOT/etc/secret"
  before=$(targets)
  # the job: links in every user-writable place root touches; root's own files it cannot replace
  rs_as_job labforge-runner sh -c '
    set -e
    rm -rf "$1/tmp" && ln -s "$3/usr/local/bin" "$1/tmp"
    rm -rf "$2/packer" && ln -s "$3/usr/local/lib" "$2/packer"
    rm -rf "$2/plugins" && ln -s "$3/usr/local/share" "$2/plugins"
    ln -sfn "$3/etc/cron.d/labforge-job" "$1/.labforge-runner-package"
    ln -sfn "$3/etc/secret" "$1/_diag"
    ! ln -sfn "$3/etc/secret" "$1/.env" 2>/dev/null
    ! ln -sfn "$3/etc/secret" "$1/.path" 2>/dev/null
    ! printf "#!/bin/sh\ntouch %s/job-ran-as-root\n" "$3" 2>/dev/null >"$1/bin/installdependencies.sh"
  ' sh "$dir" "$cache" "$RS_ROOT"
  [ -L "$dir/tmp" ] && [ -L "$cache/packer" ] && [ ! -L "$dir/.env" ] && [ -L "$dir/_diag" ]
  rs_install --min-free-gb 60
  echo "$output"
  [ "$status" -eq 0 ]
  # nothing reached through the links changed owner, mode or content
  [ "$(targets)" == "$before" ]
  [ ! -e "$RS_ROOT/etc/cron.d/labforge-job" ] && [ ! -e "$RS_ROOT/job-ran-as-root" ]
  # each link root touches was replaced by what install makes there, owned by the runner user
  uid=$(awk -F: '$1 == "labforge-runner" { print $3 }' "$RS_ROOT/etc/passwd")
  [ ! -L "$dir/tmp" ] && [ "$(stat -c '%u %a %F' "$dir/tmp")" == "$uid 700 directory" ]
  [ -f "$dir/tmp/.labforge-runner-tmp" ] && [ ! -L "$dir/tmp/.labforge-runner-tmp" ]
  for d in "$cache/packer" "$cache/plugins"; do
    [ ! -L "$d" ] && [ "$(stat -c '%u %a %F' "$d")" == "$uid 750 directory" ]
  done
  # root's .env and .path: still root's, rewritten by root
  for f in "$dir/.env" "$dir/.path"; do
    [ ! -L "$f" ] && [ "$(stat -c '%u %a %F' "$f")" == "0 644 regular file" ]
  done
  grep -qx 'LABFORGE_MIN_FREE_GB=60' "$dir/.env"
  for p in /opt/labforge-runner/build01/tmp /var/cache/labforge-runner/build01/packer; do
    [[ $output == *"warning: $p is a symbolic link (planted by a job?); replacing it"*"not following it"* ]] || { echo "no warning for $p"; return 1; }
  done
  # the runner package is not unpacked again, and its installer never runs from the runner's directory
  [[ $output == *"= runner package 2.330.0 in /opt/labforge-runner/build01 (root-owned)"* ]]
  [ "$(grep -c '^installdependencies.sh' "$RS_RECORD/argv.log")" -eq 1 ]
  # and a third run is quiet again
  rs_install --min-free-gb 60
  [ "$status" -eq 0 ]
  [[ $output == *"nothing changed"* ]]
}

@test "the runner package is root's: unpacked by root into a root-only staging directory, never by the user" {
  rs_install
  [ "$status" -eq 0 ]
  uid=$(awk -F: '$1 == "labforge-runner" { print $3 }' "$RS_ROOT/etc/passwd")
  dir=$RS_ROOT/opt/labforge-runner/build01
  # no tar as the runner user; the dependency installer runs as root from its own copy
  ! grep -Eq "^setpriv --reuid $uid .* tar " "$RS_RECORD/argv.log"
  grep -qx 'installdependencies.sh uid=0 ' "$RS_RECORD/argv.log"
  [ -z "$(find "$dir/bin" "$dir/config.sh" "$dir/run.sh" "$dir/.env" "$dir/.path" \( ! -uid 0 -o -perm /022 \))" ]
  [ -z "$(find "$RS_ROOT/opt/labforge-runner" -maxdepth 1 -name '.labforge-stage.*')" ]
  # what the runner user owns in its directory is only what it (the test-double config.sh) made
  [ "$(find "$dir" -mindepth 1 -maxdepth 1 -uid "$uid" -printf '%f\n' | sort | tr '\n' ' ')" == ".credentials .runner _work tmp " ]
  [ -z "$(find "$RS_ROOT/var/cache/labforge-runner/build01" ! -uid "$uid")" ]
  # no record of root's in the runner's directory
  [ ! -e "$dir/.labforge-runner-package" ]
  grep -qx "runner_package=2.330.0 $RS_SHA" "$RS_ROOT/etc/labforge-runner/runners/build01.conf"
}

@test "a base directory others could write is taken back by root before a runner tree is made in it" {
  mkdir -p "$RS_ROOT/opt/labforge-runner"
  chmod 777 "$RS_ROOT/opt/labforge-runner"
  chown 65534:65534 "$RS_ROOT/opt/labforge-runner"
  rs_install --skip-register
  [ "$status" -eq 0 ]
  [[ $output == *"+ directory /opt/labforge-runner (755 root:root)"*"+ directory /opt/labforge-runner/build01 (1770 root:labforge-runner)"* ]]
  [ "$(stat -c '%u:%g %a' "$RS_ROOT/opt/labforge-runner")" == "0:0 755" ]
}

@test "a runner directory that is a symbolic link is refused, not handed to the runner user" {
  mkdir -p "$RS_ROOT/opt/labforge-runner" "$RS_ROOT/usr/local/bin"
  ln -s "$RS_ROOT/usr/local/bin" "$RS_ROOT/opt/labforge-runner/build01"
  rs_install --skip-register
  [ "$status" -eq 1 ]
  [[ $output == *"/opt/labforge-runner/build01 is a symbolic link; refusing to hand it to labforge-runner"* ]]
  [ "$(stat -c '%u %a' "$RS_ROOT/usr/local/bin")" == "0 755" ]
}
