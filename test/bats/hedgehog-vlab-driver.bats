#!/usr/bin/env bats
# The hedgehog-vlab driver (packer/guest/drivers/hedgehog-vlab.sh) under the
# real orchestrator, installed by install.sh into a temporary root, against
# two TEST DOUBLES (nothing real can run here: hhfab needs KVM, GHCR
# credentials and tens of GiB; systemd cannot run units inside a temporary
# root): test/support/hhfab-double/hhfab, a strict double of hhfab v0.48.0
# written from its CLI definitions, and test/support/systemd-double/systemctl,
# which runs packer/guest/systemd/hhfab-vlab.service the way systemd would
# (its ExecStart= line, Environment=, EnvironmentFile=lab.conf).

setup() {
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  ROOT="$(mktemp -d)"
  "$REPO/packer/guest/install.sh" --root "$ROOT" --driver hedgehog-vlab >/dev/null
  install -D -m 0755 "$REPO/test/support/hhfab-double/hhfab" "$ROOT/usr/local/bin/hhfab"
  DD="$ROOT/double"
  mkdir -p "$DD"
  W="$ROOT/var/lib/hedgehog-lab/hhfab"
  C="$ROOT/var/cache/hhfab"
  REG="$ROOT/run/hedgehog-lab/registry"
  cat >"$ROOT/etc/hedgehog-lab/lab.conf" <<EOF
DRIVER=hedgehog-vlab
READY_INTERVAL=1
READY_TIMEOUT=40
HHFAB_VERSION=v0.48.0
HHFAB_BIN=$ROOT/usr/local/bin/hhfab
HHFAB_WORKDIR=$W
HHFAB_CACHE_DIR=$C
HHFAB_SERVICE_LOG=$ROOT/var/log/hhfab-vlab.log
DOCKER_CONFIG=$REG
HHFAB_PROBE_TIMEOUT=5
HHFAB_INIT_ARGS=--dev
HHFAB_VLAB_GEN_ARGS=--mesh-links-count 2 --eslag-leaf-groups 2
HHFAB_DOUBLE_DIR=$DD
HHFAB_DOUBLE_READY_AFTER=2
EOF
  HL="$ROOT/usr/local/sbin/hedgehog-lab"
  DRV="$ROOT/usr/local/lib/hedgehog-lab/drivers/hedgehog-vlab.sh"
  export HEDGEHOG_LAB_ROOT="$ROOT" SYSTEMCTL_DOUBLE_ROOT="$ROOT" HHFAB_DOUBLE_DIR="$DD"
  export PATH="$REPO/test/support/systemd-double:$PATH"
}

teardown() {
  systemctl stop hhfab-vlab.service 2>/dev/null || true
  local pid
  pid="$(cat "$ROOT/run/systemctl-double/hhfab-vlab.service.pid" 2>/dev/null || true)"
  if [[ -n $pid ]]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  rm -rf "$ROOT"
}

credential() { # a registry credential in docker's config format, where the driver points DOCKER_CONFIG
  mkdir -p "$REG"
  printf '{"auths":{"ghcr.io":{"auth":"%s"}}}\n' "$(printf 'attendee:ghp_TESTONLY' | base64)" >"$REG/config.json"
}
calls() { cat "$DD/calls"; }
state() { jq -r "$1" "$ROOT/var/lib/hedgehog-lab/last-run.json"; }

