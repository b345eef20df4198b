#!/usr/bin/env bats
# runner-setup: no job can backdoor later jobs. The real script against a temporary root (see the
# helpers), real users (useradd --prefix) and a simulated job that runs as the runner's uid
# (setpriv, no other groups): after install it cannot change the runner's own files (package,
# .env, .path, hooks, unit, records) nor reach another runner's; every start of an ephemeral
# runner's service gives it a fresh directory (labforge-reregister); and setup.sh refuses parts of
# itself that someone other than root could have changed. docs/RUNNER_SETUP.md "Isolation model"
# points here.

load ../fixtures/runner-setup/helpers.bash

setup() { rs_make_host; }
teardown() { rs_cleanup_host; }

# fingerprint PATH...: owner, mode, type and content hash of each path (and of a tree's files).
fingerprint() {
  find "$@" -printf '%p %u:%g %m %y\n' -type f -exec sha256sum {} + | sort
}

@test "a job cannot change the runner's own files, nor reach another runner's" {
  rs_install --count 2
  echo "$output"
  [ "$status" -eq 0 ]
  base=$RS_ROOT/opt/labforge-runner
  dir=$base/build01-1 other=$base/build01-2
  cache=$RS_ROOT/var/cache/labforge-runner/build01-1 other_cache=$RS_ROOT/var/cache/labforge-runner/build01-2
  unit=$RS_ROOT/etc/systemd/system/labforge-runner-build01-1.service
  own=("$dir/bin" "$dir/config.sh" "$dir/run.sh" "$dir/.env" "$dir/.path" "$base/hooks" "$unit"
    "$RS_ROOT/etc/labforge-runner" "$base/.labforge-install-manifest")
  before=$(fingerprint "${own[@]}" "$other" "$other_cache")
  # the job tries every way in: write, append, replace, rename, remove, chmod, add a file
  run rs_as_job labforge-runner-1 bash -c '
    dir=$1 base=$2 unit=$3 other=$4 other_cache=$5 state=$6 ok=0
    try() { if (eval "$1") 2>/dev/null; then echo "JOB COULD: $1"; ok=1; fi; }
    for f in "$dir/bin/runsvc.sh" "$dir/config.sh" "$dir/run.sh" "$dir/.env" "$dir/.path" \
      "$base/hooks/job-started.sh" "$base/hooks/runner-cleanup.sh" "$unit" "$state/runners/build01-1.conf"; do
      try "echo evil >>\"$f\""
      try "echo evil >\"$f.new\" && mv -f \"$f.new\" \"$f\""
      try "rm -f \"$f\" && ! test -e \"$f\""
      try "chmod 777 \"$f\""
      try "ln -sfn /tmp/evil \"$f\" && test -L \"$f\""
    done
    try "mv \"$dir/bin\" \"$dir/bin.old\""
    try "touch \"$dir/bin/evil\""
    try "touch \"$base/hooks/evil\""
    try "touch \"$base/evil\""
    try "ls \"$other\""
    try "touch \"$other/evil\""
    try "ls \"$other_cache\""
    try "cat \"$other/.runner\""
    try "cat \"$other/.credentials\""
    exit "$ok"
  ' job "$dir" "$base" "$unit" "$other" "$other_cache" "$RS_ROOT/etc/labforge-runner"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(fingerprint "${own[@]}" "$other" "$other_cache")" == "$before" ]
  # what the runner itself must write, it can: its registration, logs, work folder, TMPDIR, caches
  rs_as_job labforge-runner-1 sh -c 'set -e
    echo "{}" >"$1/.runner_migrated"; mkdir -p "$1/_diag" "$1/_work/_temp"; echo log >"$1/_diag/Runner.log"
    echo x >"$1/tmp/overlay.qcow2"; echo x >"$2/packer/iso"; mkdir -p "$2/plugins/github.com"
    echo "{}" >"$1/.runner"' job "$dir" "$cache"
  # and the unit ends every process a job left when the runner's run ends
  grep -qx 'KillMode=mixed' "$unit"
}

