# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/packages.sh: the packages (QEMU, Packer, ...) and nested virtualization.
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

# --- packages ---------------------------------------------------------------------------------------

dpkg_installed() {
  local args=()
  [[ $ROOT != / ]] && args=(--admindir "$(r /var/lib/dpkg)")
  # shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
  [[ $("$DPKG_QUERY" "${args[@]}" -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

os_codename() { os_release_value VERSION_CODENAME; }

hashicorp_repository() {
  local key
  key=$(mktemp "$WORK_TMP/hashicorp.XXXXXX")
  if ! "$CURL" -fsSL --max-time 10 -o "$key" "$HASHICORP_GPG_URL" 2>/dev/null; then
    return 1
  fi
  local codename
  codename=$(os_codename)
  [[ -n $codename ]] || return 1
  if ! $DRY_RUN; then
    mkdir -p "$(dirname "$(r "$HASHICORP_KEYRING")")"
    "$GPG" --batch --yes --dearmor -o "$(r "$HASHICORP_KEYRING")" "$key"
  fi
  changed "HashiCorp signing key $HASHICORP_KEYRING"
  printf 'deb [arch=amd64 signed-by=%s] https://apt.releases.hashicorp.com %s main\n' "$HASHICORP_KEYRING" "$codename" |
    put_file "$HASHICORP_LIST" 644 root root
}

install_packages() {
  section "packages"
  local missing=() p
  for p in "${PACKAGES[@]}"; do dpkg_installed "$p" || missing+=("$p"); done
  if ((${#missing[@]} == 0)); then
    unchanged "all ${#PACKAGES[@]} packages installed (${PACKAGES[*]})"
  else
    local packer_from=""
    if [[ " ${missing[*]} " == *" packer "* ]]; then
      case $PACKER_SOURCE in
        distro) packer_from="distribution package (--packer-source distro)" ;;
        hashicorp | auto)
          if hashicorp_repository; then
            packer_from="HashiCorp apt repository"
          elif [[ $PACKER_SOURCE == hashicorp ]]; then
            die "packages: $HASHICORP_GPG_URL is not reachable (use --packer-source distro, or allow access to apt.releases.hashicorp.com)"
          else
            packer_from="distribution package (apt.releases.hashicorp.com not reachable)"
          fi
          ;;
      esac
      say "  packer source: $packer_from"
    fi
    act "apt-get update" env DEBIAN_FRONTEND=noninteractive "$APT_GET" update -q ||
      die "packages: apt-get update failed (check /etc/apt/sources.list and the network)"
    act "apt-get install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q --no-install-recommends "${missing[@]}" ||
      die "packages: apt-get install ${missing[*]} failed (packer is not in every distribution release: try --packer-source hashicorp)"
  fi
  if $DRY_RUN && [[ " ${missing[*]} " == *" packer "* ]]; then
    say "  packer: (not installed yet)"
  else
    local pv
    pv=$("$PACKER" version 2>/dev/null | head -n1) || pv="not runnable"
    say "  packer: ${pv:-unknown}"
  fi
}

# --- nested virtualization -------------------------------------------------------------------------

enable_nested() {
  $ENABLE_NESTED || return 0
  section "nested virtualization"
  local module
  case $CPU_VENDOR in
    intel) module=kvm_intel ;;
    amd) module=kvm_amd ;;
    *) warn "--enable-nested: no vmx/svm CPU flag, nothing to enable"; return 0 ;;
  esac
  printf '# Installed by labforge runner-setup: nested virtualization for pre-warmed builds.\noptions %s nested=1\n' "$module" |
    put_file "$NESTED_CONF_PATH" 644 root root
  host_state_set nested_conf "$NESTED_CONF_PATH"
  if $LAST_CHANGED && ! $DRY_RUN; then
    if "$MODPROBE" -r "$module" 2>/dev/null && "$MODPROBE" "$module"; then
      say "  reloaded $module with nested=1"
    else
      warn "$module is in use (running VMs?): nested virtualization is enabled from the next reboot or module reload"
    fi
  fi
}
