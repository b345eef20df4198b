#!/usr/bin/env bats
# runner-setup/setup.sh uninstall removes only what install recorded in its manifests, never an
# unrelated file in the base or cache directory, never through a symbolic link.

load ../fixtures/runner-setup/helpers.bash

setup() { rs_make_host; }
teardown() { rs_cleanup_host; }

uninstall() { RUNNER_TOKEN=$RS_TOKEN run "$RS_SETUP" uninstall --root "$RS_ROOT" "$@"; }

@test "install records what it created, root-owned, one path per line" {
  rs_install --count 2
  [ "$status" -eq 0 ]
  base=$RS_ROOT/opt/labforge-runner/.labforge-install-manifest
  cache=$RS_ROOT/var/cache/labforge-runner/.labforge-install-manifest
  [ "$(stat -c '%u %a' "$base")" == "0 644" ] && [ "$(stat -c '%u %a' "$cache")" == "0 644" ]
  [ "$(cat "$base")" == "dir /opt/labforge-runner
dir /opt/labforge-runner/hooks
file /opt/labforge-runner/hooks/job-started.sh
file /opt/labforge-runner/hooks/job-completed.sh
file /opt/labforge-runner/hooks/runner-cleanup.sh
tree /opt/labforge-runner/build01-1
tree /opt/labforge-runner/build01-2" ]
  [ "$(cat "$cache")" == "dir /var/cache/labforge-runner
tree /var/cache/labforge-runner/build01-1
tree /var/cache/labforge-runner/build01-2" ]
}

@test "uninstall leaves a file in the base directory that install did not create" {
  mkdir -p "$RS_ROOT/opt/labforge-runner"
  echo keep >"$RS_ROOT/opt/labforge-runner/notes.txt"
  rs_install
  [ "$status" -eq 0 ]
  echo mine >"$RS_ROOT/opt/labforge-runner/hooks/site-hook.sh" # added to install's hooks directory later
  uninstall --purge
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(cat "$RS_ROOT/opt/labforge-runner/notes.txt")" == keep ]
  [ "$(cat "$RS_ROOT/opt/labforge-runner/hooks/site-hook.sh")" == mine ]
  [ "$(ls -A "$RS_ROOT/opt/labforge-runner/hooks")" == site-hook.sh ]
  [ ! -e "$RS_ROOT/opt/labforge-runner/build01" ]
  [ ! -e "$RS_ROOT/opt/labforge-runner/.labforge-install-manifest" ]
  [[ $output == *"kept /opt/labforge-runner/hooks: it holds what install did not create (site-hook.sh)"* ]]
}

@test "--purge removes the runners' caches and leaves unrelated cache content" {
  mkdir -p "$RS_ROOT/var/cache/labforge-runner/other-tool"
  echo data >"$RS_ROOT/var/cache/labforge-runner/other-tool/data"
  rs_install --count 2
  [ "$status" -eq 0 ]
  uninstall
  [ "$status" -eq 0 ]
  [ -d "$RS_ROOT/var/cache/labforge-runner/build01-1/packer" ]
  uninstall --purge
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(cat "$RS_ROOT/var/cache/labforge-runner/other-tool/data")" == data ]
  [ "$(ls -A "$RS_ROOT/var/cache/labforge-runner")" == other-tool ]
}

@test "--purge keeps a cache directory install created once something else put files in it" {
  rs_install
  [ "$status" -eq 0 ]
  echo other >"$RS_ROOT/var/cache/labforge-runner/other.db"
  uninstall --purge
  [ "$status" -eq 0 ]
  [ "$(ls -A "$RS_ROOT/var/cache/labforge-runner")" == other.db ]
  [[ $output == *"kept /var/cache/labforge-runner: it holds what install did not create (other.db)"* ]]
}

@test "uninstall does not follow a link that replaced a recorded file" {
  rs_install
  [ "$status" -eq 0 ]
  mkdir -p "$RS_ROOT/srv/site"
  echo site >"$RS_ROOT/srv/site/job-started.sh"
  ln -sfn "$RS_ROOT/srv/site/job-started.sh" "$RS_ROOT/opt/labforge-runner/hooks/job-started.sh"
  uninstall
  [ "$status" -eq 0 ]
  [ "$(cat "$RS_ROOT/srv/site/job-started.sh")" == site ]
  [[ $output == *"kept /opt/labforge-runner/hooks/job-started.sh: /opt/labforge-runner/hooks/job-started.sh is a symbolic link"* ]]
}

@test "uninstall of an installation made before the manifests removes only install's own names" {
  rs_install
  [ "$status" -eq 0 ]
  rm "$RS_ROOT/opt/labforge-runner/.labforge-install-manifest" "$RS_ROOT/var/cache/labforge-runner/.labforge-install-manifest"
  echo keep >"$RS_ROOT/opt/labforge-runner/bin-notes"
  uninstall --purge
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(ls -A "$RS_ROOT/opt/labforge-runner")" == bin-notes ]
  [ ! -e "$RS_ROOT/var/cache/labforge-runner" ]
}
