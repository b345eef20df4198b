#!/usr/bin/env bats
# runner-setup/hooks: the job-started / job-completed hooks stop this runner's stray QEMU (real
# qemu-system-x86_64 processes started here), empty its tmp directory and check free disk.

HOOKS=$(cd "$(dirname "$BATS_TEST_FILENAME")/../../runner-setup/hooks" && pwd)

setup() {
  TMP_BASE=$(mktemp -d /tmp/labforge-runner-hooks.XXXXXX)
  RUNNER_TMP=$TMP_BASE/runner-tmp
  mkdir -p "$RUNNER_TMP"
  : >"$RUNNER_TMP/.labforge-runner-tmp"
  NAME=hooktest-$$-$RANDOM
  QEMU_PIDS=()
}

teardown() {
  local pid
  for pid in "${QEMU_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${QEMU_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf -- "$TMP_BASE"
}

# start_qemu RUNNER_NAME: a real, idle QEMU (no machine, paused) as a job of that runner would leave it.
start_qemu() {
  LABFORGE_RUNNER_NAME=$1 qemu-system-x86_64 -machine none -nodefaults -display none -S -monitor none </dev/null >/dev/null 2>&1 &
  QEMU_PIDS+=($!)
  local i
  for ((i = 0; i < 50; i++)); do
    [[ $(cat "/proc/$!/comm" 2>/dev/null) == qemu-system-x86 ]] && return 0
    sleep 0.1
  done
  echo "qemu did not start" >&2
  return 1
}

hook() { # HOOK [ENV...]
  local hook=$1
  shift
  run env LABFORGE_RUNNER_NAME="$NAME" LABFORGE_RUNNER_TMP="$RUNNER_TMP" RUNNER_WORKSPACE="$TMP_BASE" "$@" bash "$HOOKS/$hook"
}

@test "job-started stops QEMU of this runner's earlier jobs and leaves other runners' QEMU alone" {
  start_qemu "$NAME"
  mine=${QEMU_PIDS[0]}
  start_qemu "$NAME-other"
  other=${QEMU_PIDS[1]}
  hook job-started.sh LABFORGE_MIN_FREE_GB=0
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *"stopping 1 stray QEMU process(es) of earlier jobs: $mine"* ]]
  wait "$mine" || true
  [ ! -d "/proc/$mine" ]
  [ -d "/proc/$other" ]
}

@test "job-completed stops this runner's QEMU too, and says so when there is none" {
  hook job-completed.sh
  [ "$status" -eq 0 ]
  [[ $output == *"no stray QEMU processes"* ]]
  start_qemu "$NAME"
  hook job-completed.sh
  [ "$status" -eq 0 ]
  wait "${QEMU_PIDS[0]}" || true
  [ ! -d "/proc/${QEMU_PIDS[0]}" ]
}

@test "stale overlays are removed from the runner tmp directory, the marker stays" {
  touch "$RUNNER_TMP/overlay-1234.qcow2"
  mkdir -p "$RUNNER_TMP/packer-build-5678/disk"
  touch "$RUNNER_TMP/packer-build-5678/disk/overlay.qcow2"
  hook job-started.sh LABFORGE_MIN_FREE_GB=0
  [ "$status" -eq 0 ]
  [[ $output == *"removing 2 leftover(s) of earlier jobs from $RUNNER_TMP"* ]]
  [ "$(ls -A "$RUNNER_TMP")" == .labforge-runner-tmp ]
}

@test "a directory without the runner marker is never emptied" {
  rm "$RUNNER_TMP/.labforge-runner-tmp"
  touch "$RUNNER_TMP/precious"
  hook job-completed.sh
  [ "$status" -eq 0 ]
  [[ $output == *"is not a runner tmp directory; not cleaning it"* ]]
  [ -f "$RUNNER_TMP/precious" ]
}

@test "job-started fails the job when free disk is below the minimum" {
  hook job-started.sh LABFORGE_MIN_FREE_GB=1000000
  [ "$status" -eq 1 ]
  [[ $output == *"::error title=labforge runner::only "*" GB free for $TMP_BASE (a build needs 1000000 GB)"* ]]
  hook job-started.sh LABFORGE_MIN_FREE_GB=1
  [ "$status" -eq 0 ]
  [[ $output == *" GB free for $TMP_BASE"* ]]
}

@test "the hooks refuse to run without a runner name" {
  run env -u LABFORGE_RUNNER_NAME bash "$HOOKS/job-completed.sh"
  [ "$status" -ne 0 ]
  [[ $output == *"LABFORGE_RUNNER_NAME is not set"* ]]
}
