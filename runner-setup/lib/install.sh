# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/install.sh: the install and status commands.
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

cmd_install() {
  validate_common
  validate_install
  $DRY_RUN && say "dry run: nothing will be changed"
  host_state_load
  preflight || die "preflight failed: fix the [FAIL] items above (or --allow-no-kvm where KVM is not needed)"
  install_packages
  enable_nested
  install_kvm_rule
  install_hooks

  local i units_changed=false
  local restart_flags=()
  for ((i = 1; i <= COUNT; i++)); do
    local name user dir cache unit manifest
    name=$(runner_name "$i")
    user=$(runner_user "$i")
    dir=$(runner_dir "$name")
    cache=$(runner_cache "$name")
    unit=$(runner_unit "$name")
    manifest=$STATE_DIR/runners/$name.conf
    section "runner $name (user $user, $dir)"
    USER_CREATED=0
    KNOWN_RUNNER=""
    if [[ -f $(r "$manifest") ]]; then
      KNOWN_RUNNER=1
      USER_CREATED=$(manifest_get "$(r "$manifest")" user_created || echo 0)
      local registered_url
      registered_url=$(manifest_get "$(r "$manifest")" url || true)
      if ! $SKIP_REGISTER && [[ -n $registered_url && $registered_url != "$URL" ]]; then
        die "runner $name is registered to $registered_url, not $URL (uninstall it first)"
      fi
    fi
    ensure_user "$user" "$dir"
    verify_kvm_open "$user"
    ensure_user_tree "$dir" 1770 "$user" root
    ensure_user_dir "$dir/tmp" 700 "$user"
    ensure_dir "$CACHE_DIR" 755 root root
    ensure_user_tree "$cache" 750 "$user"
    ensure_user_dir "$cache/packer" 750 "$user"
    ensure_user_dir "$cache/plugins" 750 "$user"
    local restart=false
    RUNNER_PACKAGE_RECORD=""
    [[ -f $(r "$manifest") ]] && RUNNER_PACKAGE_RECORD=$(manifest_get "$(r "$manifest")" runner_package 2>/dev/null || true)
    if ! $SKIP_REGISTER; then
      install_runner_package "$dir" "$user" "$manifest"
      $PACKAGE_CHANGED && restart=true
      register_runner "$name" "$dir" "$user"
    fi
    write_runner_env "$name" "$dir" "$cache" "$user"
    $ENV_CHANGED && restart=true
    local url_line=""
    $SKIP_REGISTER || url_line=$URL
    {
      echo "name=$name"
      echo "user=$user"
      echo "user_created=$USER_CREATED"
      echo "dir=$dir"
      echo "cache=$cache"
      echo "unit=$unit"
      echo "url=$url_line"
      echo "labels=$(runner_labels)"
      echo "ephemeral=$EPHEMERAL"
      echo "runner_group=$RUNNER_GROUP"
      [[ -n $RUNNER_PACKAGE_RECORD ]] && echo "runner_package=$RUNNER_PACKAGE_RECORD"
      if [[ -n $GITHUB_PAT_FILE ]]; then
        echo "registration_api=$(registration_api)"
        echo "pat_file=$STATE_DIR/github-pat"
      fi
    } | put_file "$manifest" 644 root root
    if ! $SKIP_REGISTER; then
      write_unit "$name" "$dir" "$user" "$unit"
      if $LAST_CHANGED; then units_changed=true; restart=true; fi
    fi
    restart_flags+=("$unit:$restart")
  done

  local other
  while IFS= read -r other; do
    local other_name
    other_name=$(manifest_get "$other" name || true)
    local known=false
    for ((i = 1; i <= COUNT; i++)); do [[ $(runner_name "$i") == "$other_name" ]] && known=true; done
    $known || warn "runner $other_name is installed but not part of this configuration (remove it with uninstall)"
  done < <(installed_manifests)

  section "host state"
  local line
  {
    for line in "${HOST_STATE_LINES[@]}"; do echo "$line"; done
    echo "base_dir=$BASE_DIR"
    echo "cache_dir=$CACHE_DIR"
  } | sort -u | put_file "$STATE_DIR/host.conf" 644 root root

  if ! $SKIP_REGISTER; then
    section "services"
    if $units_changed; then act "systemctl daemon-reload" "$SYSTEMCTL" daemon-reload; fi
    local entry
    for entry in "${restart_flags[@]}"; do start_service "${entry%%:*}" "${entry##*:}"; done
  fi

  section "summary"
  if $DRY_RUN; then
    say "  dry run: $CHANGES change(s) would be made; nothing was changed"
  elif ((CHANGES == 0)); then
    say "  nothing changed: the host is already set up ($COUNT runner(s))"
  else
    say "  $CHANGES change(s) made ($COUNT runner(s))"
  fi
}

cmd_status() {
  validate_common
  local manifests=() m
  mapfile -t manifests < <(installed_manifests)
  if ((${#manifests[@]} == 0)); then
    say "no labforge runners installed under $(r "$STATE_DIR")"
    exit 1
  fi
  local bad=0
  printf '%-24s %-22s %-10s %-9s %-10s %s\n' RUNNER USER SERVICE ENABLED REGISTERED DIRECTORY
  for m in "${manifests[@]}"; do
    local name user dir unit active enabled registered
    name=$(manifest_get "$m" name)
    user=$(manifest_get "$m" user)
    dir=$(manifest_get "$m" dir)
    unit=$(manifest_get "$m" unit)
    active=$("$SYSTEMCTL" is-active "$unit" 2>/dev/null) || true
    enabled=$("$SYSTEMCTL" is-enabled "$unit" 2>/dev/null) || true
    registered=no
    [[ -f $(r "$dir/.runner") ]] && registered=yes
    [[ $active == active ]] || bad=1
    printf '%-24s %-22s %-10s %-9s %-10s %s\n' "$name" "$user" "${active:-unknown}" "${enabled:-unknown}" "$registered" "$dir"
  done
  exit "$bad"
}

# install_manifest_entries TOP: the "TYPE PATH" lines of TOP's install manifest, oldest first. An
# installation by an earlier version (no manifest, but a host record) gets the list that version
