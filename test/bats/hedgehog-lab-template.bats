#!/usr/bin/env bats
# The Hedgehog appliance's template and manifest, validated with the Packer
# installed here (Debian's 1.6.6) through `labforge build --validate-only`
# (the per-build key and seed and the variable contract come from
# packer-build), for both resource profiles; and the pins the build refuses
# to run without.

setup() {
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  T="$REPO/packer/hedgehog-lab"
  TMP="$(mktemp -d)"
  # What a builder supplies: the archive's SHA-256 (the manifest leaves it empty) and the credential (environment).
  SHA="hhfab_sha256=$(printf '0%.0s' {1..64})"
  export PKR_VAR_registry_auth=validation:placeholder
}

teardown() { rm -rf "$TMP"; }

@test "the template validates for the small (mesh) topology" {
  run node "$REPO/bin/labforge" build --appliance "$T" --profile small --version 1.0.0 --validate-only --output-dir "$TMP/out" --vars "$SHA"
  [ "$status" -eq 0 ]
  [[ $output == *"packer validate: hedgehog-lab is valid"* ]]
}

@test "the template validates for the default (spine-leaf) topology" {
  run node "$REPO/bin/labforge" build --appliance "$T" --profile default --version 1.0.0 --validate-only --output-dir "$TMP/out" --vars "$SHA"
  [ "$status" -eq 0 ]
  [[ $output == *"packer validate: hedgehog-lab is valid"* ]]
}

@test "without hhfab's SHA-256 the build is refused at validation, saying where it goes" {
  run node "$REPO/bin/labforge" build --appliance "$T" --version 1.0.0 --validate-only --output-dir "$TMP/out"
  [ "$status" -ne 0 ]
  [[ $output == *"The hhfab_sha256 is not set"* ]]
}

@test "without a registry credential in the environment the build is refused at validation" {
  unset PKR_VAR_registry_auth
  run node "$REPO/bin/labforge" build --appliance "$T" --version 1.0.0 --validate-only --output-dir "$TMP/out" --vars "$SHA"
  [ "$status" -ne 0 ]
  [[ $output == *"The registry_auth is not set"* ]]
  [[ $output == *PKR_VAR_registry_auth* ]]
}

@test "the registry credential is sensitive, passed through an env-var file, and never on a command line" {
  grep -Pzo 'variable "registry_auth" \{[^}]*sensitive += true' "$T/variables.pkr.hcl" >/dev/null
  grep -q 'use_env_var_file = true' "$T/hedgehog-lab.pkr.hcl"
  grep -q 'rm -f {{ .EnvVarFile }}' "$T/hedgehog-lab.pkr.hcl"
  # registry_auth appears only in that provisioner's environment_vars
  [ "$(grep -c 'var.registry_auth' "$T/hedgehog-lab.pkr.hcl")" -eq 1 ]
  grep -q '"REGISTRY_AUTH=${var.registry_auth}",' "$T/hedgehog-lab.pkr.hcl"
  # the credential file lives on tmpfs only for the pre-fetch
  grep -q 'rm -rf /run/hedgehog-lab/registry' "$T/hedgehog-lab.pkr.hcl"
}

@test "hhfab is pinned and checked: no curl | bash, a SHA-256 check, the version the driver pins" {
  run grep -E 'curl[^"]*\| *(ba)?sh' "$T/hedgehog-lab.pkr.hcl" "$T/variables.pkr.hcl"
  [ "$status" -eq 1 ]
  grep -q 'sha256sum -c -' "$T/hedgehog-lab.pkr.hcl"
  grep -qx '    hhfab_version: v0.48.0' "$T/appliance.yml"
  grep -qx '    HHFAB_VERSION: v0.48.0' "$T/appliance.yml"
  grep -q 'hhfab/hhfab-linux-amd64/hhfab /usr/local/bin/hhfab' "$T/hedgehog-lab.pkr.hcl"
}

@test "the profiles carry the topology and sizes with their basis" {
  m="$T/appliance.yml"
  [ "$(yq -r '.resources.profiles.small."lab-settings".HHFAB_VLAB_GEN_ARGS' "$m")" = "--mesh-links-count 2 --eslag-leaf-groups 2" ]
  [ "$(yq -r '.resources.profiles.default."lab-settings".HHFAB_VLAB_GEN_ARGS' "$m")" = "" ]
  [ "$(yq -r '.resources.profiles.small.cpus' "$m")" -eq 24 ]
  [ "$(yq -r '.resources.profiles.small."memory-mib"' "$m")" -eq 23552 ]
  [ "$(yq -r '.resources.profiles.default."memory-mib"' "$m")" -eq 43520 ]
  [[ $(yq -r '.resources.profiles.small.basis' "$m") == *"githedgehog/docs 9cff1599 docs/vlab/overview.md"* ]]
  [[ $(yq -r '.resources.profiles.default.basis' "$m") == *"Spine-Leaf: 46 vCPUs, 39424 MB, 450 GB disk"* ]]
}

@test "the OVF of each topology declares Ubuntu and the profile's vCPUs and memory" {
  qemu-img create -q -f qcow2 "$TMP/disk.qcow2" 64M
  for p in small:24:23552 default:48:43520; do
    IFS=: read -r profile cpus mib <<<"$p"
    run node "$REPO/bin/labforge" pack-ova --appliance "$T" --profile "$profile" --image "$TMP/disk.qcow2" \
      --out "$TMP/$profile.ova" --build-type standard --version 1.0.0 --git-sha deadbeef
    [ "$status" -eq 0 ]
    ovf="$(tar -xOf "$TMP/$profile.ova" hedgehog-lab-standard-1.0.0.ovf)"
    [[ $ovf == *'ovf:id="94"'* ]]
    [[ $ovf == *'ubuntu64Guest'* ]]
    grep -A1 'ResourceType>3<' <<<"$ovf" | grep -q "VirtualQuantity>$cpus<"
    grep -A1 'ResourceType>4<' <<<"$ovf" | grep -q "VirtualQuantity>$mib<"
  done
}
