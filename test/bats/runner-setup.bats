#!/usr/bin/env bats
# runner-setup/setup.sh end to end against a temporary root: the real script, real useradd/usermod/
# groupadd (--prefix), real setpriv and dpkg-query; test doubles only for what needs a running system
# (systemctl, udevadm, apt-get, modprobe, curl) and for the actions/runner tarball.

load ../fixtures/runner-setup/helpers.bash

setup() { rs_make_host; }
teardown() { rs_cleanup_host; }

# Commands in the argv log that change something as root (everything but queries and the runner
# user's own writes inside its trees, which user_writes lists).
mutating_commands() {
  grep -v -E '^(dpkg-query |systemctl is-(active|enabled) |setpriv .* sh -c exec 3<>|setpriv .* labforge-user-(write|mkdir) )' "$RS_RECORD/argv.log" || true
}
# Files and directories the runner user wrote in its own trees (setup.sh runs these as the user).
user_writes() {
  grep -E '^setpriv .* labforge-user-(write|mkdir) ' "$RS_RECORD/argv.log" | sed -E 's/.* labforge-user-(write|mkdir) ([^ ]*).*/\2/' || true
}

@test "--help documents every command and the token rule" {
  run "$RS_SETUP" --help
  [ "$status" -eq 0 ]
  [[ $output == *"Usage: setup.sh [COMMAND] [OPTIONS]"* ]]
  for word in install preflight status uninstall --token-file RUNNER_TOKEN --count --dry-run --purge --root --skip-register --allow-no-kvm --enable-nested; do
    [[ $output == *"$word"* ]] || { echo "missing: $word"; return 1; }
  done
}

@test "bad input fails with exit 2 naming the input" {
  run "$RS_SETUP" install --root "$RS_ROOT" --count 0 --skip-register
  [ "$status" -eq 2 ]
  [[ $output == *"--count: '0' is not a number from 1 to 16"* ]]
  run "$RS_SETUP" install --root "$RS_ROOT" --frobnicate
  [ "$status" -eq 2 ]
  [[ $output == *"unknown option '--frobnicate'"* ]]
  run "$RS_SETUP" install --root "$RS_ROOT" --url http://github.com/x --token-file /dev/null --runner-tarball "$RS_TARBALL" --runner-sha256 "$RS_SHA"
  [ "$status" -eq 2 ]
  [[ $output == *"--url: 'http://github.com/x' is not https://HOST/OWNER"* ]]
  run "$RS_SETUP" install --root "$RS_ROOT" --skip-register --runner-version 2.328.0
  [ "$status" -eq 2 ]
  [[ $output == *"GitHub only registers runners >= 2.329.0"* ]]
  [ ! -s "$RS_RECORD/argv.log" ]
}

@test "a token on the command line is refused without being echoed" {
  run "$RS_SETUP" install --root "$RS_ROOT" --token "$RS_TOKEN"
  [ "$status" -eq 2 ]
  [[ $output == *"--token: a token on the command line is visible to every user"* ]]
  [[ $output != *"$RS_TOKEN"* ]]
}

@test "dry run prints every action and changes nothing" {
  before=$(rs_snapshot)
  rs_install --dry-run
  [ "$status" -eq 0 ]
  [[ $output == *"dry run: nothing will be changed"* ]]
  for action in "would: apt-get install qemu-system-x86" "would: create system group kvm" \
    "would: write /etc/udev/rules.d/99-labforge-kvm.rules" "would: create user labforge-runner" \
    "would: add labforge-runner to group kvm" "would: install runner 2.330.0 into /opt/labforge-runner/build01 (owned by root, read-only to labforge-runner)" \
    "would: register runner build01: config.sh --unattended --url https://github.com/example/lab" \
    "would: write /etc/systemd/system/labforge-runner-build01.service" "would: enable labforge-runner-build01.service" \
    "would: start labforge-runner-build01.service" "would: write /opt/labforge-runner/hooks/job-started.sh"; do
    [[ $output == *"$action"* ]] || { echo "missing: $action"; return 1; }
  done
  [[ $output == *"changes would be made; nothing was changed"* || $output == *"change(s) would be made; nothing was changed"* ]]
  [ "$(rs_snapshot)" == "$before" ]
  [ -z "$(mutating_commands)" ]
  [ "$(stat -c '%a %g' "$KVM_DEVICE")" == "600 0" ]
}

