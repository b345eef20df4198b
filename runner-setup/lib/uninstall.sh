# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/uninstall.sh: the uninstall command: removes only what install recorded.
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

# would have written: its own files and directories by name, and the runner trees it recorded.
install_manifest_entries() {
  local top=$1 file m
  file=$(r "$top/$INSTALL_MANIFEST")
  if [[ -L $file ]]; then
    warn "$top/$INSTALL_MANIFEST is a symbolic link; ignored (nothing under $top is removed)"
    return 0
  fi
  if [[ -f $file ]]; then
    [[ $(stat -c '%u' "$file") == 0 ]] || { warn "$top/$INSTALL_MANIFEST is not owned by root; ignored"; return 0; }
    grep -E '^(file|dir|tree) /' "$file" || true
    return 0
  fi
  [[ -f $(r "$STATE_DIR/host.conf") ]] || return 0
  echo "dir $top"
  if [[ $top == "$BASE_DIR" ]]; then
    printf 'dir %s\n' "$top/hooks" "$top/bin"
    printf 'file %s\n' "$top"/hooks/{job-started.sh,job-completed.sh,runner-cleanup.sh} "$top/bin/labforge-reregister"
    while IFS= read -r m; do echo "tree $(manifest_get "$m" dir)"; done < <(installed_manifests)
  else
    echo "dir $top/downloads"
    find "$(r "$top/downloads")" -maxdepth 1 -type f -name 'actions-runner-linux-x64-*.tar.gz' -printf "file $top/downloads/%f\n" 2>/dev/null || true
    while IFS= read -r m; do echo "tree $(manifest_get "$m" cache)"; done < <(installed_manifests)
  fi
}

declare -A REMOVED=()

