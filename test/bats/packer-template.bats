#!/usr/bin/env bats
# The appliance Packer templates, checked with the Packer installed here
# (Debian's 1.6.6: no `packer init`, qemu builder built in, rejects
# required_plugins). The Hedgehog template is fully validated (`packer
# validate`, not only -syntax-only) through its one-line build.sh, which is
# `labforge build --appliance packer/hedgehog-lab`: the per-build key and seed
# and the variable contract come from packer-build, and the ISO checksum is a
# literal in the manifest, so nothing is fetched. The seed renderer itself is
# tested in test/unit/seed-render.test.ts.

setup() {
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  T="$REPO/packer/hedgehog-lab"
  TMP="$(mktemp -d)"
}

teardown() { rm -rf "$TMP"; }

@test "the appliance templates are packer fmt clean" {
  run packer fmt -check -diff "$T"
  [ "$status" -eq 0 ]
  run packer fmt -check -diff "$REPO/packer/demo-lab"
  [ "$status" -eq 0 ]
}

@test "build.sh validates the Hedgehog appliance with the local packer through the variable contract" {
  # placeholders for what a builder supplies: hhfab's SHA-256 (empty in the manifest) and the registry credential
  PKR_VAR_registry_auth=validation:placeholder run "$T/build.sh" --version 1.0.0 --validate-only --output-dir "$TMP/out" \
    --vars "hhfab_sha256=$(printf '0%.0s' {1..64})"
  [ "$status" -eq 0 ]
  [[ $output == *"packer validate: hedgehog-lab is valid"* ]]
}

@test "validation fails for a template that is wrong (the check can fail)" {
  cp -r "$T" "$TMP/hedgehog-lab"
  sed -i 's/disk_discard *= "unmap"/disk_discard = "sometimes"/' "$TMP/hedgehog-lab/hedgehog-lab.pkr.hcl"
  # Without the guest scripts beside it the template cannot reach ../guest: link them as in the repository.
  ln -s "$REPO/packer/guest" "$TMP/guest"
  PKR_VAR_registry_auth=validation:placeholder run node "$REPO/bin/labforge" build --appliance "$TMP/hedgehog-lab" \
    --version 1.0.0 --validate-only --output-dir "$TMP/out" --vars "hhfab_sha256=$(printf '0%.0s' {1..64})"
  [ "$status" -ne 0 ]
  [[ $output == *discard* ]]
}

@test "plugins.pkr.hcl holds the qemu plugin requirement, and only it mentions required_plugins" {
  grep -q 'source *= "github.com/hashicorp/qemu"' "$T/plugins.pkr.hcl"
  [ "$(grep -l required_plugins "$T"/*.pkr.hcl)" = "$T/plugins.pkr.hcl" ]
}

@test "the template builds the standard image the way the issue asks" {
  f="$T/hedgehog-lab.pkr.hcl"
  grep -Eq 'accelerator *= var.accelerator' "$f"
  grep -Eq 'default *= "kvm"' "$T/variables.pkr.hcl"
  grep -Eq 'headless *= true' "$f"
  grep -Eq 'machine_type *= "q35"' "$f"
  grep -Fq '["-cpu", "host"]' "$f"
  grep -Eq 'disk_interface *= "virtio"' "$f"
  grep -Eq 'disk_discard *= "unmap"' "$f"
  grep -q 'install.sh --driver hedgehog-vlab --build-type standard' "$f"
  grep -q 'hedgehog-lab-seal --remove-all-authorized-keys' "$f"
  run grep -Eqi 'ssh_password|password *=' "$f" "$T/variables.pkr.hcl"
  [ "$status" -eq 1 ]
}