@test "full install into the temporary root" {
  rs_install
  echo "$output"
  [ "$status" -eq 0 ]
  # packages, KVM group, udev rule written after the packages, then trigger + settle
  grep -qx 'apt-get install -y -q --no-install-recommends qemu-system-x86 qemu-utils packer genisoimage openssh-client zstd jq git curl ca-certificates' "$RS_RECORD/argv.log"
  [ "$(cat "$RS_ROOT/etc/udev/rules.d/99-labforge-kvm.rules" | grep -v '^#')" == 'KERNEL=="kvm", GROUP="kvm", MODE="0660"' ]
  order=$(grep -n -E '^(apt-get install|udevadm trigger|udevadm settle)' "$RS_RECORD/argv.log" | cut -d: -f2 | cut -d' ' -f1-2 | tr '\n' ,)
  [ "$order" == "apt-get install,udevadm trigger,udevadm settle," ]
  kvm_gid=$(awk -F: '$1 == "kvm" { print $3 }' "$RS_ROOT/etc/group")
  [ "$(stat -c '%a %g' "$KVM_DEVICE")" == "660 $kvm_gid" ]
  grep -q '^kvm:x:[0-9]*:labforge-runner$' "$RS_ROOT/etc/group"
  [[ $output == *"ok: labforge-runner can open $KVM_DEVICE"* ]]
  # the runner: dedicated non-root user, own directory, registered as that user with the labels
  uid=$(awk -F: '$1 == "labforge-runner" { print $3 }' "$RS_ROOT/etc/passwd")
  [ -n "$uid" ] && [ "$uid" -ne 0 ]
  gid=$(awk -F: '$1 == "labforge-runner" { print $4 }' "$RS_ROOT/etc/passwd")
  # its directory is root's (the user may add files, not change root's: see runner-setup-isolation.bats)
  [ "$(stat -c '%u %g %a' "$RS_ROOT/opt/labforge-runner/build01")" == "0 $gid 1770" ]
  grep -qx "config.sh uid=$uid token-env=present --unattended --url https://github.com/example/lab --name build01 --labels self-hosted,linux,x64,kvm,packer --work _work --replace --disableupdate" "$RS_RECORD/argv.log"
  grep -qx "installdependencies.sh uid=0 " "$RS_RECORD/argv.log"
  token_sha=$(printf '%s' "$RS_TOKEN" | sha256sum | cut -d' ' -f1)
  grep -q "\"tokenSha256\":\"$token_sha\"" "$RS_ROOT/opt/labforge-runner/build01/.runner"
  # runner environment: persistent Packer paths, hooks, its own TMPDIR; .path fixed
  env_file=$RS_ROOT/opt/labforge-runner/build01/.env
  grep -qx 'PACKER_CACHE_DIR=/var/cache/labforge-runner/build01/packer' "$env_file"
  grep -qx 'PACKER_PLUGIN_PATH=/var/cache/labforge-runner/build01/plugins' "$env_file"
  grep -qx 'ACTIONS_RUNNER_HOOK_JOB_STARTED=/opt/labforge-runner/hooks/job-started.sh' "$env_file"
  grep -qx 'ACTIONS_RUNNER_HOOK_JOB_COMPLETED=/opt/labforge-runner/hooks/job-completed.sh' "$env_file"
  grep -qx 'TMPDIR=/opt/labforge-runner/build01/tmp' "$env_file"
  grep -qx 'LABFORGE_RUNNER_NAME=build01' "$env_file"
  [ "$(cat "$RS_ROOT/opt/labforge-runner/build01/.path")" == /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ]
  [ -x "$RS_ROOT/opt/labforge-runner/hooks/job-started.sh" ]
  [ -x "$RS_ROOT/opt/labforge-runner/hooks/job-completed.sh" ]
  cmp "$RS_REPO/runner-setup/hooks/runner-cleanup.sh" "$RS_ROOT/opt/labforge-runner/hooks/runner-cleanup.sh"
  [ "$(stat -c '%u' "$RS_ROOT/var/cache/labforge-runner/build01/packer")" == "$uid" ]
  # the service
  unit=$RS_ROOT/etc/systemd/system/labforge-runner-build01.service
  grep -qx 'User=labforge-runner' "$unit"
  grep -qx 'SupplementaryGroups=kvm' "$unit"
  grep -qx 'ExecStart=/opt/labforge-runner/build01/bin/runsvc.sh' "$unit"
  grep -qx 'WorkingDirectory=/opt/labforge-runner/build01' "$unit"
  grep -qx 'systemctl enable labforge-runner-build01.service' "$RS_RECORD/argv.log"
  grep -qx 'systemctl start labforge-runner-build01.service' "$RS_RECORD/argv.log"
  [[ $output == *"packer: Packer v"* ]]
}