# remove_recorded TYPE PATH TOP: remove what install recorded, only while it is still of the recorded
# type and no link stands in the way (between TOP and PATH, or PATH itself); a directory only when
# nothing but what was removed was in it.
remove_recorded() {
  local type=$1 path=$2 top=$3 dest p
  dest=$(r "$path")
  [[ -e $dest || -L $dest ]] || return 0
  p=$path
  while [[ $p != "$top" && $p == "$top"/* ]]; do
    if [[ -L $(r "$p") ]]; then
      warn "kept $path: $p is a symbolic link (not following it)"
      return 0
    fi
    p=$(dirname "$p")
  done
  case $type in
    file)
      [[ -f $dest ]] || { warn "kept $path: no longer a file"; return 0; }
      act "remove $path" rm -f -- "$dest"
      ;;
    tree)
      [[ -d $dest ]] || { warn "kept $path: no longer a directory"; return 0; }
      act "remove $path" rm -rf --one-file-system -- "$dest"
      ;;
    dir)
      [[ -d $dest ]] || { warn "kept $path: no longer a directory"; return 0; }
      local child others=()
      while IFS= read -r child; do
        [[ -n ${REMOVED[${child#"${ROOT%/}"}]:-} ]] || others+=("${child##*/}")
      done < <(find "$dest" -mindepth 1 -maxdepth 1)
      if ((${#others[@]} > 0)); then
        say "  kept $path: it holds what install did not create (${others[*]:0:3}$( ((${#others[@]} > 3)) && echo ' ...'))"
        return 0
      fi
      act "remove $path" rmdir -- "$dest"
      ;;
  esac
  REMOVED[$path]=1
}

# remove_install_manifest TOP ENTRY...: remove the recorded entries newest first, then the manifest,
# then TOP itself if install created it and it is empty.
remove_install_manifest() {
  local top=$1 i type path top_recorded=false
  shift
  local entries=("$@")
  for ((i = ${#entries[@]} - 1; i >= 0; i--)); do
    type=${entries[i]%% *}
    path=${entries[i]#* }
    if [[ $path == "$top" ]]; then top_recorded=true; continue; fi
    if [[ $path != "$top"/?* || $path == *..* ]]; then
      warn "$top/$INSTALL_MANIFEST: ignoring $path (not under $top)"
      continue
    fi
    remove_recorded "$type" "$path" "$top"
  done
  local manifest=$top/$INSTALL_MANIFEST
  if [[ -f $(r "$manifest") && ! -L $(r "$manifest") ]]; then
    act "remove $manifest" rm -f -- "$(r "$manifest")"
    REMOVED[$manifest]=1
  fi
  if $top_recorded; then remove_recorded dir "$top" "$top"; fi
  return 0
}

cmd_uninstall() {
  validate_common
  local recorded
  if recorded=$(host_state_get base_dir 2>/dev/null); then BASE_DIR=$recorded; fi
  if recorded=$(host_state_get cache_dir 2>/dev/null); then CACHE_DIR=$recorded; fi
  system_directory "$BASE_DIR" && die "$STATE_DIR/host.conf: base_dir $BASE_DIR is a system directory; not removing anything from it"
  system_directory "$CACHE_DIR" && die "$STATE_DIR/host.conf: cache_dir $CACHE_DIR is a system directory; not removing anything from it"
  local manifests=() m base_entries=() cache_entries=()
  mapfile -t manifests < <(installed_manifests)
  mapfile -t base_entries < <(install_manifest_entries "$BASE_DIR")
  mapfile -t cache_entries < <(install_manifest_entries "$CACHE_DIR")
  local needs_token=false
  for m in "${manifests[@]}"; do
    [[ -f $(r "$(manifest_get "$m" dir)/.runner") ]] && needs_token=true
  done
  if $needs_token && ! $SKIP_REGISTER; then read_token; fi
  $DRY_RUN && say "dry run: nothing will be changed"

  local units_removed=false
  for m in "${manifests[@]}"; do
    local name user dir cache unit created
    name=$(manifest_get "$m" name)
    user=$(manifest_get "$m" user)
    dir=$(manifest_get "$m" dir)
    cache=$(manifest_get "$m" cache)
    unit=$(manifest_get "$m" unit)
    created=$(manifest_get "$m" user_created || echo 0)
    section "remove runner $name"
    [[ $dir == "$BASE_DIR"/?* && $dir != *..* ]] || die "manifest $m: directory '$dir' is not under $BASE_DIR; not removing it"
    if [[ -f $(r "/etc/systemd/system/$unit") ]]; then
      act "stop and disable $unit" "$SYSTEMCTL" disable --now "$unit"
      remove_path "/etc/systemd/system/$unit"
      units_removed=true
    fi
    if [[ -f $(r "$dir/.runner") ]]; then
      if $SKIP_REGISTER; then
        warn "runner $name stays listed (offline) on GitHub until removed there (--skip-register)"
      else
        changed "deregister runner $name: config.sh remove --unattended (token passed in the environment)"
        if ! $DRY_RUN; then
          ACTIONS_RUNNER_INPUT_TOKEN=$TOKEN in_dir_as_user "$user" "$(r "$dir")" ./config.sh remove --unattended ||
            die "runner $name: deregistration failed; nothing removed (get a fresh removal token, or --skip-register to remove it locally only)"
        fi
      fi
    fi
    if printf '%s\n' "${base_entries[@]}" | grep -qxF "tree $dir"; then
      remove_recorded tree "$dir" "$BASE_DIR"
    elif [[ -e $(r "$dir") ]]; then
      say "  kept $dir: install did not create it (not in $BASE_DIR/$INSTALL_MANIFEST)"
    fi
    if [[ $created == 1 ]] && user_exists "$user"; then
      local args
      mapfile -t args < <(prefix_args)
      act "delete user $user" "$USERDEL" "${args[@]}" "$user"
    fi
    if ! $PURGE && [[ -e $(r "$cache") ]]; then
      say "  kept cache $cache (--purge removes it)"
    fi
    remove_path "${m#"${ROOT%/}"}"
  done

  section "host"
  if $units_removed; then act "systemctl daemon-reload" "$SYSTEMCTL" daemon-reload; fi
  remove_install_manifest "$BASE_DIR" "${base_entries[@]}"
  local rule nested
  rule=$(host_state_get udev_rule 2>/dev/null) || rule=""
  if [[ -n $rule && -f $(r "$rule") ]]; then
    remove_path "$rule"
    if [[ -e $UDEV_CONTROL_PATH ]]; then
      act "reload udev rules" "$UDEVADM" control --reload-rules
      if [[ -e $KVM_DEVICE ]]; then
        act "udevadm trigger $KVM_DEVICE" "$UDEVADM" trigger --action=change --name-match="$KVM_DEVICE"
      fi
    fi
  fi
  nested=$(host_state_get nested_conf 2>/dev/null) || nested=""
  local original
  if original=$(host_state_get kvm_device_original 2>/dev/null) && [[ -e $KVM_DEVICE ]]; then
    local o_uid o_gid o_mode
    IFS=: read -r o_uid o_gid o_mode <<<"$original"
    act "restore $KVM_DEVICE to $o_uid:$o_gid $o_mode" set_owner_mode "$o_uid:$o_gid" "$o_mode" "$KVM_DEVICE"
  fi
  [[ -n $nested ]] && remove_path "$nested"
  if [[ $(host_state_get kvm_group_created 2>/dev/null) == 1 ]] && group_exists kvm; then
    if [[ -z $(group_field kvm 4) ]] || $DRY_RUN; then
      local args
      mapfile -t args < <(prefix_args)
      act "delete group kvm (created by install)" "$GROUPDEL" "${args[@]}" kvm
    else
      warn "group kvm has other members ($(group_field kvm 4)); kept"
    fi
  fi
  if $PURGE; then
    remove_install_manifest "$CACHE_DIR" "${cache_entries[@]}"
  fi
  remove_path "$STATE_DIR"
  say "  packages stay installed (qemu, packer, ...): remove them with apt-get if nothing else needs them"

  section "summary"
  if $DRY_RUN; then
    say "  dry run: $CHANGES change(s) would be made; nothing was changed"
  elif ((CHANGES == 0)); then
    say "  nothing to remove"
  else
    say "  $CHANGES change(s) made"
  fi
}
