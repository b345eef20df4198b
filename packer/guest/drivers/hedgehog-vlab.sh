#!/usr/bin/env bash
# hedgehog-vlab: the hedgehog-lab driver of the Hedgehog appliance.
#
# The lab is Hedgehog's virtual lab (VLAB), run by hhfab, the Fabricator CLI.
# Written against hhfab v0.48.0 (githedgehog/fabricator tag v0.48.0, commit
# 4298cf17bd206c98ac50f2d72366e23ba2261460: cmd/hhfab/main.go, pkg/hhfab/
# cmdvlab.go, vlabconfig.go, vlabrunner.go, testing.go, cmdcache.go) and the
# VLAB documentation (githedgehog/docs commit 9cff1599d4a59500d52d7f3bb2b098dce0f975a5:
# docs/vlab/overview.md, docs/vlab/running.md). The documented flow is
#   hhfab init --dev  →  hhfab vlab gen  →  hhfab vlab up (long-running)
# and hhfab v0.48.0 takes --workdir/--cache-dir on each command (not before it).
# `vlab up` keeps the VMs alive and reuses VM disks that exist ("Using existing"
# in vlabrunner.go), so a resume is `vlab up` again on the same work directory,
# with --kill-stale for VMs a previous run left behind. `vlab wait-switches`
# waits (up to 30 minutes on its own) for the fabric and every switch to be
# ready; the driver bounds it.
#
# Usage: hedgehog-vlab.sh init|resume|ready|status|precache|vlab-up
#   init      hhfab init + hhfab vlab gen in a new work directory, then start
#             the service that runs `hhfab vlab up`
#   resume    start the service on the existing work directory and VM disks
#             (no init, no vlab gen)
#   ready     probe once: exit 0 when `hhfab vlab wait-switches` succeeds
#             within HHFAB_PROBE_TIMEOUT seconds; 1 not ready (yet); 2 the lab
#             failed (the service is not running: its log is printed) or the
#             probe cannot run
#   status    print a JSON object (service, readiness, VMs from vlab/config.yaml)
#   precache  build time: fetch everything `vlab up` downloads into the cache
#             (`hhfab precache --vlab` on a throw-away work directory); the lab
#             itself is not initialized
#   vlab-up   what hhfab-vlab.service runs: exec `hhfab vlab up`
# Settings (environment, or lab.conf through hedgehog-lab; the manifest's
# lab.settings and profile lab-settings become lab.conf lines):
#   HHFAB_BIN            hhfab binary (default $HEDGEHOG_LAB_ROOT/usr/local/bin/hhfab)
#   HHFAB_VERSION        the pinned version; init/resume/precache refuse another
#                        (`hhfab --version` must say "hhfab version $HHFAB_VERSION")
#   HHFAB_WORKDIR        work directory (default $HEDGEHOG_LAB_ROOT/var/lib/hedgehog-lab/hhfab)
#   HHFAB_CACHE_DIR      download cache (default $HEDGEHOG_LAB_ROOT/var/cache/hhfab)
#   HHFAB_INIT_ARGS      fabric options of `hhfab init` (default "--dev")
#   HHFAB_VLAB_GEN_ARGS  topology options of `hhfab vlab gen` (default: none, the
#                        default spine-leaf topology)
#   HHFAB_VLAB_UP_ARGS   extra options of `hhfab vlab up` (default: none)
#   HHFAB_SERVICE        the unit running `hhfab vlab up` (default hhfab-vlab.service)
#   HHFAB_SERVICE_LOG    its output (default $HEDGEHOG_LAB_ROOT/var/log/hhfab-vlab.log)
#   HHFAB_PROBE_TIMEOUT  seconds one wait-switches probe may take (default 60)
#   DOCKER_CONFIG        where hhfab finds a registry credential (config.json,
#                        docker's format; default $HEDGEHOG_LAB_ROOT/run/hedgehog-lab/registry,
#                        on tmpfs: it never reaches the disk image). Only needed
#                        while the cache lacks something.
# Arguments in *_ARGS settings are separated by white space (no quoting).
# Every hhfab command line is logged as "hhfab: <command line>".
# Exit codes: 0 ok (ready), 1 failed (not ready), 2 lab failed / usage error.
set -euo pipefail

ROOT="${HEDGEHOG_LAB_ROOT:-}"
# Run outside hedgehog-lab (the image build runs `precache` directly), read
# lab.conf the way the orchestrator does: KEY=VALUE taken literally, quotes
# around a value stripped, the environment wins.
CONF="${HEDGEHOG_LAB_CONFIG:-$ROOT/etc/hedgehog-lab/lab.conf}"
if [[ -z ${HEDGEHOG_LAB_CONFIG:-} && -f $CONF ]]; then
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*([A-Z][A-Z0-9_]*)=(.*)$ ]] || continue
    key="${BASH_REMATCH[1]}" value="${BASH_REMATCH[2]}"
    value="${value%\"}" value="${value#\"}" value="${value%\'}" value="${value#\'}"
    [[ -n ${!key+set} ]] || export "$key=$value"
  done <"$CONF"