@test "every start of an ephemeral runner's service gives it a fresh directory" {
  printf 'PATTESTDOUBLEx9Y8w7V6u5\n' >"$RS_INPUTS/pat"
  chmod 600 "$RS_INPUTS/pat"
  rs_install --ephemeral --github-pat-file "$RS_INPUTS/pat"
  [ "$status" -eq 0 ]
  dir=$RS_ROOT/opt/labforge-runner/build01 cache=$RS_ROOT/var/cache/labforge-runner/build01
  conf=$RS_ROOT/etc/labforge-runner/runners/build01.conf
  reregister=$RS_ROOT/opt/labforge-runner/bin/labforge-reregister
  uid=$(awk -F: '$1 == "labforge-runner" { print $3 }' "$RS_ROOT/etc/passwd")
  printf 'root only\n' >"$RS_ROOT/etc/secret" && chmod 600 "$RS_ROOT/etc/secret"
  roots=$(fingerprint "$dir/bin" "$dir/config.sh" "$dir/.env" "$dir/.path" "$RS_ROOT/etc/secret")
  # the job: leaves work, logs, dotfiles in its home (the runner directory), links, a plugin, a
  # background "registration"; then the ephemeral runner deregisters itself (removes .runner ...)
  rs_as_job labforge-runner sh -c 'set -e
    mkdir -p "$1/_work/lab/lab" "$1/_diag"; echo token >"$1/_work/lab/lab/stolen"
    ln -s "$3" "$1/_work/link-to-secret"; echo log >"$1/_diag/Worker.log"
    printf "[core]\n\tfsmonitor = evil\n" >"$1/.gitconfig"; echo evil >"$1/.bashrc"; mkdir "$1/.config"
    echo evil >"$1/.certificates"; echo overlay >"$1/tmp/overlay.qcow2"; ln -s "$3" "$1/tmp/link"
    echo evil >"$2/plugins/packer-plugin-qemu"; echo iso >"$2/packer/keep.iso"
    rm -f "$1/.runner" "$1/.credentials"' job "$dir" "$cache" "$RS_ROOT/etc/secret"
  LABFORGE_ROOT=$RS_ROOT LABFORGE_TEST_API_TOKEN=APITOKENFRESH42 run "$reregister" "$conf"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *"removing 7 thing(s) the runner user left in /opt/labforge-runner/build01"* ]]
  # a fresh, empty work folder and TMPDIR (only the marker), made by the user; registered again
  [ "$(stat -c '%u %a %F' "$dir/_work")" == "$uid 700 directory" ] && [ -z "$(ls -A "$dir/_work")" ]
  [ "$(ls -A "$dir/tmp")" == .labforge-runner-tmp ] && [ "$(stat -c '%u %a' "$dir/tmp")" == "$uid 700" ]
  [ "$(find "$dir" -mindepth 1 -maxdepth 1 -uid "$uid" -printf '%f\n' | sort | tr '\n' ' ')" == ".credentials .runner _work tmp " ]
  grep -q "\"tokenSha256\":\"$(printf '%s' APITOKENFRESH42 | sha256sum | cut -d' ' -f1)\"" "$dir/.runner"
  # the plugin cache (which the next job would run) is emptied, the download cache kept
  [ -d "$cache/plugins" ] && [ -z "$(ls -A "$cache/plugins")" ] && [ -f "$cache/packer/keep.iso" ]
  # root's files and what the links pointed at are untouched
  [ "$(fingerprint "$dir/bin" "$dir/config.sh" "$dir/.env" "$dir/.path" "$RS_ROOT/etc/secret")" == "$roots" ]
  # the service restarts before the runner took a job: leftovers go, the registration stays
  rs_as_job labforge-runner sh -c 'echo x >"$1/_work/left"; echo x >"$1/.profile"' job "$dir"
  : >"$RS_RECORD/argv.log"
  LABFORGE_ROOT=$RS_ROOT run "$reregister" "$conf"
  [ "$status" -eq 0 ]
  [[ $output == *"removing 3 thing(s)"*"runner build01 is registered"* ]]
  [ -z "$(ls -A "$dir/_work")" ] && [ ! -e "$dir/.profile" ] && [ -f "$dir/.runner" ] && [ -f "$dir/.credentials" ]
  ! grep -q '^config.sh' "$RS_RECORD/argv.log"
  # a runner directory the user owns (an earlier version's layout) is refused until install runs
  chown "$uid" "$dir"
  LABFORGE_ROOT=$RS_ROOT run "$reregister" "$conf"
  [ "$status" -eq 1 ]
  [[ $output == *"/opt/labforge-runner/build01 is not the runner's root-owned directory (root:labforge-runner 1770); run setup.sh install again"* ]]
}

