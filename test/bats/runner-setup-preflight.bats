#!/usr/bin/env bats
# runner-setup/setup.sh preflight: verdicts and exit codes for hosts with and without what a
# KVM build runner needs. The host facts come from files given through CPUINFO_PATH, MEMINFO_PATH,
# KVM_DEVICE, NESTED_PARAM_PATH and OS_RELEASE_PATH (see the helpers for the good host).

load ../fixtures/runner-setup/helpers.bash

setup() { rs_make_host; }
teardown() { rs_cleanup_host; }

preflight() { run "$RS_SETUP" preflight --root "$RS_ROOT" "$@"; }

cpuinfo_with() { # CORES FLAGS
  : >"$CPUINFO_PATH"
  local i
  for ((i = 0; i < $1; i++)); do printf 'processor\t: %d\nflags\t\t: %s\n\n' "$i" "$2" >>"$CPUINFO_PATH"; done
}

@test "a good host is READY" {
  preflight
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *"[ok]   os: Debian GNU/Linux 12 (bookworm)"* ]]
  [[ $output == *"[ok]   cpu virtualization: vmx (Intel VT-x)"* ]]
  [[ $output == *"[ok]   kvm device: $KVM_DEVICE"* ]]
  [[ $output == *"[ok]   nested virtualization: enabled"* ]]
  [[ $output == *"[ok]   cores: 32"* ]]
  [[ $output == *"[ok]   memory: 126 GB"* ]]
  [[ $output == *"verdict: READY"* ]]
}

@test "a host without vmx/svm is NOT READY, or a warning with --allow-no-kvm" {
  cpuinfo_with 32 "fpu vme de pse tsc msr pae hypervisor"
  preflight
  [ "$status" -eq 1 ]
  [[ $output == *"[FAIL] cpu virtualization: no vmx/svm flag in $CPUINFO_PATH"* ]]
  [[ $output == *"verdict: NOT READY (1 failure(s)"* ]]
  preflight --allow-no-kvm
  [ "$status" -eq 0 ]
  [[ $output == *"[warn] cpu virtualization: no vmx/svm flag"*"(allowed by --allow-no-kvm)"* ]]
}

@test "an AMD host is recognised by svm and checks kvm_amd's nested parameter" {
  cpuinfo_with 32 "fpu svm npt"
  NESTED_PARAM_PATH="" preflight
  [[ $output == *"[ok]   cpu virtualization: svm (AMD-V)"* ]]
  [[ $output == *"nested virtualization: /sys/module/kvm_amd/parameters/nested"* || $output == *"nested virtualization: enabled (/sys/module/kvm_amd/parameters/nested)"* || $output == *"nested virtualization: disabled (/sys/module/kvm_amd/parameters/nested"* ]]
}

@test "a host without /dev/kvm is NOT READY, or a warning with --allow-no-kvm" {
  KVM_DEVICE=$RS_INPUTS/no-kvm preflight
  [ "$status" -eq 1 ]
  [[ $output == *"[FAIL] kvm device: $RS_INPUTS/no-kvm missing (load kvm_intel or kvm_amd: modprobe kvm_intel)"* ]]
  KVM_DEVICE=$RS_INPUTS/no-kvm preflight --allow-no-kvm
  [ "$status" -eq 0 ]
  [[ $output == *"[warn] kvm device: $RS_INPUTS/no-kvm missing"*"(allowed by --allow-no-kvm)"* ]]
  # a regular file where the device should be is not KVM either
  : >"$RS_INPUTS/plain-file"
  KVM_DEVICE=$RS_INPUTS/plain-file preflight
  [ "$status" -eq 1 ]
  [[ $output == *"exists but is not a character device"* ]]
}

