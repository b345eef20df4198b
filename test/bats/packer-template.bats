#!/usr/bin/env bats
# The Hedgehog lab Packer template, checked with the Packer installed here
# (Debian's 1.6.6: no `packer init`, qemu builder built in, rejects
# required_plugins). Everything but plugins.pkr.hcl is fully validated
# (`packer validate`, not only -syntax-only) through build.sh --validate-only,
# which copies the template without that file for Packer < 1.7. The ISO is not
# needed to validate; only its checksum must not be a URL to fetch.

setup() {
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  T="$REPO/packer/hedgehog-lab"
  TMP="$(mktemp -d)"
  ZERO_SUM="sha256:$(printf '0%.0s' $(seq 64))"
}

teardown() { rm -rf "$TMP"; }

@test "the template is packer fmt clean" {
  run packer fmt -check -diff "$T"
  [ "$status" -eq 0 ]
}

@test "everything but the plugin requirement validates with the local packer" {
  run "$T/build.sh" --validate-only -- -var "iso_checksum=$ZERO_SUM" -var "iso_url=file:///srv/iso/ubuntu-24.04-live-server-amd64.iso"
  [ "$status" -eq 0 ]
  [[ $output != *Error* ]]
}

@test "validation fails for a template that is wrong (the check can fail)" {
  mkdir -p "$TMP/hedgehog-lab"
  cp "$T"/variables.pkr.hcl "$TMP/hedgehog-lab/"
  sed 's/disk_discard *= "unmap"/disk_discard = "sometimes"/' "$T/hedgehog-lab.pkr.hcl" >"$TMP/hedgehog-lab/hedgehog-lab.pkr.hcl"
  ssh-keygen -q -t ed25519 -N '' -f "$TMP/key"
  "$T/render-seed.sh" --out "$TMP/seed" --public-key "$TMP/key.pub" 2>/dev/null
  run packer validate -var "seed_dir=$TMP/seed" -var "ssh_private_key_file=$TMP/key" -var "iso_checksum=$ZERO_SUM" "$TMP/hedgehog-lab"
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
  grep -q 'hedgehog-lab-seal --remove-authorized-keys' "$f"
  run grep -Eqi 'ssh_password|password *=' "$f" "$T/variables.pkr.hcl"
  [ "$status" -eq 1 ]
}

@test "the seed carries the per-build key and no password unless one is given" {
  ssh-keygen -q -t ed25519 -N '' -C per-build -f "$TMP/key"
  run "$T/render-seed.sh" --out "$TMP/seed" --public-key "$TMP/key.pub"
  [ "$status" -eq 0 ]
  head -n1 "$TMP/seed/user-data" | grep -qx '#cloud-config'
  grep -qF "$(cut -d' ' -f2 "$TMP/key.pub")" "$TMP/seed/user-data"
  grep -q 'lock_passwd: true' "$TMP/seed/user-data"
  run grep -c 'passwd:' "$TMP/seed/user-data"
  [ "$output" = 1 ] # only lock_passwd
  [ "$(stat -c %a "$TMP/seed/user-data")" = 600 ]
}

@test "a console password becomes a matching SHA-512 hash, never plain text" {
  ssh-keygen -q -t ed25519 -N '' -f "$TMP/key"
  LABFORGE_CONSOLE_PASSWORD='correct horse' run "$T/render-seed.sh" --out "$TMP/seed" --public-key "$TMP/key.pub"
  [ "$status" -eq 0 ]
  run grep -c 'correct horse' "$TMP/seed/user-data"
  [ "$output" = 0 ]
  hash="$(sed -nE 's/^ *passwd: "(.*)"$/\1/p' "$TMP/seed/user-data")"
  [[ $hash == '$6$'* ]]
  salt="$(cut -d'$' -f3 <<<"$hash")"
  [ "$(printf 'correct horse' | openssl passwd -6 -salt "$salt" -stdin)" = "$hash" ]
}

@test "render-seed.sh refuses a file that is not a public key" {
  echo "not a key" >"$TMP/bad.pub"
  run "$T/render-seed.sh" --out "$TMP/seed" --public-key "$TMP/bad.pub"
  [ "$status" -eq 2 ]
  [[ $output == *"is not an OpenSSH public key"* ]]
}
