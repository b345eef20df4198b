#!/usr/bin/env bats
# The hedgehog-lab orchestrator, as installed by packer/guest/install.sh, run
# against a temporary root with a FAKE driver (test/bats/fixtures/hedgehog-lab/
# fake-driver.sh; the real drivers need systemd). The real test-lab driver runs
# in the published demo OVAs booted by the workflow end-to-end test (test/e2e/workflows.test.ts).

setup() {
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  ROOT="$(mktemp -d)"
  "$REPO/packer/guest/install.sh" --root "$ROOT" --driver test-lab >/dev/null
  install -m 0755 "$BATS_TEST_DIRNAME/fixtures/hedgehog-lab/fake-driver.sh" \
    "$ROOT/usr/local/lib/hedgehog-lab/drivers/fake.sh"
  printf 'DRIVER=fake\nREADY_INTERVAL=0\nREADY_TIMEOUT=5\n' >"$ROOT/etc/hedgehog-lab/lab.conf"
  HL="$ROOT/usr/local/sbin/hedgehog-lab"
  export HEDGEHOG_LAB_ROOT="$ROOT"
  unset FAKE_INIT_FAIL FAKE_READY_AFTER FAKE_READY_NEVER FAKE_PROBE_BROKEN
  holder=""
}

teardown() {
  if [[ -n $holder ]]; then kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true; fi
  rm -rf "$ROOT"
}

calls() { cat "$ROOT/fake/calls"; }
state() { jq -r "$1" "$ROOT/var/lib/hedgehog-lab/last-run.json"; }

@test "standard first boot initializes, proves readiness and logs the ready line" {
  run "$HL" boot
  [ "$status" -eq 0 ]
  [[ $output =~ hedgehog-lab:\ ready\ build-type=standard\ mode=init\ seconds=[0-9]+\ uptime=[0-9]*\ driver=fake ]]
  [ "$(calls)" = "init mode=init build-type=standard" ]
  [ "$(jq -r .mode "$ROOT/var/lib/hedgehog-lab/initialized")" = init ]
  [ "$(state .status)" = ready ]
  grep -q 'hedgehog-lab: ready build-type=standard mode=init' "$ROOT/var/log/hedgehog-lab.log"
  # the orchestrator never writes the marker
  [ "$(cat "$ROOT/etc/hedgehog-lab/build-type")" = standard ]
}

@test "a missing marker means standard, with a warning" {
  rm "$ROOT/etc/hedgehog-lab/build-type"
  run "$HL" boot
  [ "$status" -eq 0 ]
  [[ $output == *"warning: build-type marker $ROOT/etc/hedgehog-lab/build-type is missing; assuming standard"* ]]
  [[ $output == *"ready build-type=standard mode=init"* ]]
}

@test "an unknown marker means standard, with a warning naming the value" {
  echo gold >"$ROOT/etc/hedgehog-lab/build-type"
  run "$HL" boot
  [ "$status" -eq 0 ]
  [[ $output == *"says 'gold', which is not standard or prewarmed; assuming standard"* ]]
  [[ $output == *"ready build-type=standard mode=init"* ]]
}

@test "a pre-warmed image (initialized at build time) only resumes" {
  run "$HL" build-init
  [ "$status" -eq 0 ]
  [[ $output == *"ready build-type=standard mode=build-init"* ]]
  echo prewarmed >"$ROOT/etc/hedgehog-lab/build-type" # the warm stage writes it, after readiness
  rm "$ROOT/fake/running" "$ROOT/fake/calls"           # a shutdown: only disk state survives
  run "$HL" boot
  [ "$status" -eq 0 ]
  [[ $output == *"ready build-type=prewarmed mode=resume"* ]]
  [ "$(calls)" = "resume mode=resume build-type=prewarmed" ]
  [ "$(jq -r .mode "$ROOT/var/lib/hedgehog-lab/initialized")" = build-init ]
}

@test "a prewarmed marker on a lab that was never initialized falls back to a full init" {
  echo prewarmed >"$ROOT/etc/hedgehog-lab/build-type"
  run "$HL" boot
  [ "$status" -eq 0 ]
  [[ $output == *"marker says prewarmed but the lab was never initialized"* ]]
  [[ $output == *"ready build-type=prewarmed mode=init"* ]]
}

