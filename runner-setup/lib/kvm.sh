# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/kvm.sh: KVM access: the kvm group, the udev rule and the check that a runner user can open /dev/kvm.
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

# --- KVM access -------------------------------------------------------------------------------------

install_kvm_rule() {
  section "kvm access"
  if group_exists kvm; then
    unchanged "group kvm"
  else
    local args
    mapfile -t args < <(prefix_args)
    act "create system group kvm" "$GROUPADD" "${args[@]}" --system kvm
    host_state_set kvm_group_created 1
  fi
  # Written after the packages: a package's own rules or triggers must not win the race.
  printf '# Installed by labforge runner-setup: members of the kvm group may use KVM.\nKERNEL=="kvm", GROUP="kvm", MODE="0660"\n' |
    put_file "$UDEV_RULE_PATH" 644 root root
  host_state_set udev_rule "$UDEV_RULE_PATH"
  local rule_changed=$LAST_CHANGED
  if [[ ! -e $KVM_DEVICE ]]; then
    if [[ -e $UDEV_CONTROL_PATH ]] && $rule_changed; then
      act "reload udev rules" "$UDEVADM" control --reload-rules
    fi
    say "  $KVM_DEVICE missing: the rule applies when the kvm module is loaded"
    return 0
  fi
  local kvm_gid perms_ok=false
  kvm_gid=$(gid_of kvm 2>/dev/null) || kvm_gid=""
  [[ $(stat -c '%a %g' "$KVM_DEVICE") == "660 $kvm_gid" ]] && perms_ok=true
  if $rule_changed || ! $perms_ok; then
    if [[ -e $UDEV_CONTROL_PATH ]]; then
      act "reload udev rules" "$UDEVADM" control --reload-rules
      act "udevadm trigger $KVM_DEVICE" "$UDEVADM" trigger --action=change --name-match="$KVM_DEVICE"
      act "udevadm settle" "$UDEVADM" settle --timeout=30
    else
      # No udevd (containers, some CI machines): apply what the rule says directly, and remember
      # the original owner and mode so that uninstall can put them back.
      if ! host_state_get kvm_device_original >/dev/null 2>&1; then
        host_state_set kvm_device_original "$(stat -c '%u:%g:%a' "$KVM_DEVICE")"
      fi
      act "chgrp kvm + chmod 0660 $KVM_DEVICE (udev is not running)" set_owner_mode "0:$kvm_gid" 660 "$KVM_DEVICE"
    fi
  else
    unchanged "$KVM_DEVICE is root:kvm 0660"
  fi
}

set_owner_mode() { chown "$1" "$3" && chmod "$2" "$3"; } # OWNER:GROUP MODE PATH

# verify_kvm_open USER: the user must be able to open the KVM device read-write.
verify_kvm_open() {
  local user=$1
  if [[ ! -e $KVM_DEVICE ]]; then
    warn "$KVM_DEVICE missing: cannot verify that $user can use KVM"
    return 0
  fi
  if $DRY_RUN && ! user_exists "$user"; then
    say "  would verify that $user can open $KVM_DEVICE"
    return 0
  fi
  # shellcheck disable=SC2016 # expanded by the inner shell
  if as_user "$user" sh -c 'exec 3<>"$1"' sh "$KVM_DEVICE" 2>/dev/null; then
    say "  ok: $user can open $KVM_DEVICE"
  else
    die "kvm access: $user cannot open $KVM_DEVICE read-write ($(stat -c '%A %U:%G' "$KVM_DEVICE")); Packer would silently fall back to software emulation. Check the kvm group and $UDEV_RULE_PATH"
  fi
}