fi
HHFAB="${HHFAB_BIN:-$ROOT/usr/local/bin/hhfab}"
PINNED="${HHFAB_VERSION:-}"
WORKDIR="${HHFAB_WORKDIR:-$ROOT/var/lib/hedgehog-lab/hhfab}"
CACHE_DIR="${HHFAB_CACHE_DIR:-$ROOT/var/cache/hhfab}"
SERVICE="${HHFAB_SERVICE:-hhfab-vlab.service}"
SERVICE_LOG="${HHFAB_SERVICE_LOG:-$ROOT/var/log/hhfab-vlab.log}"
PROBE_TIMEOUT="${HHFAB_PROBE_TIMEOUT:-60}"
export DOCKER_CONFIG="${DOCKER_CONFIG:-$ROOT/run/hedgehog-lab/registry}"
read -r -a INIT_ARGS <<<"${HHFAB_INIT_ARGS:---dev}"
read -r -a GEN_ARGS <<<"${HHFAB_VLAB_GEN_ARGS:-}"
read -r -a UP_ARGS <<<"${HHFAB_VLAB_UP_ARGS:-}"

say() { printf 'hedgehog-vlab: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ $PROBE_TIMEOUT =~ ^[1-9][0-9]*$ ]] || { say "HHFAB_PROBE_TIMEOUT '$PROBE_TIMEOUT' is not a positive whole number of seconds (fix it in lab.conf)"; exit 2; }

# hhfab [--exec] [--timeout SEC] [--quiet] ARGS...: the one way this driver
# runs hhfab. Logs the exact command line on stderr (never a credential: those
# come from DOCKER_CONFIG, not argv), then runs it (or execs it, or bounds it;
# --quiet discards hhfab's own output, not the logged line).
hhfab() {
  local mode="run" timeout="" quiet=0
  while [[ ${1:-} == --exec || ${1:-} == --timeout || ${1:-} == --quiet ]]; do
    case "$1" in
      --exec) mode="exec"; shift ;;
      --timeout) timeout="$2"; shift 2 ;;
      --quiet) quiet=1; shift ;;
    esac
  done
  local line
  line="$(printf ' %q' "$@")"
  printf 'hhfab:%s\n' "$line" >&2
  if [[ $mode == exec ]]; then exec "$HHFAB" "$@"; fi
  local -a run=("$HHFAB" "$@")
  if [[ -n $timeout ]]; then run=(timeout --kill-after=10 "$timeout" "${run[@]}"); fi
  if ((quiet)); then "${run[@]}" >/dev/null 2>&1; else "${run[@]}"; fi
}

# The flags every hhfab command of this driver takes first (flags of the
# command in v0.48.0, not of the app: `hhfab --workdir X init` is an error).
W=(--workdir "$WORKDIR" --cache-dir "$CACHE_DIR")

need_hhfab() {
  [[ -x $HHFAB ]] || die "hhfab not found at $HHFAB (install it in the image, or set HHFAB_BIN in lab.conf)"
  [[ -n $PINNED ]] || return 0
  local said
  said="$("$HHFAB" --version 2>/dev/null || true)"
  [[ $said == "hhfab version $PINNED" ]] ||
    die "hhfab at $HHFAB says '${said:-nothing}', but this appliance pins $PINNED (reinstall the pinned version, or fix HHFAB_VERSION in lab.conf)"
}

initialized() { [[ -f $WORKDIR/fab.yaml && -f $WORKDIR/include/vlab.generated.yaml ]]; }

start_service() {
  systemctl reset-failed "$SERVICE" 2>/dev/null || true
  systemctl start "$SERVICE"
  say "started $SERVICE (hhfab vlab up)"
}

cmd_init() {
  need_hhfab
  systemctl stop "$SERVICE" 2>/dev/null || true
  rm -rf "$WORKDIR"
  mkdir -p "$WORKDIR" "$CACHE_DIR"
  hhfab init "${W[@]}" "${INIT_ARGS[@]}"
  hhfab vlab gen "${W[@]}" "${GEN_ARGS[@]}"
  start_service
}

cmd_resume() {
  need_hhfab
  initialized || die "no initialized hhfab work directory at $WORKDIR (fab.yaml and include/vlab.generated.yaml); initialize the lab first"
  [[ -f $WORKDIR/vlab/config.yaml ]] || say "no VLAB VMs yet in $WORKDIR/vlab: vlab up creates them"
  start_service
}

