# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/preflight.sh: the host checks (preflight command and the first step of install).
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

# --- preflight ----------------------------------------------------------------------------------------

PF_FAILS=0
PF_WARNS=0
CPU_VENDOR=""

# os_release_value KEY: a value from os-release (parsed, not sourced).
os_release_value() {
  [[ -r $OS_RELEASE_PATH ]] || return 0
  awk -v k="$1" 'index($0, k "=") == 1 { v = substr($0, length(k) + 2); gsub(/^["\047]|["\047]$/, "", v); print v; exit }' "$OS_RELEASE_PATH"
}

pf_ok() { printf '  [ok]   %s\n' "$*"; }
pf_warn() { PF_WARNS=$((PF_WARNS + 1)); printf '  [warn] %s\n' "$*"; }
pf_fail() { PF_FAILS=$((PF_FAILS + 1)); printf '  [FAIL] %s\n' "$*"; }
pf_kvm_problem() { if $ALLOW_NO_KVM; then pf_warn "$* (allowed by --allow-no-kvm)"; else pf_fail "$*"; fi; }

# Nearest existing ancestor of PATH (for df before the directory exists).
existing_ancestor() {
  local p=$1
  while [[ ! -e $p ]]; do p=$(dirname "$p"); done
  printf '%s' "$p"
}

preflight() {
  section "preflight"
  local id version pretty
  id=$(os_release_value ID)
  version=$(os_release_value VERSION_ID)
  pretty=$(os_release_value PRETTY_NAME)
  [[ -n $pretty ]] || pretty="$id $version"
  case "$id:$version" in
    ubuntu:22.04 | ubuntu:24.04 | debian:12) pf_ok "os: $pretty" ;;
    *) pf_fail "os: '${pretty:-unknown}' is not supported (Ubuntu 22.04, Ubuntu 24.04 or Debian 12)" ;;
  esac

  if [[ $HOST_ARCH == x86_64 ]]; then
    pf_ok "architecture: x86_64"
  else
    pf_fail "architecture: $HOST_ARCH (labforge builds x86-64 appliances; KVM acceleration needs an x86-64 host)"
  fi

  local flags="" cores=0
  if [[ -r $CPUINFO_PATH ]]; then
    flags=$(grep -m1 '^flags' "$CPUINFO_PATH" || true)
    cores=$(grep -c '^processor' "$CPUINFO_PATH" || true)
  fi
  if [[ " $flags " == *" vmx "* ]]; then
    CPU_VENDOR=intel
    pf_ok "cpu virtualization: vmx (Intel VT-x)"
  elif [[ " $flags " == *" svm "* ]]; then
    CPU_VENDOR=amd
    pf_ok "cpu virtualization: svm (AMD-V)"
  else
    pf_kvm_problem "cpu virtualization: no vmx/svm flag in $CPUINFO_PATH (enable VT-x/AMD-V in the firmware, or nested virtualization on the hypervisor of this VM); Packer would fall back to slow software emulation"
  fi

  if [[ -c $KVM_DEVICE ]]; then
    pf_ok "kvm device: $KVM_DEVICE"
  elif [[ -e $KVM_DEVICE ]]; then
    pf_kvm_problem "kvm device: $KVM_DEVICE exists but is not a character device"
  else
    pf_kvm_problem "kvm device: $KVM_DEVICE missing (load kvm_intel or kvm_amd: modprobe kvm_intel)"
  fi

  local nested_path=$NESTED_PARAM_PATH module=""
  case $CPU_VENDOR in
    intel) module=kvm_intel ;;
    amd) module=kvm_amd ;;
  esac
  if [[ -z $nested_path && -n $module ]]; then nested_path=/sys/module/$module/parameters/nested; fi
  if [[ -z $nested_path ]]; then
    pf_warn "nested virtualization: unknown (no vmx/svm CPU); pre-warmed builds need it"
  elif [[ -r $nested_path ]]; then
    local nested
    nested=$(tr -d '[:space:]' <"$nested_path")
    if [[ $nested == Y || $nested == 1 ]]; then
      pf_ok "nested virtualization: enabled ($nested_path)"
    else
      pf_warn "nested virtualization: disabled ($nested_path = $nested); pre-warmed builds run the lab's VMs inside the build VM: rerun with --enable-nested"
    fi
  else
    pf_warn "nested virtualization: $nested_path missing (${module:-kvm} module not loaded); pre-warmed builds need it: rerun with --enable-nested"
  fi

  local want_cores=$((REC_CORES * COUNT))
  if ((cores < MIN_CORES)); then
    pf_fail "cores: $cores (a build needs at least $MIN_CORES)"
  elif ((cores < want_cores)); then
    pf_warn "cores: $cores (recommended $want_cores for $COUNT concurrent build(s))"
  else
    pf_ok "cores: $cores"
  fi

  local mem_kb=0 mem_gb rec_mem=$((REC_MEM_GB * COUNT))
  [[ -r $MEMINFO_PATH ]] && mem_kb=$(awk '/^MemTotal:/ { print $2 }' "$MEMINFO_PATH")
  mem_gb=$(((${mem_kb:-0} + 524288) / 1048576))
  if ((mem_gb < MIN_MEM_GB)); then
    pf_fail "memory: ${mem_gb} GB (a build needs at least $MIN_MEM_GB GB)"
  elif ((mem_gb < rec_mem)); then
    pf_warn "memory: ${mem_gb} GB (recommended $rec_mem GB for $COUNT concurrent build(s))"
  else
    pf_ok "memory: ${mem_gb} GB"
  fi

  local dir free_kb free_gb rec_disk=$((REC_DISK_GB * COUNT)) seen=""
  for dir in "$BASE_DIR" "$CACHE_DIR"; do
    local at
    at=$(existing_ancestor "$(r "$dir")")
    local fs
    fs=$(df -P "$at" | awk 'NR == 2 { print $1 " " $6 }')
    [[ " $seen " == *" $fs "* ]] && continue
    seen="$seen $fs"
    free_kb=$(df -Pk "$at" | awk 'NR == 2 { print $4 }')
    free_gb=$((free_kb / 1048576))
    if ((free_gb < MIN_DISK_GB)); then
      pf_fail "free disk for $dir: ${free_gb} GB (a build needs at least $MIN_DISK_GB GB)"
    elif ((free_gb < rec_disk)); then
      pf_warn "free disk for $dir: ${free_gb} GB (recommended $rec_disk GB for $COUNT concurrent build(s))"
    else
      pf_ok "free disk for $dir: ${free_gb} GB"
    fi
  done

  if ((PF_FAILS > 0)); then
    say "  verdict: NOT READY ($PF_FAILS failure(s), $PF_WARNS warning(s))"
    return 1
  fi
  say "  verdict: READY ($PF_WARNS warning(s))"
}

cmd_preflight() {
  validate_common
  preflight || exit 1
}