@test "init → ready → status: hhfab init --dev, vlab gen with the topology, vlab up as the service, wait-switches" {
  credential
  run "$HL" boot
  [ "$status" -eq 0 ]
  [[ $output == *"ready build-type=standard mode=init"* ]]
  # the exact command lines, in order, as the double received them
  calls | grep -v -e ' --version$' -e 'wait-switches' >"$BATS_TEST_TMPDIR/calls"
  diff - "$BATS_TEST_TMPDIR/calls" <<EOF
hhfab init --workdir $W --cache-dir $C --dev
hhfab vlab gen --workdir $W --cache-dir $C --mesh-links-count 2 --eslag-leaf-groups 2
hhfab vlab up --workdir $W --cache-dir $C --kill-stale
EOF
  calls | grep -qx "hhfab vlab wait-switches --workdir $W --cache-dir $C"
  # every hhfab command line is logged
  grep -q "hhfab: init --workdir $W --cache-dir $C --dev" "$ROOT/var/log/hedgehog-lab.log"
  grep -q "hhfab: vlab up --workdir $W --cache-dir $C --kill-stale" "$ROOT/var/log/hhfab-vlab.log"
  [ -f "$W/fab.yaml" ] && [ -f "$W/include/vlab.generated.yaml" ]
  run "$HL" status --json
  [ "$status" -eq 0 ]
  d="$(jq -c .driverStatus <<<"$output")"
  [ "$(jq -r .ready <<<"$d")" = true ]
  [ "$(jq -r .serviceState <<<"$d")" = active ]
  [ "$(jq -r .hhfab.version <<<"$d")" = v0.48.0 ]
  [ "$(jq -c .controlNodes <<<"$d")" = '["control-1"]' ]
  [ "$(jq -c .switches <<<"$d")" = '["leaf-01","leaf-02"]' ]
  [ "$(jq -r '.servers | length' <<<"$d")" -eq 4 ]
  [ "$(jq -r .vmDisks <<<"$d")" -eq 7 ]
  # the readiness probe logs its command line too (the orchestrator keeps it for a failed probe)
  run "$DRV" ready
  [ "$status" -eq 0 ]
  [[ $output == *"hhfab: vlab wait-switches --workdir $W --cache-dir $C"* ]]
}

@test "a second boot resumes: vlab up again on the existing VM disks, no init, no vlab gen" {
  credential
  "$HL" boot 2>/dev/null
  systemctl stop hhfab-vlab.service # the shutdown: only the disks survive
  : >"$DD/calls"
  run "$HL" boot
  [ "$status" -eq 0 ]
  [[ $output == *"ready build-type=standard mode=resume"* ]]
  run grep -E 'hhfab (init|vlab gen)' "$DD/calls"
  [ "$status" -eq 1 ]
  calls | grep -qx "hhfab vlab up --workdir $W --cache-dir $C --kill-stale"
  [ "$(jq -r .vmsReused "$DD/vlab-up.json")" -eq 7 ]
  [ "$(jq -r .vmsCreated "$DD/vlab-up.json")" -eq 0 ]
  grep -q 'Using existing vm=control-1' "$ROOT/var/log/hhfab-vlab.log"
}

@test "a failing vlab up leaves the orchestrator's failed state, with hhfab's error as evidence" {
  credential
  echo HHFAB_DOUBLE_FAIL=vlab-up >>"$ROOT/etc/hedgehog-lab/lab.conf"
  run "$HL" boot
  [ "$status" -eq 1 ]
  [[ $output == *"failed build-type=standard mode=init phase=ready exit=1"* ]]
  [ "$(state .status)" = failed ]
  [ "$(state .phase)" = ready ]
  [ ! -f "$ROOT/var/lib/hedgehog-lab/initialized" ]
  grep -q 'hhfab-vlab.service is failed: hhfab vlab up is not running' "$ROOT/var/log/hedgehog-lab.log"
  grep -q 'running VLAB: double: injected failure' "$ROOT/var/log/hedgehog-lab.log"
}

@test "the unit's ExecStart runs the driver, whose vlab up command line the double parses strictly" {
  credential
  run "$HL" boot
  [ "$status" -eq 0 ]
  [ "$(cat "$ROOT/run/systemctl-double/hhfab-vlab.service.cmdline")" = "$ROOT/usr/local/lib/hedgehog-lab/drivers/hedgehog-vlab.sh vlab-up " ]
  # an option hhfab v0.48.0 does not have (a preset, as the old driver passed to init) fails the service, named in the evidence
  systemctl stop hhfab-vlab.service
  echo 'HHFAB_VLAB_UP_ARGS=--controls-restricted=false --preset vlab' >>"$ROOT/etc/hedgehog-lab/lab.conf"
  run "$HL" resume
  [ "$status" -eq 1 ]
  calls | grep -qx "hhfab vlab up --workdir $W --cache-dir $C --kill-stale --controls-restricted=false --preset vlab"
  grep -q 'flag provided but not defined: -preset' "$ROOT/var/log/hedgehog-lab.log"
}