@test "a re-run after success resumes instead of initializing again" {
  "$HL" boot 2>/dev/null
  run "$HL" boot
  [ "$status" -eq 0 ]
  [[ $output == *"mode=resume"* ]]
  [ "$(grep -c '^init' "$ROOT/fake/calls")" -eq 1 ]
  run "$HL" build-init
  [ "$status" -eq 0 ]
  [[ $output == *"already initialized"* ]]
  [ "$(grep -c '^init' "$ROOT/fake/calls")" -eq 1 ]
  run "$HL" build-init --force
  [ "$status" -eq 0 ]
  [ "$(grep -c '^init' "$ROOT/fake/calls")" -eq 2 ]
}

@test "a held lock makes a second run exit 3 without touching the lab" {
  mkdir -p "$ROOT/run"
  # The holder execs into sleep, so its PID is the lock holder's; no fd of bats is kept open.
  (exec 8>"$ROOT/run/hedgehog-lab.lock" && flock 8 && exec sleep 60) >/dev/null 2>&1 3>&- &
  holder=$!
  for _ in $(seq 50); do flock -n "$ROOT/run/hedgehog-lab.lock" true || break; sleep 0.1; done
  run "$HL" boot
  [ "$status" -eq 3 ]
  [[ $output == *"another hedgehog-lab run holds"* ]]
  [ ! -e "$ROOT/fake/calls" ]
  run "$HL" build-init --lock-timeout 1
  [ "$status" -eq 3 ]
}

@test "an init failure leaves a clear failed state and no initialized stamp; a re-run retries" {
  FAKE_INIT_FAIL=1 run "$HL" boot
  [ "$status" -eq 1 ]
  [[ $output == *"[fake init] fake init exploded"* ]]
  [[ $output == *"failed build-type=standard mode=init phase=init exit=1"* ]]
  [ ! -e "$ROOT/var/lib/hedgehog-lab/initialized" ]
  [ "$(state .status)" = failed ]
  [ "$(state .phase)" = init ]
  [ "$(state .exitCode)" = 1 ]
  [[ $(state .error) == *"driver fake init failed"* ]]
  run "$HL" status --json
  [ "$status" -eq 0 ]
  [ "$(jq -r .state <<<"$output")" = failed ]
  run "$HL" boot
  [ "$status" -eq 0 ]
  [[ $output == *"mode=init"* ]]
  [ -f "$ROOT/var/lib/hedgehog-lab/initialized" ]
}

@test "readiness is polled, not slept: ready after a few probes" {
  FAKE_READY_AFTER=3 run "$HL" boot
  [ "$status" -eq 0 ]
  [ "$(cat "$ROOT/fake/probes")" -eq 4 ]
}

@test "a lab that never gets ready fails with exit 4 after the timeout" {
  FAKE_READY_NEVER=1 run "$HL" boot --ready-timeout 1
  [ "$status" -eq 4 ]
  [[ $output == *"phase=ready exit=4 reason=lab not ready after 1 s"* ]]
  [ ! -e "$ROOT/var/lib/hedgehog-lab/initialized" ]
  [ "$(state .phase)" = ready ]
}

@test "a broken readiness probe fails at once with exit 1" {
  FAKE_PROBE_BROKEN=1 run "$HL" boot
  [ "$status" -eq 1 ]
  [[ $output == *"readiness probe failed (exit 7)"* ]]
}

@test "resume on a lab that was never initialized exits 5" {
  run "$HL" resume
  [ "$status" -eq 5 ]
  [[ $output == *"never initialized"* ]]
}

@test "ready probes once: exit 4 when not ready, 0 when ready" {
  run "$HL" ready
  [ "$status" -eq 4 ]
  [ "$output" = "not ready" ]
  "$HL" boot 2>/dev/null
  run "$HL" ready
  [ "$status" -eq 0 ]
  [ "$output" = "ready" ]
}

@test "status --json reports the marker, state, stamp and the driver's status" {
  run "$HL" status --json
  [ "$status" -eq 0 ]
  [ "$(jq -r .state <<<"$output")" = new ]
  [ "$(jq -r .buildType <<<"$output")" = standard ]
  "$HL" boot 2>/dev/null
  run "$HL" status --json
  [ "$(jq -r '.state, .initialized.mode, .lastRun.mode, .driverStatus.driver' <<<"$output" | tr '\n' ' ')" = "ready init init fake " ]
  run "$HL" status
  [ "$status" -eq 0 ]
  [[ $output == *"state:       ready"* ]]
}