@test "this machine's own facts give the verdict its CPU flags and /dev/kvm call for" {
  unset CPUINFO_PATH MEMINFO_PATH KVM_DEVICE NESTED_PARAM_PATH OS_RELEASE_PATH HOST_ARCH
  run "$RS_SETUP" preflight --allow-no-kvm
  echo "$output"
  [ "$status" -eq 0 ] # Debian 12, x86_64, >= 2 cores, >= 8 GB, >= 40 GB free (the CI machine)
  if grep -qw -e vmx -e svm /proc/cpuinfo; then
    [[ $output == *"[ok]   cpu virtualization"* ]]
  else
    [[ $output == *"[warn] cpu virtualization: no vmx/svm flag in /proc/cpuinfo"* ]]
    run "$RS_SETUP" preflight
    [ "$status" -eq 1 ]
  fi
  if [ -c /dev/kvm ]; then
    [[ $output == *"[ok]   kvm device: /dev/kvm"* ]]
  else
    [[ $output == *"kvm device: /dev/kvm missing"* ]]
  fi
}

@test "nested virtualization off is a warning that names --enable-nested" {
  echo N >"$NESTED_PARAM_PATH"
  preflight
  [ "$status" -eq 0 ]
  [[ $output == *"[warn] nested virtualization: disabled ($NESTED_PARAM_PATH = N); pre-warmed builds"*"rerun with --enable-nested"* ]]
  rm "$NESTED_PARAM_PATH"
  preflight
  [ "$status" -eq 0 ]
  [[ $output == *"[warn] nested virtualization: $NESTED_PARAM_PATH missing (kvm_intel module not loaded)"* ]]
}

@test "only Ubuntu 22.04, 24.04 and Debian 12 are supported" {
  printf 'ID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n' >"$OS_RELEASE_PATH"
  preflight
  [ "$status" -eq 0 ]
  [[ $output == *"[ok]   os: Ubuntu 24.04.1 LTS"* ]]
  printf 'ID=ubuntu\nVERSION_ID="20.04"\nPRETTY_NAME="Ubuntu 20.04.6 LTS"\n' >"$OS_RELEASE_PATH"
  preflight
  [ "$status" -eq 1 ]
  [[ $output == *"[FAIL] os: 'Ubuntu 20.04.6 LTS' is not supported (Ubuntu 22.04, Ubuntu 24.04 or Debian 12)"* ]]
}

@test "cores and memory warn below the recommendation and fail below the minimum" {
  cpuinfo_with 8 "fpu vmx"
  printf 'MemTotal:       16000000 kB\n' >"$MEMINFO_PATH"
  preflight
  [ "$status" -eq 0 ]
  [[ $output == *"[warn] cores: 8 (recommended 16 for 1 concurrent build(s))"* ]]
  [[ $output == *"[warn] memory: 15 GB (recommended 32 GB for 1 concurrent build(s))"* ]]
  cpuinfo_with 1 "fpu vmx"
  printf 'MemTotal:       4000000 kB\n' >"$MEMINFO_PATH"
  preflight
  [ "$status" -eq 1 ]
  [[ $output == *"[FAIL] cores: 1 (a build needs at least 2)"* ]]
  [[ $output == *"[FAIL] memory: 4 GB (a build needs at least 8 GB)"* ]]
  [[ $output == *"verdict: NOT READY (2 failure(s)"* ]]
}

@test "recommendations scale with --count" {
  cpuinfo_with 24 "fpu vmx"
  preflight
  [[ $output == *"[ok]   cores: 24"* ]]
  preflight --count 2
  [[ $output == *"[warn] cores: 24 (recommended 32 for 2 concurrent build(s))"* ]]
  [[ $output == *"[ok]   memory: 126 GB"* ]]
  [[ $output == *"[warn] free disk for /opt/labforge-runner"*"(recommended 1000 GB for 2 concurrent build(s))"* ]]
}

@test "a non-x86-64 host is NOT READY" {
  HOST_ARCH=aarch64 preflight
  [ "$status" -eq 1 ]
  [[ $output == *"[FAIL] architecture: aarch64 (labforge builds x86-64 appliances"* ]]
}

@test "install stops at a failed preflight before changing anything" {
  cpuinfo_with 32 "fpu"
  before=$(rs_snapshot)
  rs_install
  [ "$status" -eq 1 ]
  [[ $output == *"preflight failed: fix the [FAIL] items above"* ]]
  [ "$(rs_snapshot)" == "$before" ]
  [ -z "$(grep -v '^dpkg-query ' "$RS_RECORD/argv.log")" ]
}