cmd_vlab_up() {
  need_hhfab
  initialized || die "no initialized hhfab work directory at $WORKDIR; hedgehog-lab starts $SERVICE after initializing the lab"
  hhfab --exec vlab up "${W[@]}" --kill-stale "${UP_ARGS[@]}"
}

cmd_precache() {
  need_hhfab
  mkdir -p "$CACHE_DIR"
  local tmp rc=0
  tmp="$(mktemp -d "$CACHE_DIR/.precache-workdir.XXXXXX")"
  hhfab init --workdir "$tmp" --cache-dir "$CACHE_DIR" "${INIT_ARGS[@]}" || rc=$?
  if ((rc == 0)); then hhfab precache --workdir "$tmp" --cache-dir "$CACHE_DIR" --vlab || rc=$?; fi
  rm -rf "$tmp"
  ((rc == 0)) || die "hhfab precache failed (exit $rc); is a registry credential in $DOCKER_CONFIG/config.json?"
  say "cache ready in $CACHE_DIR"
}

service_state() {
  local s
  s="$(systemctl is-active "$SERVICE" 2>/dev/null || true)"
  printf '%s' "${s:-unknown}"
}

cmd_ready() {
  [[ -x $HHFAB ]] || { say "hhfab not found at $HHFAB"; exit 2; }
  initialized || return 1
  local state
  state="$(service_state)"
  case "$state" in
    active) ;;
    activating | reloading) return 1 ;;
    *)
      say "$SERVICE is $state: hhfab vlab up is not running"
      if [[ -f $SERVICE_LOG ]]; then tail -n 20 "$SERVICE_LOG" | sed 's/^/  /' >&2; fi
      exit 2
      ;;
  esac
  hhfab --timeout "$PROBE_TIMEOUT" --quiet vlab wait-switches "${W[@]}" || return 1
}

# VMs of the lab by type, from vlab/config.yaml (written by `vlab up`: vms:
# NAME: {type: control|switch|server|gateway|external}); JSON object.
vms_json() {
  local cfg="$WORKDIR/vlab/config.yaml"
  [[ -f $cfg ]] || { printf 'null'; return; }
  awk '/^[^ #]/ { top = $1 } top == "vms:" && /^  [^ ]+:$/ { name = $1; sub(":$", "", name) }
       top == "vms:" && /^    type: / { print $2 "\t" name }' "$cfg" |
    jq -R -s -c 'split("\n") | map(select(length > 0) | split("\t")) |
      reduce .[] as [$t, $n] ({control: [], switch: [], server: [], gateway: [], external: []}; .[$t] += [$n])'
}

cmd_status() {
  local state ready=false version disks=0 probe_timeout
  state="$(service_state)"
  version="$("$HHFAB" --version 2>/dev/null || true)"
  if [[ -d $WORKDIR/vlab/vms ]]; then disks="$(find "$WORKDIR/vlab/vms" -mindepth 2 -maxdepth 2 -name os.img | wc -l)"; fi
  probe_timeout="${HHFAB_STATUS_PROBE_TIMEOUT:-15}"
  if [[ $state == active ]] && (PROBE_TIMEOUT=$probe_timeout cmd_ready) 2>/dev/null; then ready=true; fi
  jq -n --arg service "$SERVICE" --arg state "$state" --argjson ready "$ready" \
    --arg workdir "$WORKDIR" --arg cache "$CACHE_DIR" --arg version "$version" --arg pinned "$PINNED" \
    --argjson initialized "$(initialized && echo true || echo false)" --argjson vms "$(vms_json)" \
    --argjson disks "$disks" --arg gen "${GEN_ARGS[*]}" --arg init "${INIT_ARGS[*]}" \
    '{driver: "hedgehog-vlab", service: $service, serviceState: $state, ready: $ready,
      hhfab: {version: (if $version == "" then null else ($version | sub("^hhfab version "; "")) end),
              pinned: (if $pinned == "" then null else $pinned end)},
      workdir: $workdir, cacheDir: $cache, initialized: $initialized,
      initArgs: $init, topologyArgs: $gen, vmDisks: $disks,
      controlNodes: ($vms.control // null), switches: ($vms.switch // null),
      servers: ($vms.server // null), gateways: ($vms.gateway // null)}'
}

case "${1:-}" in
  init) cmd_init ;;
  resume) cmd_resume ;;
  ready) cmd_ready ;;
  status) cmd_status ;;
  precache) cmd_precache ;;
  vlab-up) cmd_vlab_up ;;
  *)
    say "unknown action \"${1:-}\" (init, resume, ready, status, precache, vlab-up)"
    exit 2
    ;;
esac
