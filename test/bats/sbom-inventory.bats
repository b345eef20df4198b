#!/usr/bin/env bats
# The SBOM package inventory (packer/guest/sbom-inventory.sh), taken by the
# seal of a tree installed by install.sh. The tree's dpkg database is a small
# hand-written status file; the real dpkg-query reads it (--admindir).

setup() {
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  ROOT="$(mktemp -d)"
  "$REPO/packer/guest/install.sh" --root "$ROOT" --driver test-lab >/dev/null
  printf 'root:x:0:0::/root:/bin/bash\n' >"$ROOT/etc/passwd"
  printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n' \
    >"$ROOT/etc/os-release"
  mkdir -p "$ROOT/var/lib/dpkg"
  cat >"$ROOT/var/lib/dpkg/status" <<'STATUS'
Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u7
Description: GNU C Library: Shared libraries

Package: openssh-server
Status: install ok installed
Priority: optional
Section: net
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u3
Description: secure shell (SSH) server

Package: cloud-init
Status: hold ok installed
Priority: optional
Section: admin
Architecture: all
Version: 22.4.2-1
Description: initialization and customization tool for cloud instances

Package: libgcc-s1
Status: install ok installed
Priority: optional
Section: libs
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14+deb12u1
Description: GCC support library

Package: nano
Status: deinstall ok config-files
Priority: optional
Section: editors
Architecture: amd64
Version: 7.2-1
Description: small editor
STATUS
  INV="$ROOT/var/lib/hedgehog-lab/sbom-inventory.json"
}

teardown() {
  rm -rf "$ROOT"
}

pkg() { jq -c --arg n "$1" '.packages[] | select(.name == $n)' "$INV"; }

@test "the seal takes the inventory: every installed dpkg package with version, architecture and source" {
  printf 'HHFAB_VERSION=v0.41.3\n' >>"$ROOT/etc/hedgehog-lab/lab.conf"
  run "$REPO/packer/guest/seal.sh" --root "$ROOT"
  [ "$status" -eq 0 ]
  [[ $output == *"sbom-inventory: 4 packages of Debian GNU/Linux 12 (bookworm) written to /var/lib/hedgehog-lab/sbom-inventory.json"* ]]
  [ "$(jq -r .inventoryVersion "$INV")" = 1 ]
  [[ $(jq -r .takenAt "$INV") =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]]
  [ "$(jq -c .os "$INV")" = '{"id":"debian","versionId":"12","versionCodename":"bookworm","prettyName":"Debian GNU/Linux 12 (bookworm)"}' ]
  # sorted by name; the removed package (config files only) is not installed
  [ "$(jq -r '[.packages[].name] | join(" ")' "$INV")" = "cloud-init libc6 libgcc-s1 openssh-server" ]
  [ "$(pkg libc6)" = '{"name":"libc6","version":"2.36-9+deb12u7","architecture":"amd64","sourceName":"glibc","sourceVersion":"2.36-9+deb12u7"}' ]
  [ "$(pkg openssh-server)" = '{"name":"openssh-server","version":"1:9.2p1-2+deb12u3","architecture":"amd64","sourceName":"openssh","sourceVersion":"1:9.2p1-2+deb12u3"}' ]
  # no Source field: the package is its own source; a source with its own version keeps it
  [ "$(pkg cloud-init)" = '{"name":"cloud-init","version":"22.4.2-1","architecture":"all","sourceName":"cloud-init","sourceVersion":"22.4.2-1"}' ]
  [ "$(pkg libgcc-s1 | jq -r '.sourceName + " " + .sourceVersion')" = "gcc-12 12.2.0-14" ]
  # labforge's own parts, as installed, with their hashes; the lab's recorded versions
  [ "$(jq -r .labforge.orchestrator.path "$INV")" = /usr/local/sbin/hedgehog-lab ]
  [ "$(jq -r .labforge.orchestrator.sha256 "$INV")" = "$(sha256sum "$REPO/packer/guest/hedgehog-lab" | cut -d' ' -f1)" ]
  [ "$(jq -r '[.labforge.drivers[].name] | join(" ")' "$INV")" = "hedgehog-vlab test-lab" ]
  [ "$(jq -r '.labforge.drivers[] | select(.name == "test-lab") | .sha256' "$INV")" = "$(sha256sum "$REPO/packer/guest/drivers/test-lab.sh" | cut -d' ' -f1)" ]
  [ "$(jq -r .labforge.driver "$INV")" = test-lab ]
  [ "$(jq -r .labforge.buildType "$INV")" = standard ]
  [ "$(jq -c .lab "$INV")" = '{"versions":{"HHFAB_VERSION":"v0.41.3"},"tools":[]}' ]
}