@test "a second run changes nothing and says so" {
  rs_install
  [ "$status" -eq 0 ]
  before=$(rs_snapshot)
  : >"$RS_RECORD/argv.log"
  rs_install
  [ "$status" -eq 0 ]
  [[ $output == *"nothing changed: the host is already set up (1 runner(s))"* ]]
  [[ $output != *"  + "* ]]
  [ "$(rs_snapshot)" == "$before" ]
  [ -z "$(mutating_commands)" ]
  [ -z "$(user_writes)" ]
}

@test "a changed setting updates the runner environment and restarts the service" {
  rs_install
  [ "$status" -eq 0 ]
  : >"$RS_RECORD/argv.log"
  rs_install --min-free-gb 80
  [ "$status" -eq 0 ]
  grep -qx 'LABFORGE_MIN_FREE_GB=80' "$RS_ROOT/opt/labforge-runner/build01/.env"
  [ "$(mutating_commands)" == "systemctl restart labforge-runner-build01.service" ]
  [ -z "$(user_writes)" ] # .env is root's now
  [[ $output == *"1 change(s) made"* || $output == *"2 change(s) made"* ]]
}

@test "checksum mismatch refuses and changes nothing" {
  before=$(rs_snapshot)
  RUNNER_TOKEN=$RS_TOKEN run "$RS_SETUP" install --root "$RS_ROOT" --url https://github.com/example/lab --name build01 \
    --runner-tarball "$RS_TARBALL" --runner-sha256 "$(printf '0%.0s' {1..64})" --packer-source distro
  [ "$status" -eq 2 ]
  [[ $output == *"--runner-tarball: SHA-256 mismatch for $RS_TARBALL: expected 0000"*", got $RS_SHA (refusing to install it"* ]]
  # a tarball changed after its checksum was taken is refused the same way
  printf 'tampered' >>"$RS_TARBALL"
  rs_install
  [ "$status" -eq 2 ]
  [[ $output == *"SHA-256 mismatch"* ]]
  [ "$(rs_snapshot)" == "$before" ]
  [ ! -s "$RS_RECORD/argv.log" ]
}

@test "the built-in checksum is used for the default version and refuses another tarball" {
  RUNNER_TOKEN=$RS_TOKEN run "$RS_SETUP" install --root "$RS_ROOT" --url https://github.com/example/lab \
    --runner-tarball "$RS_TARBALL" --packer-source distro
  [ "$status" -eq 2 ]
  [[ $output == *"expected af5c33fa94f3cc33b8e97937939136a6b04197e6dadfcfb3b6e33ae1bf41e79a, got $RS_SHA"* ]]
  RUNNER_TOKEN=$RS_TOKEN run "$RS_SETUP" install --root "$RS_ROOT" --url https://github.com/example/lab --runner-version 2.400.0
  [ "$status" -eq 2 ]
  [[ $output == *"--runner-sha256: no built-in checksum for runner 2.400.0"* ]]
}

