#!/usr/bin/env bats
# The seal (packer/guest/seal.sh, installed as hedgehog-lab-seal) on a file
# system tree that looks like a Hedgehog appliance right after its build or
# warm: nothing that grants access or pulls from the registry survives it (no
# registry credential, docker config, hhfab token, default user, build key).

setup() {
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  R="$(mktemp -d)"
  "$REPO/packer/guest/install.sh" --root "$R" --driver hedgehog-vlab >/dev/null
  mkdir -p "$R/etc/ssh" "$R/etc/sudoers.d" "$R/home/ubuntu/.ssh" "$R/home/labforge/.ssh" "$R/home/lab" \
    "$R/root/.docker" "$R/home/labforge/.docker" "$R/run/hedgehog-lab/registry" "$R/var/log" "$R/var/cache/hhfab/v1/x.oras"
  cat >"$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/bash
ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash
labforge:x:1001:1001::/home/labforge:/bin/bash
lab:x:1002:1002::/home/lab:/bin/bash
EOF
  printf 'root:*:19000::::::\nubuntu:$6$x$y:19000::::::\nlabforge:!:19000::::::\nlab:$6$a$b:19000::::::\n' >"$R/etc/shadow"
  chmod 0640 "$R/etc/shadow"
  printf 'root:x:0:\nsudo:x:27:ubuntu,lab\nubuntu:x:1000:\nlxd:x:110:ubuntu\n' >"$R/etc/group"
  printf 'root:*::\nsudo:*:ubuntu:ubuntu,lab\nubuntu:!::\n' >"$R/etc/gshadow"
  printf 'ubuntu:100000:65536\nlab:165536:65536\n' >"$R/etc/subuid"
  printf '# Created by cloud-init\nubuntu ALL=(ALL) NOPASSWD:ALL\nlab ALL=(ALL) NOPASSWD:ALL\n' >"$R/etc/sudoers.d/90-cloud-init-users"
  echo 'ssh-ed25519 AAAA build-key' >"$R/home/labforge/.ssh/authorized_keys"
  echo 'ssh-ed25519 AAAA default-user' >"$R/home/ubuntu/.ssh/authorized_keys"
  echo '{"auths":{"ghcr.io":{"auth":"dTp0"}}}' >"$R/root/.docker/config.json"
  echo '{"auths":{"ghcr.io":{"auth":"dTp0"}}}' >"$R/home/labforge/.docker/config.json"
  echo '{"auths":{"ghcr.io":{"auth":"dTp0"}}}' >"$R/run/hedgehog-lab/registry/config.json"
  printf 'DRIVER=hedgehog-vlab\nHHFAB_VERSION=v0.48.0\nHHFAB_JOIN_TOKEN=secret-join\nGHCR_PASSWORD=pw\nHHFAB_VLAB_GEN_ARGS=--mesh-links-count 2\n' \
    >"$R/etc/hedgehog-lab/lab.conf"
  echo 'machine' >"$R/etc/machine-id"
  touch "$R/etc/ssh/ssh_host_ed25519_key"
  SEAL="$R/usr/local/sbin/hedgehog-lab-seal"
}

teardown() { rm -rf "$R"; }

@test "the seal leaves no registry credential, docker config, hhfab token, default user or build key" {
  run "$SEAL" --root "$R" --remove-all-authorized-keys --remove-user ubuntu
  [ "$status" -eq 0 ]
  [[ $output == *"removed user ubuntu"* ]]
  [[ $output == *"registry credentials removed"* ]]
  # no credential anywhere in the tree
  run grep -rl -e 'dTp0' -e 'secret-join' -e 'GHCR_PASSWORD' "$R"
  [ "$status" -eq 1 ]
  [ ! -e "$R/run/hedgehog-lab/registry" ]
  [ -z "$(find "$R" -path '*/.docker/config.json')" ]
  # no default user: not in any account file, no sudo rule, no home
  run grep -rlw ubuntu "$R/etc/passwd" "$R/etc/shadow" "$R/etc/group" "$R/etc/gshadow" "$R/etc/subuid" "$R/etc/sudoers.d"
  [ "$status" -eq 1 ]
  [ ! -e "$R/home/ubuntu" ]
  grep -qx 'sudo:x:27:lab' "$R/etc/group"
  grep -qx 'lxd:x:110:' "$R/etc/group"
  grep -qx 'sudo:\*::lab' "$R/etc/gshadow"
  [ "$(stat -c %a "$R/etc/shadow")" = 640 ]
  # no build key; the attendee user and the lab's settings and cache stay
  [ -z "$(find "$R" -name 'authorized_keys*')" ]
  grep -q '^lab:' "$R/etc/passwd"
  grep -q '^lab ALL' "$R/etc/sudoers.d/90-cloud-init-users"
  grep -qx 'HHFAB_VLAB_GEN_ARGS=--mesh-links-count 2' "$R/etc/hedgehog-lab/lab.conf"
  grep -qx 'HHFAB_VERSION=v0.48.0' "$R/etc/hedgehog-lab/lab.conf"
  [ -d "$R/var/cache/hhfab/v1/x.oras" ]
}

@test "the manifest's seal command and the template's seal remove the default user" {
  grep -q 'seal: sudo -n /usr/local/sbin/hedgehog-lab-seal --remove-all-authorized-keys --remove-user ubuntu' "$REPO/packer/hedgehog-lab/appliance.yml"
  grep -q 'hedgehog-lab-seal --remove-all-authorized-keys --remove-user ubuntu' "$REPO/packer/hedgehog-lab/hedgehog-lab.pkr.hcl"
}

@test "removing a user the tree does not have is a note, not a failure; a bad name is a usage error" {
  run "$SEAL" --root "$R" --remove-user nobody-here
  [ "$status" -eq 0 ]
  [[ $output == *"no user nobody-here in the tree: nothing to remove"* ]]
  run "$SEAL" --root "$R" --remove-user 'a b'
  [ "$status" -eq 2 ]
  [[ $output == *"--remove-user needs a user name"* ]]
}