@test "the lab tool is listed with its hash when the image has it" {
  mkdir -p "$ROOT/usr/local/bin"
  printf '#!/bin/sh\necho hhfab\n' >"$ROOT/usr/local/bin/hhfab"
  run "$REPO/packer/guest/sbom-inventory.sh" --root "$ROOT"
  [ "$status" -eq 0 ]
  [ "$(jq -r '.lab.tools[0].name + " " + .lab.tools[0].path' "$INV")" = "hhfab /usr/local/bin/hhfab" ]
  [ "$(jq -r '.lab.tools[0].sha256' "$INV")" = "$(sha256sum "$ROOT/usr/local/bin/hhfab" | cut -d' ' -f1)" ]
}

@test "the installed copy writes where --output says, and reads the real system's database" {
  run "$ROOT/usr/local/sbin/hedgehog-lab-sbom-inventory" --output "$ROOT/here.json"
  [ "$status" -eq 0 ]
  # this machine is Debian: its own dpkg database lists dpkg itself
  [ "$(jq -r '.packages[] | select(.name == "dpkg") | .sourceName' "$ROOT/here.json")" = dpkg ]
  [ "$(jq -r '.packages | length' "$ROOT/here.json")" -gt 50 ]
}

@test "a tree without a dpkg database: the inventory fails clearly, the seal says there is none" {
  rm -rf "$ROOT/var/lib/dpkg"
  run "$REPO/packer/guest/sbom-inventory.sh" --root "$ROOT"
  [ "$status" -eq 1 ]
  [[ $output == "sbom-inventory.sh: no dpkg database at $ROOT/var/lib/dpkg (the inventory needs a Debian or Ubuntu tree)" ]]
  run "$REPO/packer/guest/seal.sh" --root "$ROOT"
  [ "$status" -eq 0 ]
  [[ $output == *"no dpkg database in the tree: no SBOM package inventory"* ]]
  [ ! -e "$INV" ]
}

@test "a failing inventory fails the seal; bad arguments are usage errors" {
  printf 'Package: broken\nStatus: install ok installed\nVersion: 1\n this is no field\n\n' >"$ROOT/var/lib/dpkg/status"
  run "$REPO/packer/guest/seal.sh" --root "$ROOT"
  [ "$status" -eq 1 ]
  [[ $output == *"sbom-inventory.sh: dpkg-query failed on $ROOT/var/lib/dpkg"* ]]
  [[ $output == *"the SBOM package inventory failed"* ]]
  [ ! -e "$INV" ]
  run "$REPO/packer/guest/sbom-inventory.sh" --root "$ROOT/missing"
  [ "$status" -eq 2 ]
  [[ $output == *"--root: '$ROOT/missing' is not a directory"* ]]
  run "$REPO/packer/guest/sbom-inventory.sh" --bogus
  [ "$status" -eq 2 ]
}

@test "every appliance template downloads the inventory after the seal, into its output directory" {
  checked=0
  for f in "$REPO"/packer/*/*.pkr.hcl; do
    grep -q 'hedgehog-lab-seal' "$f" || continue
    checked=$((checked + 1))
    seal_line="$(grep -n 'hedgehog-lab-seal --remove-all-authorized-keys' "$f" | tail -n 1 | cut -d: -f1)"
    download_line="$(grep -n 'direction *= "download"' "$f" | cut -d: -f1)"
    [ -n "$download_line" ] && [ "$download_line" -gt "$seal_line" ]
    grep -Eq 'source *= "/var/lib/hedgehog-lab/sbom-inventory.json"' "$f"
    grep -Eq 'destination *= "\$\{var.output_directory\}/sbom-inventory.json"' "$f"
    # nothing provisions after the download (the image is final at the seal)
    [ "$(awk -v from="$download_line" 'NR > from && /provisioner "/' "$f" | wc -l)" -eq 0 ]
  done
  [ "$checked" -ge 2 ] # demo-lab and hedgehog-lab
}