@test "a missing token fails before anything is changed" {
  before=$(rs_snapshot)
  run "$RS_SETUP" install --root "$RS_ROOT" --url https://github.com/example/lab --name build01 \
    --runner-tarball "$RS_TARBALL" --runner-sha256 "$RS_SHA"
  [ "$status" -eq 2 ]
  [[ $output == *"registration token missing: set RUNNER_TOKEN or pass --token-file FILE"* ]]
  run "$RS_SETUP" install --root "$RS_ROOT" --url https://github.com/example/lab --token-file "$RS_BASE/no-such-file" \
    --runner-tarball "$RS_TARBALL" --runner-sha256 "$RS_SHA"
  [ "$status" -eq 2 ]
  [[ $output == *"--token-file: cannot read '$RS_BASE/no-such-file'"* ]]
  [ "$(rs_snapshot)" == "$before" ]
  [ ! -s "$RS_RECORD/argv.log" ]
}

@test "the token never appears in output, recorded argv or files outside the runner's config" {
  token_file=$RS_INPUTS/token
  printf '%s\n' "$RS_TOKEN" >"$token_file"
  chmod 600 "$token_file"
  run "$RS_SETUP" install --root "$RS_ROOT" --url https://github.com/example/lab --name build01 --count 2 \
    --token-file "$token_file" --runner-tarball "$RS_TARBALL" --runner-sha256 "$RS_SHA" --packer-source distro
  [ "$status" -eq 0 ]
  all_output=$output
  rs_install --count 2 # RUNNER_TOKEN from the environment this time (second run: nothing to register)
  [ "$status" -eq 0 ]
  all_output+=$output
  RUNNER_TOKEN=$RS_TOKEN run "$RS_SETUP" uninstall --root "$RS_ROOT"
  [ "$status" -eq 0 ]
  all_output+=$output
  # the token reached config.sh (its SHA-256 is in the test double's .runner) through the environment
  grep -c 'config.sh uid=[1-9][0-9]* token-env=present' "$RS_RECORD/argv.log" | grep -qx 4
  [[ $all_output != *"$RS_TOKEN"* ]]
  ! grep -q "$RS_TOKEN" "$RS_RECORD/argv.log"
  # nowhere under the test base except the token file the test wrote itself
  leaks=$(grep -rl "$RS_TOKEN" "$RS_BASE" | grep -vx "$token_file" || true)
  [ -z "$leaks" ]
}

@test "--count 3 gives three isolated runners" {
  rs_install --count 3 --labels prewarm
  echo "$output"
  [ "$status" -eq 0 ]
  uids=""
  for i in 1 2 3; do
    user=labforge-runner-$i dir=$RS_ROOT/opt/labforge-runner/build01-$i
    uid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$RS_ROOT/etc/passwd")
    [ -n "$uid" ]
    uids+="$uid "
    [ "$(stat -c '%u %a' "$dir")" == "0 1770" ]
    [ "$(stat -c '%u %a' "$dir/tmp")" == "$uid 700" ]
    grep -q "\"agentName\":\"build01-$i\"" "$dir/.runner"
    grep -q "\"workFolder\":\"_work\"" "$dir/.runner"
    [ -d "$dir/_work" ]
    grep -qx "TMPDIR=/opt/labforge-runner/build01-$i/tmp" "$dir/.env"
    grep -qx "PACKER_CACHE_DIR=/var/cache/labforge-runner/build01-$i/packer" "$dir/.env"
    grep -qx "LABFORGE_RUNNER_NAME=build01-$i" "$dir/.env"
    grep -qx "User=$user" "$RS_ROOT/etc/systemd/system/labforge-runner-build01-$i.service"
    grep -qx "config.sh uid=$uid token-env=present --unattended --url https://github.com/example/lab --name build01-$i --labels self-hosted,linux,x64,kvm,packer,prewarm --work _work --replace --disableupdate" "$RS_RECORD/argv.log"
    grep -qx "systemctl start labforge-runner-build01-$i.service" "$RS_RECORD/argv.log"
  done
  [ "$(tr ' ' '\n' <<<"$uids" | sort -u | grep -c .)" -eq 3 ]
  grep -q '^kvm:x:[0-9]*:labforge-runner-1,labforge-runner-2,labforge-runner-3$' "$RS_ROOT/etc/group"
  run "$RS_SETUP" status --root "$RS_ROOT"
  [ "$status" -eq 0 ]
  [ "$(grep -c ' active ' <<<"$output")" -eq 3 ]
}

