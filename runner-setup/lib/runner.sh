# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/runner.sh: runner names, users, environment, registration, systemd unit and service.
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

# --- runner layout ------------------------------------------------------------------------------------

runner_name() { if ((COUNT == 1)); then echo "$RUNNER_NAME"; else echo "$RUNNER_NAME-$1"; fi; }
runner_user() { if ((COUNT == 1)); then echo "$RUNNER_USER"; else echo "$RUNNER_USER-$1"; fi; }
runner_dir() { echo "$BASE_DIR/$1"; }
runner_cache() { echo "$CACHE_DIR/$1"; }
runner_unit() { echo "labforge-runner-$1.service"; }
runner_labels() {
  if [[ -n $EXTRA_LABELS ]]; then echo "$BASE_LABELS,$EXTRA_LABELS"; else echo "$BASE_LABELS"; fi
}

# The REST API base for registration tokens of URL (github.com or GitHub Enterprise Server).
registration_api() {
  local host path api
  host=${URL#https://}
  host=${host%%/*}
  path=${URL#https://"$host"/}
  path=${path%/}
  if [[ $host == github.com ]]; then api=https://api.github.com; else api=https://$host/api/v3; fi
  if [[ $path == */* ]]; then echo "$api/repos/$path"; else echo "$api/orgs/$path"; fi
}

# --- runner users and directories -----------------------------------------------------------------

ensure_user() { # USER HOME
  local user=$1 home=$2 args
  mapfile -t args < <(prefix_args)
  if user_exists "$user"; then
    unchanged "user $user"
  else
    act "create user $user (home $home)" "$USERADD" "${args[@]}" --system --user-group \
      --home-dir "$home" --no-create-home --shell /bin/bash --comment "labforge GitHub Actions runner" "$user"
    USER_CREATED=1
  fi
  if user_in_group "$user" kvm; then
    unchanged "$user in group kvm"
  else
    act "add $user to group kvm" "$USERMOD" "${args[@]}" --append --groups kvm "$user"
  fi
}

write_runner_env() { # NAME DIR CACHE USER
  local name=$1 dir=$2 cache=$3 user=$4
  ENV_CHANGED=false
  # Root's files in the runner's root-owned directory: the runner reads them, a job cannot change
  # them (a job that could would reach the next job's environment).
  PUT_FILE_RECORD=false
  cat <<EOF | put_file "$dir/.env" 644 root root
LANG=C.UTF-8
PACKER_CACHE_DIR=$cache/packer
PACKER_PLUGIN_PATH=$cache/plugins
TMPDIR=$dir/tmp
LABFORGE_RUNNER_NAME=$name
LABFORGE_RUNNER_TMP=$dir/tmp
LABFORGE_MIN_FREE_GB=$MIN_FREE_GB
ACTIONS_RUNNER_HOOK_JOB_STARTED=$BASE_DIR/hooks/job-started.sh
ACTIONS_RUNNER_HOOK_JOB_COMPLETED=$BASE_DIR/hooks/job-completed.sh
EOF
  $LAST_CHANGED && ENV_CHANGED=true
  printf '%s\n' "$RUNNER_PATH_VALUE" | put_file "$dir/.path" 644 root root
  $LAST_CHANGED && ENV_CHANGED=true
  PUT_FILE_RECORD=true
  # The hooks only empty a directory that carries this marker.
  : | put_user_file "$dir/tmp/.labforge-runner-tmp" 644 "$user"
}

# in_dir_as_user USER DIR COMMAND...: run COMMAND as USER in DIR (the user changes directory, not root).
in_dir_as_user() {
  local user=$1 dir=$2
  shift 2
  # shellcheck disable=SC2016 # expanded by the inner shell
  as_user "$user" sh -c 'cd "$1" || exit 1; shift; exec "$@"' labforge-in-dir "$dir" "$@"
}

register_runner() { # NAME DIR USER
  local name=$1 dir=$2 user=$3
  if [[ -f $(r "$dir/.runner") ]]; then
    unchanged "runner $name registered ($dir/.runner)"
    return 0
  fi
  local args=(--unattended --url "$URL" --name "$name" --labels "$(runner_labels)" --work _work --replace --disableupdate)
  [[ -n $RUNNER_GROUP ]] && args+=(--runnergroup "$RUNNER_GROUP")
  $EPHEMERAL && args+=(--ephemeral)
  changed "register runner $name: config.sh ${args[*]} (token passed in the environment)"
  $DRY_RUN && return 0
  # config.sh reads ACTIONS_RUNNER_INPUT_TOKEN from its environment (and removes it from there),
  # so the token never appears in any argv; /proc/PID/environ is readable only by its owner and root.
  ACTIONS_RUNNER_INPUT_TOKEN=$TOKEN in_dir_as_user "$user" "$(r "$dir")" ./config.sh "${args[@]}" ||
    die "runner $name: registration failed (config.sh exit status $?); an expired token (they last one hour) is the usual cause"
}

write_unit() { # NAME DIR USER UNIT
  local name=$1 dir=$2 user=$3 unit=$4 pre=""
  if $EPHEMERAL && [[ -n $GITHUB_PAT_FILE ]]; then
    pre="# An ephemeral runner deregisters after its job: register it again (as root: reads the token).
ExecStartPre=+$BASE_DIR/bin/labforge-reregister $STATE_DIR/runners/$name.conf
"
  fi
  cat <<EOF | put_file "/etc/systemd/system/$unit" 644 root root
# Installed by labforge runner-setup.
[Unit]
Description=GitHub Actions runner $name (labforge)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=$user
Group=$user
# Belt and braces: KVM access even before a fresh login picks up the group membership.
SupplementaryGroups=kvm
WorkingDirectory=$dir
${pre}ExecStart=$dir/bin/runsvc.sh
# SIGTERM to the runner only (it ends its job), then SIGKILL to every process left in the unit:
# nothing a job started outlives the service's run (svc.sh's template has KillMode=process, which
# leaves them running into the next job).
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=5min
Restart=always
RestartSec=5s
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
EOF
}

start_service() { # UNIT RESTART_NEEDED
  local unit=$1 restart=$2
  if [[ $("$SYSTEMCTL" is-enabled "$unit" 2>/dev/null) == enabled ]]; then
    unchanged "$unit enabled"
  else
    act "enable $unit" "$SYSTEMCTL" enable "$unit"
  fi
  if [[ $("$SYSTEMCTL" is-active "$unit" 2>/dev/null) == active ]]; then
    if $restart; then
      act "restart $unit (configuration changed)" "$SYSTEMCTL" restart "$unit"
    else
      unchanged "$unit active"
    fi
  else
    act "start $unit" "$SYSTEMCTL" start "$unit"
  fi
}
