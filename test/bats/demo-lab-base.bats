#!/usr/bin/env bats
# packer/demo-lab/build-base.sh without building the image (that takes
# minutes; the integration tests build and boot it): usage errors, the input
# hash, shellcheck. Hash changes are checked on a copy of the script and its
# inputs in a temporary directory, never on the repository.

bats_require_minimum_version 1.5.0

setup() {
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  B="$REPO/packer/demo-lab/build-base.sh"
  TMP="$(mktemp -d)"
  mkdir -p "$TMP/repo/packer/demo-lab"
  cp "$B" "$TMP/repo/packer/demo-lab/"
  cp -R "$REPO/packer/guest" "$TMP/repo/packer/"
  C="$TMP/repo/packer/demo-lab/build-base.sh"
  export LABFORGE_CACHE_DIR="$TMP/cache"
}

teardown() { rm -rf "$TMP"; }

@test "an unknown flag exits 2 with one clear line" {
  run --separate-stderr "$B" --bogus
  [ "$status" -eq 2 ]
  [ -z "$output" ]
  [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
  [[ $stderr == *"unknown argument: --bogus"* ]]
}

@test "a bad disk size exits 2" {
  DEMO_LAB_DISK_SIZE=huge run --separate-stderr "$B" --print-hash
  [ "$status" -eq 2 ]
  [[ $stderr == *DEMO_LAB_DISK_SIZE* ]]
}

@test "--help prints the usage and exits 0" {
  run "$B" --help
  [ "$status" -eq 0 ]
  [[ $output == *"Usage: build-base.sh"* ]]
  [[ $output == *"--print-hash"* ]]
}

@test "--print-hash is stable and builds nothing" {
  h1="$("$B" --print-hash)"
  [[ $h1 =~ ^[0-9a-f]{16}$ ]]
  [ "$("$B" --print-hash)" = "$h1" ]
  [ ! -e "$TMP/cache" ]
  # a copy with the same inputs has the same hash
  [ "$("$C" --print-hash)" = "$h1" ]
}

@test "the hash covers the orchestrator, the script and the disk size" {
  h0="$("$C" --print-hash)"
  echo '# changed' >>"$TMP/repo/packer/guest/drivers/test-lab.sh"
  h1="$("$C" --print-hash)"
  [ "$h1" != "$h0" ]
  echo 'x' >"$TMP/repo/packer/guest/new-file"
  h2="$("$C" --print-hash)"
  [ "$h2" != "$h1" ]
  echo '# changed' >>"$C"
  h3="$("$C" --print-hash)"
  [ "$h3" != "$h2" ]
  h4="$(DEMO_LAB_DISK_SIZE=4G "$C" --print-hash)"
  [ "$h4" != "$h3" ]
}

@test "the package list is an input (the rootfs cache key changes with it)" {
  h0="$("$C" --print-hash)"
  sed -i 's/^  cloud-init$/  cloud-init less/' "$C"
  grep -q 'cloud-init less' "$C"
  [ "$("$C" --print-hash)" != "$h0" ]
}

@test "build-base.sh is shellcheck-clean" {
  run shellcheck -x "$B"
  [ "$status" -eq 0 ]
}

@test "the demo-lab Packer template is fmt clean and validates with the local packer (1.6.6: no packer block)" {
  T="$REPO/packer/demo-lab"
  run packer fmt -check -diff "$T"
  [ "$status" -eq 0 ]
  run grep -l 'required_plugins\|^packer *{' "$T"/*.pkr.hcl
  [ "$status" -eq 1 ]
  mkdir -p "$TMP/seed"
  printf '#cloud-config\n' >"$TMP/seed/user-data"
  printf 'instance-id: x\n' >"$TMP/seed/meta-data"
  ssh-keygen -q -t ed25519 -N '' -f "$TMP/key"
  touch "$TMP/base.qcow2"
  run packer validate -var "seed_dir=$TMP/seed" -var "ssh_private_key_file=$TMP/key" -var "base_image=$TMP/base.qcow2" "$T"
  [ "$status" -eq 0 ]
  # every contract variable is declared
  for v in version seed_dir ssh_private_key_file ssh_username cpus memory disk_size accelerator output_directory \
    base_image lab_driver lab_settings ssh_timeout; do
    grep -q "^variable \"$v\"" "$T/variables.pkr.hcl"
  done
  grep -q 'hedgehog-lab-seal --remove-all-authorized-keys' "$T/demo-lab.pkr.hcl"
}