@test "bad input exits 2 with a message saying what to do" {
  run "$HL" frobnicate
  [ "$status" -eq 2 ]
  [[ $output == *"unknown command 'frobnicate'"* ]]
  run "$HL" boot --lock-timeout soon
  [ "$status" -eq 2 ]
  [[ $output == *"--lock-timeout: 'soon' is not a whole number"* ]]
  HEDGEHOG_LAB_DRIVER=nosuch run "$HL" boot
  [ "$status" -eq 2 ]
  [[ $output == *"driver 'nosuch' not found at $ROOT/usr/local/lib/hedgehog-lab/drivers/nosuch.sh"* ]]
  echo "this is not a setting" >>"$ROOT/etc/hedgehog-lab/lab.conf"
  run "$HL" boot
  [ "$status" -eq 2 ]
  [[ $output == *"lab.conf line 4: expected KEY=VALUE"* ]]
}

@test "install.sh enables the units and writes the marker; refuses bad input" {
  [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/hedgehog-lab.service" ]
  [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/hedgehog-lab-hostkeys.service" ]
  [ "$(cat "$ROOT/etc/hedgehog-lab/build-type")" = standard ]
  run "$REPO/packer/guest/install.sh" --root "$ROOT" --build-type gold
  [ "$status" -eq 2 ]
  [[ $output == *"'gold' is not standard or prewarmed"* ]]
}

@test "seal.sh empties machine-id, removes host keys, cloud-init state and build keys" {
  mkdir -p "$ROOT/etc/cloud/cloud.cfg.d" && echo "ssh_authorized_keys: [k]" >"$ROOT/etc/cloud/cloud.cfg.d/99-installer.cfg"
  mkdir -p "$ROOT/etc/ssh" "$ROOT/var/lib/dbus" "$ROOT/var/lib/cloud/instances/i-1" "$ROOT/home/packer/.ssh" "$ROOT/home/lab/.ssh" "$ROOT/var/log/journal/abc"
  printf '0123456789abcdef0123456789abcdef\n' >"$ROOT/etc/machine-id"
  cp "$ROOT/etc/machine-id" "$ROOT/var/lib/dbus/machine-id"
  touch "$ROOT/etc/ssh/ssh_host_ed25519_key" "$ROOT/etc/ssh/ssh_host_ed25519_key.pub" "$ROOT/etc/ssh/sshd_config"
  echo key >"$ROOT/home/packer/.ssh/authorized_keys"
  echo key >"$ROOT/home/lab/.ssh/authorized_keys"
  echo boot-log >"$ROOT/var/log/syslog"
  echo "hedgehog-lab: ready" >"$ROOT/var/log/hedgehog-lab.log"
  printf 'root:x:0:0::/root:/bin/bash\npacker:x:1000:1000::/home/packer:/bin/bash\nlab:x:1001:1001::/home/lab:/bin/bash\n' >"$ROOT/etc/passwd"
  run "$REPO/packer/guest/seal.sh" --root "$ROOT" --remove-authorized-keys packer
  [ "$status" -eq 0 ]
  [ -f "$ROOT/etc/machine-id" ] && [ ! -s "$ROOT/etc/machine-id" ]
  [ "$(readlink "$ROOT/var/lib/dbus/machine-id")" = /etc/machine-id ]
  [ ! -e "$ROOT/etc/ssh/ssh_host_ed25519_key" ] && [ -e "$ROOT/etc/ssh/sshd_config" ]
  [ ! -e "$ROOT/var/lib/cloud/instances" ] && [ ! -e "$ROOT/etc/cloud/cloud.cfg.d/99-installer.cfg" ]
  [ ! -e "$ROOT/home/packer/.ssh/authorized_keys" ] && [ -e "$ROOT/home/lab/.ssh/authorized_keys" ]
  [ ! -e "$ROOT/var/log/journal/abc" ] && [ ! -s "$ROOT/var/log/syslog" ]
  [ -s "$ROOT/var/log/hedgehog-lab.log" ]
  run "$REPO/packer/guest/seal.sh" --root "$ROOT" --remove-authorized-keys nobody-here
  [ "$status" -eq 2 ]
  [[ $output == *"no user 'nobody-here'"* ]]
}

@test "seal.sh --remove-all-authorized-keys removes every user's keys, root's too, never through a symlink" {
  printf 'root:x:0:0::/root:/bin/bash\nlabforge:x:1000:1000::/home/labforge:/bin/bash\nlab:x:1001:1001::/home/lab:/bin/bash\nsvc:x:998:998::/var/lib/svc:/usr/sbin/nologin\n' >"$ROOT/etc/passwd"
  mkdir -p "$ROOT/root/.ssh" "$ROOT/home/labforge/.ssh" "$ROOT/home/lab/.ssh" "$ROOT/var/lib/svc/.ssh" "$ROOT/home/gone/.ssh"
  for h in root home/labforge home/lab var/lib/svc home/gone; do
    echo key >"$ROOT/$h/.ssh/authorized_keys"
    echo key >"$ROOT/$h/.ssh/authorized_keys2"
  done
  echo keep >"$ROOT/home/lab/.ssh/known_hosts"
  # a key file that is a symlink is removed itself, its target is kept
  OUTSIDE="$(mktemp -d)"
  echo precious >"$OUTSIDE/target"
  rm "$ROOT/home/labforge/.ssh/authorized_keys2"
  ln -s "$OUTSIDE/target" "$ROOT/home/labforge/.ssh/authorized_keys2"
  run "$REPO/packer/guest/seal.sh" --root "$ROOT" --remove-all-authorized-keys
  [ "$status" -eq 0 ]
  [ -z "$(find "$ROOT" -name 'authorized_keys*')" ]
  [ -e "$ROOT/home/lab/.ssh/known_hosts" ]
  [ "$(cat "$OUTSIDE/target")" = precious ]
  # a symlinked .ssh is refused (deleting through it could leave the tree)
  echo key >"$OUTSIDE/authorized_keys"
  rm -rf "$ROOT/home/lab/.ssh"
  ln -s "$OUTSIDE" "$ROOT/home/lab/.ssh"
  run "$REPO/packer/guest/seal.sh" --root "$ROOT" --remove-all-authorized-keys
  [ "$status" -eq 1 ]
  [[ $output == *"refusing to remove authorized keys through the symlink"* ]]
  [ -e "$OUTSIDE/authorized_keys" ]
  rm -rf "$OUTSIDE"
}

@test "seal.sh removes all of cloud-init's state, seed and logs" {
  mkdir -p "$ROOT/var/lib/cloud/seed/nocloud" "$ROOT/var/lib/cloud/instances/x" "$ROOT/var/lib/cloud/data" "$ROOT/var/log"
  echo 'ssh_authorized_keys: [k]' >"$ROOT/var/lib/cloud/seed/nocloud/user-data"
  ln -s /var/lib/cloud/instances/x "$ROOT/var/lib/cloud/instance"
  echo log >"$ROOT/var/log/cloud-init.log"
  echo log >"$ROOT/var/log/cloud-init-output.log"
  printf 'root:x:0:0::/root:/bin/bash\n' >"$ROOT/etc/passwd"
  run "$REPO/packer/guest/seal.sh" --root "$ROOT"
  [ "$status" -eq 0 ]
  [ -d "$ROOT/var/lib/cloud" ]
  [ -z "$(ls -A "$ROOT/var/lib/cloud")" ]
  [ ! -e "$ROOT/var/log/cloud-init.log" ] && [ ! -e "$ROOT/var/log/cloud-init-output.log" ]
}

@test "every appliance and guest script is shellcheck-clean" {
  run shellcheck -x "$REPO"/packer/guest/hedgehog-lab "$REPO"/packer/guest/*.sh "$REPO"/packer/guest/drivers/*.sh \
    "$REPO"/test/bats/fixtures/hedgehog-lab/*.sh "$REPO"/packer/hedgehog-lab/*.sh "$REPO"/packer/demo-lab/*.sh
  [ "$status" -eq 0 ]
}

@test "a run stopped by a signal records failed, not running" {
  FAKE_READY_NEVER=1 "$HL" boot --ready-timeout 60 >/dev/null 2>&1 3>&- &
  pid=$!
  for _ in $(seq 100); do
    [[ -f $ROOT/var/lib/hedgehog-lab/last-run.json && $(state .phase) == ready ]] && break
    sleep 0.1
  done
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 1 ]
  [ "$(state .status)" = failed ]
  [ "$(state .error)" = "interrupted by a signal" ]
  [ ! -e "$ROOT/var/lib/hedgehog-lab/initialized" ]
}