@test "uninstall removes what install added and keeps the caches unless --purge" {
  before=$(rs_snapshot)
  rs_install --count 2 --enable-nested
  [ "$status" -eq 0 ]
  RUNNER_TOKEN=$RS_TOKEN run "$RS_SETUP" uninstall --root "$RS_ROOT"
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx 'systemctl disable --now labforge-runner-build01-1.service' "$RS_RECORD/argv.log"
  grep -Eqx 'config.sh uid=[1-9][0-9]* token-env=present remove --unattended' "$RS_RECORD/argv.log"
  [[ $output == *"kept cache /var/cache/labforge-runner/build01-1 (--purge removes it)"* ]]
  # everything else is back as before, except the packages (kept on purpose)
  diff <(grep -v -e '^./var/cache/labforge-runner' -e '^./var/lib/dpkg/status ' <<<"$(rs_snapshot)") \
    <(grep -v -e '^./var/lib/dpkg/status ' <<<"$before")
  [ -d "$RS_ROOT/var/cache/labforge-runner/build01-2/packer" ]
  # --purge also removes the caches left behind
  run "$RS_SETUP" uninstall --root "$RS_ROOT" --purge
  [ "$status" -eq 0 ]
  diff <(grep -v '^./var/lib/dpkg/status ' <<<"$(rs_snapshot)") <(grep -v '^./var/lib/dpkg/status ' <<<"$before")
}

@test "uninstall of registered runners without a token fails before changing anything" {
  rs_install
  [ "$status" -eq 0 ]
  before=$(rs_snapshot)
  run "$RS_SETUP" uninstall --root "$RS_ROOT"
  [ "$status" -eq 2 ]
  [[ $output == *"token missing"* ]]
  [ "$(rs_snapshot)" == "$before" ]
  # --skip-register removes the runner locally and says it stays listed on GitHub
  run "$RS_SETUP" uninstall --root "$RS_ROOT" --skip-register
  [ "$status" -eq 0 ]
  [[ $output == *"stays listed (offline) on GitHub"* ]]
  [ ! -e "$RS_ROOT/opt/labforge-runner" ]
}

@test "status reports a stopped runner and exits 1" {
  rs_install
  [ "$status" -eq 0 ]
  "$SYSTEMCTL" stop labforge-runner-build01.service
  run "$RS_SETUP" status --root "$RS_ROOT"
  [ "$status" -eq 1 ]
  [[ $output == *"build01"*"labforge-runner"*"inactive"*"enabled"*"yes"* ]]
}

@test "runner group, ephemeral and extra labels reach config.sh" {
  rs_install --runner-group builders --ephemeral --labels big,prewarmed
  [ "$status" -eq 0 ]
  grep -Eqx 'config.sh uid=[0-9]+ token-env=present --unattended --url https://github.com/example/lab --name build01 --labels self-hosted,linux,x64,kvm,packer,big,prewarmed --work _work --replace --disableupdate --runnergroup builders --ephemeral' "$RS_RECORD/argv.log"
}

@test "--enable-nested writes the module option and reloads the module" {
  echo N >"$NESTED_PARAM_PATH"
  rs_install --enable-nested
  [ "$status" -eq 0 ]
  [[ $output == *"nested virtualization: disabled"*"--enable-nested"* ]]
  grep -qx 'options kvm_intel nested=1' "$RS_ROOT/etc/modprobe.d/labforge-kvm-nested.conf"
  grep -qx 'modprobe -r kvm_intel' "$RS_RECORD/argv.log"
  grep -qx 'modprobe kvm_intel' "$RS_RECORD/argv.log"
}

