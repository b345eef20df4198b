#!/usr/bin/env bash
# labforge runner hooks: shared functions of job-started.sh and job-completed.sh.
# Sourced, not run. Installed by runner-setup/setup.sh into <base-dir>/hooks/.
#
# Environment (from the runner's .env, written by setup.sh):
#   LABFORGE_RUNNER_NAME   this runner's name; QEMU processes of its jobs inherit it
#   LABFORGE_RUNNER_TMP    this runner's TMPDIR (holds build overlays)
#   LABFORGE_MIN_FREE_GB   a job does not start with less free disk than this
#   PACKER_CACHE_DIR       persistent Packer cache (checked for free disk too)
# Test seam: LABFORGE_PROC (default /proc).

# kill_stray_qemu: stop QEMU processes left behind by earlier jobs of this runner. Only processes
# of the current user whose environment carries LABFORGE_RUNNER_NAME=<this runner> are touched,
# so runners sharing a host never stop each other's builds.
kill_stray_qemu() {
  local name=${LABFORGE_RUNNER_NAME:?LABFORGE_RUNNER_NAME is not set (is this runner set up by runner-setup/setup.sh?)}
  local proc=${LABFORGE_PROC:-/proc} me pid comm pids=()
  me=$(id -u)
  for pid in "$proc"/[0-9]*; do
    pid=${pid##*/}
    [[ -r $proc/$pid/environ ]] || continue
    comm=$(cat "$proc/$pid/comm" 2>/dev/null) || continue
    [[ $comm == qemu-system-* || $comm == qemu-kvm ]] || continue
    [[ $(stat -c '%u' "$proc/$pid" 2>/dev/null) == "$me" ]] || continue
    tr '\0' '\n' <"$proc/$pid/environ" 2>/dev/null | grep -qxF "LABFORGE_RUNNER_NAME=$name" || continue
    pids+=("$pid")
  done
  if ((${#pids[@]} == 0)); then
    echo "labforge: no stray QEMU processes"
    return 0
  fi
  echo "labforge: stopping ${#pids[@]} stray QEMU process(es) of earlier jobs: ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local waited=0 alive
  while ((waited < 20)); do
    alive=()
    for pid in "${pids[@]}"; do [[ -d $proc/$pid ]] && alive+=("$pid"); done
    ((${#alive[@]} == 0)) && return 0
    sleep 0.5
    waited=$((waited + 1))
  done
  echo "labforge: QEMU did not stop on SIGTERM, killing: ${alive[*]}"
  kill -KILL "${alive[@]}" 2>/dev/null || true
}

# clean_runner_tmp: remove overlays and other leftovers of earlier jobs from this runner's TMPDIR.
# Only a directory carrying setup.sh's marker file and owned by the current user is emptied.
clean_runner_tmp() {
  local dir=${LABFORGE_RUNNER_TMP:-}
  if [[ -z $dir || $dir != /* || ! -f $dir/.labforge-runner-tmp || ! -O $dir ]]; then
    echo "labforge: LABFORGE_RUNNER_TMP='${dir}' is not a runner tmp directory; not cleaning it"
    return 0
  fi
  local leftovers=()
  mapfile -t leftovers < <(find "$dir" -mindepth 1 -maxdepth 1 ! -name .labforge-runner-tmp)
  if ((${#leftovers[@]} == 0)); then
    echo "labforge: $dir is clean"
    return 0
  fi
  echo "labforge: removing ${#leftovers[@]} leftover(s) of earlier jobs from $dir"
  rm -rf -- "${leftovers[@]}"
}

# check_free_disk DIR...: fail when a directory's file system has less than LABFORGE_MIN_FREE_GB free.
check_free_disk() {
  local min=${LABFORGE_MIN_FREE_GB:-50} dir free_kb free_gb rc=0
  for dir in "$@"; do
    [[ -n $dir && -d $dir ]] || continue
    free_kb=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
    free_gb=$((free_kb / 1048576))
    if ((free_gb < min)); then
      echo "::error title=labforge runner::only ${free_gb} GB free for $dir (a build needs ${min} GB): free disk space on this runner, or lower --min-free-gb"
      rc=1
    else
      echo "labforge: ${free_gb} GB free for $dir"
    fi
  done
  return "$rc"
}
