# The standard Hedgehog lab appliance: Ubuntu 24.04 (autoinstall), the
# hedgehog-lab orchestrator with the hedgehog-vlab driver, marker "standard".
# The lab is initialized on the first boot of every copy. The pre-warmed
# variant is this image plus the warm stage (labforge vlab-warm), which runs
# the same orchestrator (`hedgehog-lab build-init`); there is no second
# provisioning path. Build it with `labforge build --appliance packer/hedgehog-lab`
# (or the packer-build action): it makes the per-build SSH key and seed.

locals {
  guest_dir = "${path.root}/../guest"
  vm_name   = "hedgehog-lab-standard-${var.version}.qcow2"
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
      "cloud-init status --wait || true",
      "mkdir -p /tmp/hedgehog-lab-guest",
    ]
  }

  provisioner "file" {
    source      = "${local.guest_dir}/"
    destination = "/tmp/hedgehog-lab-guest"
  }

  provisioner "shell" {
    execute_command = "sudo -n env {{ .Vars }} bash -euo pipefail '{{ .Path }}'"
    environment_vars = [
      "DEBIAN_FRONTEND=noninteractive",
      "HHFAB_INSTALL_COMMAND=${var.hhfab_install_command}",
    ]
    inline = [
      "apt-get update",
      "apt-get install -y --no-install-recommends jq qemu-system-x86 qemu-utils socat curl ca-certificates",
      "bash -c \"$HHFAB_INSTALL_COMMAND\"",
      "test -x /usr/local/bin/hhfab",
      "bash /tmp/hedgehog-lab-guest/install.sh --driver hedgehog-vlab --build-type standard",
      "rm -rf /tmp/hedgehog-lab-guest",
      "apt-get clean",
    ]
  }

  # Clone hygiene last: new machine-id and host keys on first boot, cloud-init
  # reset, the build key removed, free space trimmed.
  provisioner "shell" {
    execute_command = "sudo -n env {{ .Vars }} bash -euo pipefail '{{ .Path }}'"
    inline          = ["/usr/local/sbin/hedgehog-lab-seal --remove-all-authorized-keys"]
  }
}