@test "packer comes from the distribution when HashiCorp's repository is unreachable" {
  rs_install --packer-source auto
  [ "$status" -eq 0 ]
  [[ $output == *"packer source: distribution package (apt.releases.hashicorp.com not reachable)"* ]]
  grep -q '^curl .*https://apt.releases.hashicorp.com/gpg' "$RS_RECORD/argv.log"
  [ ! -e "$RS_ROOT/etc/apt/sources.list.d/hashicorp.list" ]
  rs_install --packer-source hashicorp # packer is installed now: no source decision needed
  [ "$status" -eq 0 ]
}

@test "--packer-source hashicorp fails clearly when the repository is unreachable" {
  rs_install --packer-source hashicorp
  [ "$status" -eq 1 ]
  [[ $output == *"https://apt.releases.hashicorp.com/gpg is not reachable (use --packer-source distro"* ]]
}

@test "--skip-register prepares the host without downloading, registering or a service" {
  run "$RS_SETUP" install --root "$RS_ROOT" --skip-register --name build01 --packer-source distro
  [ "$status" -eq 0 ]
  grep -q '^kvm:x:[0-9]*:labforge-runner$' "$RS_ROOT/etc/group"
  [ -f "$RS_ROOT/opt/labforge-runner/build01/.env" ]
  [ ! -e "$RS_ROOT/opt/labforge-runner/build01/config.sh" ]
  [ ! -e "$RS_ROOT/etc/systemd/system/labforge-runner-build01.service" ]
  ! grep -q -e '^config.sh' -e '^systemctl' -e '^curl' "$RS_RECORD/argv.log"
}

@test "without udev the rule's group and mode are applied directly and restored by uninstall" {
  rm "$UDEV_CONTROL_PATH"
  rs_install
  [ "$status" -eq 0 ]
  [[ $output == *"chgrp kvm + chmod 0660 $KVM_DEVICE (udev is not running)"* ]]
  ! grep -q '^udevadm' "$RS_RECORD/argv.log"
  kvm_gid=$(awk -F: '$1 == "kvm" { print $3 }' "$RS_ROOT/etc/group")
  [ "$(stat -c '%a %g' "$KVM_DEVICE")" == "660 $kvm_gid" ]
  RUNNER_TOKEN=$RS_TOKEN run "$RS_SETUP" uninstall --root "$RS_ROOT"
  [ "$status" -eq 0 ]
  [ "$(stat -c '%a %u %g' "$KVM_DEVICE")" == "600 0 0" ]
}

@test "a user outside the kvm group cannot pass the KVM check" {
  # an existing user whose kvm membership is taken away after the check passed once
  rs_install --skip-register
  [ "$status" -eq 0 ]
  sed -i 's/^kvm:x:\([0-9]*\):.*/kvm:x:\1:/' "$RS_ROOT/etc/group"
  chmod 660 "$KVM_DEVICE"
  USERMOD=true run "$RS_SETUP" install --root "$RS_ROOT" --skip-register --name build01 --packer-source distro
  [ "$status" -eq 1 ]
  [[ $output == *"kvm access: labforge-runner cannot open $KVM_DEVICE read-write"* ]]
}

