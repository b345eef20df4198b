#!/usr/bin/env bats
# The pre-warmed Packer template (packer/hedgehog-lab-prewarmed), checked with
# the Packer installed here (Debian's 1.6.6): everything but plugins.pkr.hcl is
# fully validated through build.sh --validate-only. It must be the standard
# build plus the warm stage: no provisioning of its own, only labforge warm.
# (test/integration/prewarmed-template.test.ts builds it for real under TCG.)

setup() {
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  T="$REPO/packer/hedgehog-lab-prewarmed"
  TMP="$(mktemp -d)"
}

teardown() { rm -rf "$TMP"; }

@test "prewarmed template: packer fmt clean" {
  run packer fmt -check -diff "$T"
  [ "$status" -eq 0 ]
}

@test "prewarmed template: everything but the plugin requirement validates with the local packer" {
  run "$T/build.sh" --validate-only --standard-image /srv/images/hedgehog-lab-standard-1.4.0.qcow2 --version 1.4.0
  [ "$status" -eq 0 ]
  [[ $output != *Error* ]]
}

@test "prewarmed template: validation fails for a broken template (the check can fail)" {
  cp "$T"/variables.pkr.hcl "$TMP/"
  sed 's/disk_discard *= "unmap"/disk_discard = "sometimes"/' "$T/hedgehog-lab-prewarmed.pkr.hcl" >"$TMP/t.pkr.hcl"
  mkdir "$TMP/seed" && touch "$TMP/seed/user-data" "$TMP/seed/meta-data" "$TMP/key"
  run packer validate -var "standard_image=/x.qcow2" -var "seed_dir=$TMP/seed" -var "ssh_private_key_file=$TMP/key" "$TMP"
  [ "$status" -ne 0 ]
  [[ $output == *discard* ]]
}

@test "prewarmed template: plugins.pkr.hcl alone holds required_plugins" {
  grep -q 'source *= "github.com/hashicorp/qemu"' "$T/plugins.pkr.hcl"
  [ "$(grep -l required_plugins "$T"/*.pkr.hcl)" = "$T/plugins.pkr.hcl" ]
}

@test "prewarmed template: reuses the standard image and calls the same warm module, no second provisioning path" {
  f="$T/hedgehog-lab-prewarmed.pkr.hcl"
  grep -Eq 'disk_image *= true' "$f"
  grep -Eq 'iso_url *= var.standard_image' "$f"
  grep -q 'warm --attach ${build.Host}:${build.Port}' "$f"
  # the only provisioner is shell-local (the warm); nothing is installed here
  [ "$(grep -c '^ *provisioner ' "$f")" -eq 1 ]
  grep -q '^ *provisioner "shell-local"' "$f"
  run grep -Eq 'install\.sh|apt-get|hedgehog-lab build-init|build-type' "$f"
  [ "$status" -eq 1 ]
}

@test "prewarmed build.sh: refuses a missing standard image with what to do" {
  run "$T/build.sh" --standard-image "$TMP/nope.qcow2"
  [ "$status" -eq 2 ]
  [[ $output == *"--standard-image: $TMP/nope.qcow2 does not exist"* ]]
  run "$T/build.sh"
  [ "$status" -eq 2 ]
  [[ $output == *"--standard-image is required"* ]]
}