@test "install takes back a runner directory of the earlier layout, where the user owned the package" {
  rs_install
  [ "$status" -eq 0 ]
  dir=$RS_ROOT/opt/labforge-runner/build01
  uid=$(awk -F: '$1 == "labforge-runner" { print $3 }' "$RS_ROOT/etc/passwd")
  gid=$(awk -F: '$1 == "labforge-runner" { print $4 }' "$RS_ROOT/etc/passwd")
  # the earlier layout: everything the user's, and the runner's own update left next to it
  chown -R "$uid:$gid" "$dir" && chmod 750 "$dir" && chmod -R u+w "$dir"
  rs_as_job labforge-runner sh -c 'set -e; mkdir "$1/bin.2.331.0"; ln -sfn /etc "$1/run.sh"' job "$dir"
  : >"$RS_RECORD/argv.log"
  rs_install
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *"not root's or older than 2.330.0; replacing it"* ]]
  [ "$(stat -c '%u %g %a' "$dir")" == "0 $gid 1770" ]
  [ -z "$(find "$dir/bin" "$dir/config.sh" "$dir/run.sh" "$dir/.env" "$dir/.path" \( ! -uid 0 -o -perm /022 \))" ]
  [ ! -L "$dir/run.sh" ] && [ ! -e "$dir/bin.2.331.0" ]
  # the registration is kept (not registered again), the service restarted on the new files
  [ -f "$dir/.runner" ] && ! grep -q '^config.sh' "$RS_RECORD/argv.log"
  grep -qx 'systemctl restart labforge-runner-build01.service' "$RS_RECORD/argv.log"
  rs_install
  [[ $output == *"nothing changed"* ]]
}

@test "setup.sh refuses parts of itself that are missing, or that someone other than root could change" {
  copy=$RS_BASE/runner-setup
  cp -r "$RS_REPO/runner-setup" "$copy"
  chmod -R go-w "$copy"
  run "$copy/setup.sh" --help
  [ "$status" -eq 0 ]
  # started through a link: the parts are found next to the real file
  ln -s "$copy/setup.sh" "$RS_BASE/setup-link"
  run "$RS_BASE/setup-link" --help
  [ "$status" -eq 0 ] && [[ $output == *"Usage: setup.sh"* ]]
  chmod g+w "$copy/lib/kvm.sh"
  run "$copy/setup.sh" preflight --root "$RS_ROOT"
  [ "$status" -eq 1 ] && [ "${#lines[@]}" -eq 1 ]
  [[ $output == "setup.sh: error: $copy/lib/kvm.sh is writable by group or others (-rw-rw-r--); runner-setup runs as root: chmod go-w it" ]]
  chmod g-w "$copy/lib/kvm.sh" && chmod o+w "$copy/hooks/job-started.sh"
  run "$copy/setup.sh" --help
  [ "$status" -eq 1 ] && [[ $output == *"$copy/hooks/job-started.sh is writable by group or others"* ]]
  chmod o-w "$copy/hooks/job-started.sh"
  chmod o+w "$copy/lib"
  run "$copy/setup.sh" --help
  [ "$status" -eq 1 ] && [[ $output == *"$copy/lib is writable by group or others"* ]]
  chmod o-w "$copy/lib" && chown 65534 "$copy/lib/files.sh"
  run "$copy/setup.sh" --help
  [ "$status" -eq 1 ]
  [[ $output == *"$copy/lib/files.sh is owned by uid 65534, not root; runner-setup runs as root, so its files must be root's"* ]]
  chown 0 "$copy/lib/files.sh" && rm "$copy/lib/uninstall.sh"
  run "$copy/setup.sh" --help
  [ "$status" -eq 1 ]
  [[ $output == "setup.sh: error: $copy/lib/uninstall.sh is missing (runner-setup is incomplete: copy the whole runner-setup directory)" ]]
  ln -s /etc/passwd "$copy/lib/uninstall.sh"
  run "$copy/setup.sh" --help
  [ "$status" -eq 1 ] && [[ $output == *"$copy/lib/uninstall.sh is not a regular file or directory"* ]]
}
