#!/usr/bin/env bash
# hedgehog-vlab: the hedgehog-lab driver of the real appliance.
#
# The lab is Hedgehog's virtual lab: `hhfab vlab up` runs the control node,
# switch and server VMs, as the long-running hhfab-vlab.service. Only disk
# state survives a shutdown, so a pre-warmed image resumes by starting the
# service again on the existing VM disks (hhfab reuses them; it does not
# reinstall unless asked to).
#
# Usage: hedgehog-vlab.sh init|resume|ready|status
#   init    hhfab init + hhfab build in the work directory, then start the service
#   resume  start the service on the existing work directory
#   ready   probe once: exit 0 when the switches are ready
#           (`hhfab vlab wait-switches`, bounded) and, if a k3d cluster is
#           configured, all its nodes are Ready; exit 1 otherwise
#   status  print a JSON object
# Settings (environment, or lab.conf through hedgehog-lab):
#   HHFAB_BIN             hhfab binary (default /usr/local/bin/hhfab)
#   HHFAB_WORKDIR         work directory (default $HEDGEHOG_LAB_ROOT/var/lib/hedgehog-lab/hhfab)
#   HHFAB_INIT_ARGS       arguments of `hhfab init` (default "--dev -p vlab")
#   HHFAB_SERVICE         the unit running `hhfab vlab up` (default hhfab-vlab.service)
#   HHFAB_PROBE_TIMEOUT   seconds one wait-switches probe may take (default 60)
#   K3D_CLUSTER           if set, also require `kubectl --context k3d-$K3D_CLUSTER` nodes Ready
# Exit codes: 0 ok (ready), 1 failed (not ready), 2 usage error.
set -euo pipefail

ROOT="${HEDGEHOG_LAB_ROOT:-}"
HHFAB="${HHFAB_BIN:-/usr/local/bin/hhfab}"
WORKDIR="${HHFAB_WORKDIR:-$ROOT/var/lib/hedgehog-lab/hhfab}"
INIT_ARGS="${HHFAB_INIT_ARGS:---dev -p vlab}"
SERVICE="${HHFAB_SERVICE:-hhfab-vlab.service}"
PROBE_TIMEOUT="${HHFAB_PROBE_TIMEOUT:-60}"
K3D_CLUSTER="${K3D_CLUSTER:-}"

die() { printf 'hedgehog-vlab: %s\n' "$*" >&2; exit 1; }

need_hhfab() {
  [[ -x $HHFAB ]] || die "hhfab not found at $HHFAB (install it in the image, or set HHFAB_BIN in lab.conf)"
}

hhfab_in_workdir() { (cd "$WORKDIR" && "$HHFAB" "$@"); }

cmd_init() {
  need_hhfab
  systemctl stop "$SERVICE" 2>/dev/null || true
  rm -rf "$WORKDIR"
  mkdir -p "$WORKDIR"
  local -a init_args
  read -r -a init_args <<<"$INIT_ARGS"
  printf 'hhfab init %s\n' "$INIT_ARGS"
  hhfab_in_workdir init "${init_args[@]}"
  printf 'hhfab build\n'
  hhfab_in_workdir build
  systemctl reset-failed "$SERVICE" 2>/dev/null || true
  systemctl start "$SERVICE"
  printf 'started %s (hhfab vlab up)\n' "$SERVICE"
}

cmd_resume() {
  need_hhfab
  [[ -d $WORKDIR/.hhfab || -f $WORKDIR/fab.yaml ]] ||
    die "no initialized hhfab work directory at $WORKDIR; initialize the lab first"
  systemctl reset-failed "$SERVICE" 2>/dev/null || true
  systemctl start "$SERVICE"
  printf 'started %s on the existing VLAB disks\n' "$SERVICE"
}

k3d_nodes_ready() {
  [[ -n $K3D_CLUSTER ]] || return 0
  local nodes
  nodes="$(kubectl --context "k3d-$K3D_CLUSTER" get nodes -o json 2>/dev/null)" || return 1
  jq -e '(.items | length) > 0 and all(.items[];
           any(.status.conditions[]; .type == "Ready" and .status == "True"))' <<<"$nodes" >/dev/null
}

cmd_ready() {
  [[ -x $HHFAB && -d $WORKDIR ]] || return 1
  systemctl is-active --quiet "$SERVICE" || return 1
  timeout "$PROBE_TIMEOUT" bash -c 'cd "$1" && "$2" vlab wait-switches' _ "$WORKDIR" "$HHFAB" >/dev/null 2>&1 || return 1
  k3d_nodes_ready
}

cmd_status() {
  local active ready=false
  active="$(systemctl is-active "$SERVICE" 2>/dev/null || true)"
  [[ -n $active ]] || active=unknown
  if cmd_ready; then ready=true; fi
  jq -n --arg service "$SERVICE" --arg active "$active" --argjson ready "$ready" \
    --arg workdir "$WORKDIR" --arg k3d "$K3D_CLUSTER" \
    '{driver: "hedgehog-vlab", service: $service, serviceState: $active, ready: $ready,
      workdir: $workdir, k3dCluster: (if $k3d == "" then null else $k3d end)}'
}

case "${1:-}" in
  init) cmd_init ;;
  resume) cmd_resume ;;
  ready) cmd_ready ;;
  status) cmd_status ;;
  *)
    printf 'hedgehog-vlab: unknown action "%s" (init, resume, ready, status)\n' "${1:-}" >&2
    exit 2
    ;;
esac