@test "a standard first boot needs no registry credential once the build precached; without either it fails" {
  credential
  run "$DRV" precache
  [ "$status" -eq 0 ]
  [[ $output == *"hhfab: precache --workdir "*" --cache-dir $C --vlab"* ]]
  [ "$(wc -l <"$DD/downloads")" -eq 8 ]
  [ ! -e "$W" ] # the build fills the cache; it does not initialize the lab
  rm -rf "$REG" # the seal (and a reboot: /run is tmpfs) leave no credential
  run "$HL" boot
  [ "$status" -eq 0 ]
  [ "$(wc -l <"$DD/downloads")" -eq 8 ] # nothing downloaded at first boot

  systemctl stop hhfab-vlab.service
  rm -rf "$C" "$ROOT/var/lib/hedgehog-lab/initialized" "$ROOT/var/lib/hedgehog-lab/last-run.json"
  run "$HL" boot
  [ "$status" -eq 1 ]
  grep -q '401: unauthorized: authentication required' "$ROOT/var/log/hedgehog-lab.log"
}

@test "precache without a credential fails with one line saying where the credential goes" {
  run "$DRV" precache
  [ "$status" -eq 1 ]
  [[ $output == *"hhfab precache failed (exit 1); is a registry credential in $REG/config.json?"* ]]
  [ -z "$(find "$C" -name '.precache-workdir.*')" ] # the throw-away work directory is gone
}

@test "readiness is bounded: a wait-switches that does not finish in time is 'not ready', not a hang" {
  credential
  sed -i 's/^HHFAB_DOUBLE_READY_AFTER=.*/HHFAB_DOUBLE_READY_AFTER=300/; s/^HHFAB_PROBE_TIMEOUT=.*/HHFAB_PROBE_TIMEOUT=1/; s/^READY_TIMEOUT=.*/READY_TIMEOUT=3/' "$ROOT/etc/hedgehog-lab/lab.conf"
  start=$SECONDS
  run "$HL" boot
  [ "$status" -eq 4 ]
  [[ $output == *"lab not ready after 3 s"* ]]
  ((SECONDS - start < 30))
}

@test "another hhfab than the pinned version is refused before anything runs" {
  sed -i 's/^HHFAB_VERSION=.*/HHFAB_VERSION=v0.47.5/' "$ROOT/etc/hedgehog-lab/lab.conf"
  run "$HL" boot
  [ "$status" -eq 1 ]
  grep -q "says 'hhfab version v0.48.0', but this appliance pins v0.47.5" "$ROOT/var/log/hedgehog-lab.log"
  run grep -c . "$DD/calls"
  [ "$output" -eq 1 ] # only `hhfab --version`
}

@test "resume on a work directory that was never initialized fails and says so" {
  run "$DRV" resume
  [ "$status" -eq 1 ]
  [[ $output == *"no initialized hhfab work directory at $W"* ]]
}

@test "the double is strict: command lines hhfab v0.48.0 rejects fail the way it fails" {
  H="$ROOT/usr/local/bin/hhfab"
  run "$H" init --dev -p vlab # the old driver's preset
  [ "$status" -eq 1 ]
  [[ $output == *"Incorrect Usage: flag provided but not defined: -p"* ]]
  run "$H" --workdir "$W" init --dev # global flags belong to the command
  [ "$status" -eq 1 ]
  run "$H" frobnicate
  [ "$status" -eq 3 ]
  [[ $output == *"No help topic for 'frobnicate'"* ]]
  run "$H" vlab gen --workdir "$W" # no fab.yaml yet
  [ "$status" -eq 1 ]
  "$H" init --workdir "$W" --dev 2>/dev/null
  run "$H" init --workdir "$W" --dev # fab.yaml exists, no --force
  [ "$status" -eq 1 ]
  [[ $output == *'config "fab.yaml": already exists'* ]]
  run "$H" vlab gen --workdir "$W" --mesh-links-count 2 --spines-count 2
  [ "$status" -eq 1 ]
  [[ $output == *"spines not supported"* ]]
  run "$H" vlab gen --workdir "$W" --eslag-leaf-groups 5
  [ "$status" -eq 1 ]
  run "$H" vlab wait-switches --workdir "$W" # no VLAB yet
  [ "$status" -eq 1 ]
  [[ $output == *"VLAB directory does not exist"* ]]
  [ "$(grep -c . "$DD/calls")" -eq 9 ] # every call recorded
}