@test "an ephemeral runner is registered again by its service with a fresh token" {
  pat=PATTESTDOUBLEx9Y8w7V6u5
  printf '%s\n' "$pat" >"$RS_INPUTS/pat"
  chmod 600 "$RS_INPUTS/pat"
  rs_install --ephemeral --github-pat-file "$RS_INPUTS/pat" --runner-group builders
  echo "$output"
  [ "$status" -eq 0 ]
  unit=$RS_ROOT/etc/systemd/system/labforge-runner-build01.service
  grep -qx 'ExecStartPre=+/opt/labforge-runner/bin/labforge-reregister /etc/labforge-runner/runners/build01.conf' "$unit"
  [ "$(stat -c '%a %u' "$RS_ROOT/etc/labforge-runner/github-pat")" == "600 0" ]
  grep -qx 'registration_api=https://api.github.com/repos/example/lab' "$RS_ROOT/etc/labforge-runner/runners/build01.conf"
  # the job ran: the ephemeral runner deregistered itself; the service's ExecStartPre registers it again
  rm "$RS_ROOT/opt/labforge-runner/build01/.runner"
  LABFORGE_ROOT=$RS_ROOT LABFORGE_TEST_API_TOKEN=APITOKENFRESH42 run "$RS_ROOT/opt/labforge-runner/bin/labforge-reregister" \
    "$RS_ROOT/etc/labforge-runner/runners/build01.conf"
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx 'curl-double: authorization header received on stdin' "$RS_RECORD/argv.log"
  grep -q '^curl .* --config - -X POST .*https://api.github.com/repos/example/lab/actions/runners/registration-token$' "$RS_RECORD/argv.log"
  [ "$(grep -Ec '^config.sh uid=[1-9][0-9]* token-env=present --unattended --url https://github.com/example/lab --name build01 --labels self-hosted,linux,x64,kvm,packer --work _work --replace (--disableupdate --runnergroup builders --ephemeral|--ephemeral --disableupdate --runnergroup builders)$' "$RS_RECORD/argv.log")" -eq 2 ]
  fresh_sha=$(printf '%s' APITOKENFRESH42 | sha256sum | cut -d' ' -f1)
  grep -q "\"tokenSha256\":\"$fresh_sha\"" "$RS_ROOT/opt/labforge-runner/build01/.runner"
  # still registered: nothing to do
  LABFORGE_ROOT=$RS_ROOT run "$RS_ROOT/opt/labforge-runner/bin/labforge-reregister" "$RS_ROOT/etc/labforge-runner/runners/build01.conf"
  [ "$status" -eq 0 ]
  [[ $output == *"runner build01 is registered"* ]]
  # neither the long-lived token nor the fresh one in any argv, and the PAT only in its root-only file
  ! grep -q -e "$pat" -e APITOKENFRESH42 "$RS_RECORD/argv.log"
  leaks=$(grep -rl "$pat" "$RS_BASE" | grep -vx -e "$RS_INPUTS/pat" -e "$RS_ROOT/etc/labforge-runner/github-pat" || true)
  [ -z "$leaks" ]
  RUNNER_TOKEN=$RS_TOKEN run "$RS_SETUP" uninstall --root "$RS_ROOT"
  [ "$status" -eq 0 ]
  [ ! -e "$RS_ROOT/etc/labforge-runner" ] && [ ! -e "$RS_ROOT/opt/labforge-runner" ]
}

@test "--github-pat-file is only accepted with --ephemeral" {
  printf 'x\n' >"$RS_INPUTS/pat"
  rs_install --github-pat-file "$RS_INPUTS/pat"
  [ "$status" -eq 2 ]
  [[ $output == *"--github-pat-file: only used with --ephemeral"* ]]
}

@test "uninstall --dry-run lists the removals and changes nothing" {
  rs_install --count 2
  [ "$status" -eq 0 ]
  before=$(rs_snapshot)
  : >"$RS_RECORD/argv.log"
  RUNNER_TOKEN=$RS_TOKEN run "$RS_SETUP" uninstall --root "$RS_ROOT" --dry-run --purge
  echo "$output"
  [ "$status" -eq 0 ]
  for action in "would: stop and disable labforge-runner-build01-1.service" "would: deregister runner build01-2" \
    "would: remove /opt/labforge-runner/build01-2" "would: delete user labforge-runner-1" \
    "would: remove /var/cache/labforge-runner/build01-1" "would: remove /etc/udev/rules.d/99-labforge-kvm.rules" \
    "would: delete group kvm (created by install)"; do
    [[ $output == *"$action"* ]] || { echo "missing: $action"; return 1; }
  done
  [ "$(rs_snapshot)" == "$before" ]
  [ -z "$(mutating_commands)" ]
}

@test "install and uninstall need root; preflight does not" {
  run setpriv --reuid 65534 --regid 65534 --clear-groups "$RS_SETUP" install --root "$RS_ROOT" --skip-register
  [ "$status" -eq 1 ]
  [[ $output == *"install must run as root (sudo setup.sh ...)"* ]]
  run setpriv --reuid 65534 --regid 65534 --clear-groups "$RS_SETUP" preflight --root "$RS_ROOT"
  [ "$status" -eq 0 ]
}
