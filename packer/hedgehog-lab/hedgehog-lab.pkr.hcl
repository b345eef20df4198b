# The standard Hedgehog lab appliance: Ubuntu 24.04 (autoinstall), hhfab (pinned
# and checked by SHA-256), the hedgehog-lab orchestrator with the hedgehog-vlab
# driver, marker "standard", and hhfab's download cache filled (`hhfab precache
# --vlab`) so that a copy's first boot initializes the lab without a registry
# credential. The lab itself is initialized on the first boot of every copy. The
# pre-warmed variant is this image plus the warm stage (labforge vlab-warm),
# which runs the same orchestrator (`hedgehog-lab build-init`); there is no
# second provisioning path. Build it with `labforge build --appliance
# packer/hedgehog-lab` (or the packer-build action): it makes the per-build SSH
# key and seed, and passes the profile's sizes and topology.
#
# Not installed, on purpose: docker and oras. Hedgehog's VLAB page asks for
# docker only "to login into the OCI registry" and for oras only to run its
# hhfab download script; hhfab v0.48.0 talks to the registry itself (oras-go,
# credentials read from docker's config file: pkg/artificer/downloader.go), so
# the build writes that file on tmpfs for the pre-fetch and removes it.

locals {
  guest_dir        = "${path.root}/../guest"
  vm_name          = "hedgehog-lab-standard-${var.version}.qcow2"
  lab_settings_b64 = base64encode(var.lab_settings)
}

source "qemu" "hedgehog-lab" {
  iso_url          = var.iso_url
  iso_checksum     = var.iso_checksum
  output_directory = var.output_directory
  vm_name          = local.vm_name
  format           = "qcow2"

  accelerator  = var.accelerator
  headless     = true
  machine_type = "q35"
  cpus         = var.cpus
  memory       = var.memory
  # Nested virtualization: the VLAB's switches and servers are VMs.
  qemuargs = [["-cpu", "host"]]

  disk_size          = var.disk_size
  disk_interface     = "virtio"
  disk_discard       = "unmap"
  disk_detect_zeroes = "unmap"
  disk_compression   = true
  net_device         = "virtio-net"

  # NoCloud seed on a CD labelled CIDATA; "autoinstall" on the kernel command
  # line starts the install without a confirmation prompt.
  cd_files  = ["${var.seed_dir}/user-data", "${var.seed_dir}/meta-data"]
  cd_label  = "cidata"
  boot_wait = "10s"
  boot_command = [
    "e<wait>",
    "<down><down><down><end>",
    " autoinstall",
    "<f10>",
  ]

  communicator         = "ssh"
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "90m"
  shutdown_command     = "sudo shutdown -P now"
  shutdown_timeout     = "15m"
}

build {
  sources = ["source.qemu.hedgehog-lab"]

  provisioner "shell" {
    inline = [
      "cloud-init status --wait >/dev/null || { cloud-init status --long; exit 1; }",
      "rm -rf /tmp/hedgehog-lab-guest && mkdir -p /tmp/hedgehog-lab-guest",
    ]
  }

  provisioner "file" {
    source      = "${local.guest_dir}/"
    destination = "/tmp/hedgehog-lab-guest"
  }

  # The environment goes through a file Packer uploads (use_env_var_file), read
  # and deleted at once: the registry credential never reaches a command line.
  provisioner "shell" {
    use_env_var_file = true
    execute_command  = "sudo -n bash -c 'set -a; . {{ .EnvVarFile }}; set +a; rm -f {{ .EnvVarFile }}; bash -euo pipefail {{ .Path }}'"
    environment_vars = [
      "DEBIAN_FRONTEND=noninteractive",
      "LAB_SETTINGS_B64=${local.lab_settings_b64}",
      "HHFAB_VERSION=${var.hhfab_version}",
      "HHFAB_URL=${var.hhfab_url}",
      "HHFAB_SHA256=${var.hhfab_sha256}",
      "REGISTRY_AUTH=${var.registry_auth}",
    ]
    inline = [
      "apt-get update",
      "# hhfab's VLAB needs sudo, qemu-img, qemu-system-x86_64, socat, ssh, less (pkg/hhfab/vlabrunner.go VLABCmds)",
      "apt-get install -y --no-install-recommends jq qemu-system-x86 qemu-utils socat openssh-client less sudo curl ca-certificates",
      "curl -fsSL --proto '=https' --retry 3 -o /tmp/hhfab.tar.gz \"$HHFAB_URL\"",
      "echo \"$HHFAB_SHA256  /tmp/hhfab.tar.gz\" | sha256sum -c -",
      "mkdir -p /tmp/hhfab && tar -xzf /tmp/hhfab.tar.gz -C /tmp/hhfab",
      "install -m 0755 /tmp/hhfab/hhfab-linux-amd64/hhfab /usr/local/bin/hhfab",
      "test \"$(/usr/local/bin/hhfab --version)\" = \"hhfab version $HHFAB_VERSION\"",
      "rm -rf /tmp/hhfab /tmp/hhfab.tar.gz",
      "bash /tmp/hedgehog-lab-guest/install.sh --driver hedgehog-vlab --build-type standard",
      "printf '%s' \"$LAB_SETTINGS_B64\" | base64 -d >/tmp/lab-settings",
      "if grep -vEq '^([A-Za-z_][A-Za-z0-9_]*=.*|[[:space:]]*(#.*)?)$' /tmp/lab-settings; then echo 'lab_settings: every line must be KEY=VALUE' >&2; exit 1; fi",
      "if [ -s /tmp/lab-settings ]; then sed -e '$a\\' /tmp/lab-settings >>/etc/hedgehog-lab/lab.conf; fi",
      "grep -qx \"HHFAB_VERSION=$HHFAB_VERSION\" /etc/hedgehog-lab/lab.conf || { echo \"lab.conf does not pin HHFAB_VERSION=$HHFAB_VERSION (appliance.yml lab.settings)\" >&2; exit 1; }",
      "# The registry credential, in docker's config format, on tmpfs only for the pre-fetch.",
      "install -d -m 0700 /run/hedgehog-lab/registry",
      "(umask 077; printf '{\"auths\":{\"ghcr.io\":{\"auth\":\"%s\"}}}\\n' \"$(printf '%s' \"$REGISTRY_AUTH\" | base64 -w0)\" >/run/hedgehog-lab/registry/config.json)",
      "unset REGISTRY_AUTH",
      "status=0; /usr/local/lib/hedgehog-lab/drivers/hedgehog-vlab.sh precache || status=$?",
      "rm -rf /run/hedgehog-lab/registry",
      "test $status -eq 0",
      "rm -rf /tmp/hedgehog-lab-guest /tmp/lab-settings",
      "apt-get clean",
    ]
  }

  # Clone hygiene last: new machine-id and host keys on first boot, cloud-init
  # reset, the build key and every other authorized key removed, registry
  # credentials removed, free space trimmed.
  provisioner "shell" {
    execute_command = "sudo -n env {{ .Vars }} bash -euo pipefail '{{ .Path }}'"
    inline          = ["/usr/local/sbin/hedgehog-lab-seal --remove-all-authorized-keys --remove-user ubuntu"]
  }

  # The package inventory the seal took (the image is final now), fetched into
  # the build's output directory: packer-build turns it into the appliance's
  # CycloneDX SBOM beside the OVA.
  provisioner "file" {
    direction   = "download"
    source      = "/var/lib/hedgehog-lab/sbom-inventory.json"
    destination = "${var.output_directory}/sbom-inventory.json"
  }
}
