#!/usr/bin/env bash
# test-lab: the hedgehog-lab driver of the tiny test guest.
#
# A stand-in for the Hedgehog VLAB that behaves like it where it matters for
# the orchestrator: init does real, measurable work (it creates N simulated
# switch disks from /dev/urandom and checksums them: tens of seconds under
# TCG), the lab runs as a real systemd service (test-lab.service), only disk
# state survives a shutdown, and resume is cheap (start the service again;
# it checks the disks against the manifest and reports ready).
#
# Usage: test-lab.sh init|resume|ready|status|agent
#   init    wipe and create the lab's disk state, then start test-lab.service
#   resume  start test-lab.service on the existing disk state
#   ready   probe once: exit 0 ready, 1 not (yet) ready
#   status  print a JSON object
#   agent   the service's main process (ExecStart of test-lab.service)
# Settings (environment, or lab.conf through hedgehog-lab):
#   TEST_LAB_SWITCHES  number of simulated switches (default 8)
#   TEST_LAB_DISK_MIB  size of each simulated switch disk in MiB (default 40)
#   TEST_LAB_DIR       disk state (default $HEDGEHOG_LAB_ROOT/var/lib/test-lab)
#   TEST_LAB_RUN_DIR   runtime state (default $HEDGEHOG_LAB_ROOT/run/test-lab)
#   TEST_LAB_SERVICE   the unit (default test-lab.service)
# Exit codes: 0 ok (ready), 1 failed (not ready), 2 usage error.
set -euo pipefail

ROOT="${HEDGEHOG_LAB_ROOT:-}"
LAB_DIR="${TEST_LAB_DIR:-$ROOT/var/lib/test-lab}"
RUN_DIR="${TEST_LAB_RUN_DIR:-$ROOT/run/test-lab}"
SERVICE="${TEST_LAB_SERVICE:-test-lab.service}"
SWITCHES="${TEST_LAB_SWITCHES:-8}"
DISK_MIB="${TEST_LAB_DISK_MIB:-40}"
MANIFEST="$LAB_DIR/lab.json"

say() { printf '%s\n' "$*"; }
die() { printf 'test-lab: %s\n' "$*" >&2; exit 1; }

[[ $SWITCHES =~ ^[1-9][0-9]*$ ]] || { printf 'test-lab: TEST_LAB_SWITCHES=%s is not a positive number\n' "$SWITCHES" >&2; exit 2; }
[[ $DISK_MIB =~ ^[1-9][0-9]*$ ]] || { printf 'test-lab: TEST_LAB_DISK_MIB=%s is not a positive number\n' "$DISK_MIB" >&2; exit 2; }

bump_counter() {
  local file="$LAB_DIR/counters/$1" n=0
  mkdir -p "$LAB_DIR/counters"
  [[ -f $file ]] && n="$(cat "$file")"
  printf '%s\n' "$((n + 1))" >"$file"
}

counter() {
  local file="$LAB_DIR/counters/$1"
  if [[ -f $file ]]; then cat "$file"; else printf '0\n'; fi
}

start_service() {
  systemctl reset-failed "$SERVICE" 2>/dev/null || true
  systemctl restart "$SERVICE"
}

cmd_init() {
  local start=$SECONDS i disk sum entries=()
  systemctl stop "$SERVICE" 2>/dev/null || true
  rm -rf "$LAB_DIR/switches" "$MANIFEST"
  mkdir -p "$LAB_DIR/switches"
  say "creating $SWITCHES simulated switch disks of $DISK_MIB MiB"
  for ((i = 1; i <= SWITCHES; i++)); do
    disk="$LAB_DIR/switches/switch-$i.img"
    head -c "$((DISK_MIB * 1024 * 1024))" /dev/urandom >"$disk"
    sum="$(sha256sum "$disk" | cut -d' ' -f1)"
    entries+=("$(jq -n --arg name "switch-$i" --arg sha "$sum" --argjson bytes "$((DISK_MIB * 1024 * 1024))" \
      '{name: $name, sha256: $sha, bytes: $bytes}')")
    say "switch-$i ready on disk ($((SECONDS - start)) s)"
  done
  printf '%s\n' "${entries[@]}" | jq -s --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    '{switches: ., initializedAt: $at}' >"$MANIFEST.tmp"
  mv "$MANIFEST.tmp" "$MANIFEST"
  sync
  bump_counter init
  start_service
  say "init done in $((SECONDS - start)) s"
}

cmd_resume() {
  [[ -f $MANIFEST ]] || die "no lab on disk ($MANIFEST missing); initialize it first"
  bump_counter resume
  start_service
  say "service $SERVICE started on the existing disk state"
}

# The service: check every disk against the manifest (sizes: cheap), then
# publish the runtime status and stay up like a lab daemon does.
cmd_agent() {
  [[ -f $MANIFEST ]] || die "no lab on disk ($MANIFEST missing)"
  local name bytes actual count=0
  while IFS=$'\t' read -r name bytes; do
    actual="$(stat -c %s "$LAB_DIR/switches/$name.img" 2>/dev/null || printf 'missing')"
    [[ $actual == "$bytes" ]] || die "$name: disk is $actual bytes, manifest says $bytes"
    count=$((count + 1))
  done < <(jq -r '.switches[] | [.name, (.bytes | tostring)] | @tsv' "$MANIFEST")
  mkdir -p "$RUN_DIR"
  jq -n --argjson switches "$count" --arg pid "$$" --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    '{ready: true, switches: $switches, pid: ($pid | tonumber), since: $at}' >"$RUN_DIR/status.json"
  say "test lab up: $count switches"
  exec sleep infinity
}

# Ready when the service is active and its runtime status matches the disk.
cmd_ready() {
  [[ -f $MANIFEST && -f $RUN_DIR/status.json ]] || return 1
  systemctl is-active --quiet "$SERVICE" || return 1
  local want have
  want="$(jq '.switches | length' "$MANIFEST")"
  have="$(jq 'if .ready then .switches else -1 end' "$RUN_DIR/status.json")"
  [[ $want == "$have" ]]
}

cmd_status() {
  local active ready=false manifest='null'
  active="$(systemctl is-active "$SERVICE" 2>/dev/null || true)"
  [[ -n $active ]] || active=unknown
  if cmd_ready 2>/dev/null; then ready=true; fi
  [[ -f $MANIFEST ]] && manifest="$(jq -c . "$MANIFEST")"
  jq -n --arg service "$SERVICE" --arg active "$active" --argjson ready "$ready" \
    --argjson manifest "$manifest" \
    --argjson inits "$(counter init)" --argjson resumes "$(counter resume)" \
    '{driver: "test-lab", service: $service, serviceState: $active, ready: $ready,
      switches: (if $manifest then ($manifest.switches | length) else 0 end),
      initializedAt: (if $manifest then $manifest.initializedAt else null end),
      initCount: $inits, resumeCount: $resumes}'
}

case "${1:-}" in
  init) cmd_init ;;
  resume) cmd_resume ;;
  ready) cmd_ready ;;
  status) cmd_status ;;
  agent) cmd_agent ;;
  *)
    printf 'test-lab: unknown action "%s" (init, resume, ready, status, agent)\n' "${1:-}" >&2
    exit 2
    ;;
esac
