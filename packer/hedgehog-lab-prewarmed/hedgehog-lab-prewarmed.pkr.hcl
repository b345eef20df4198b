# The pre-warmed Hedgehog lab appliance = the standard image + the warm stage.
#
# There is no provisioning here: the standard build (packer/hedgehog-lab)
# installs everything. This template boots a copy of the standard build's
# qcow2 (the standard artifact is not modified), lets cloud-init authorize a
# per-build key from a NoCloud seed (the standard image was sealed, so
# cloud-init runs again and its build key is gone), and hands the running
# machine to `labforge warm --attach`: the same warm module as the vlab-warm
# action. It runs the orchestrator's build-init, proves readiness, writes the
# `prewarmed` marker and the warm manifest, and seals. Packer then shuts the
# machine down and writes the pre-warmed qcow2. Run it through build.sh.

locals {
  vm_name = "hedgehog-lab-prewarmed-${var.version}.qcow2"
  # The warm's time budget, in minutes, from the variables.
  warm_flags = join(" ", [
    "--ssh-user ${var.ssh_username}",
    "--ssh-key-path ${var.ssh_private_key_file}",
    "--version ${var.version}",
    "--init-timeout-minutes ${var.init_timeout_minutes}",
    "--ready-timeout-minutes ${var.ready_timeout_minutes}",
    var.warm_extra_flags,
  ])
}

source "qemu" "hedgehog-lab-prewarmed" {
  disk_image       = true
  iso_url          = var.standard_image
  iso_checksum     = var.standard_image_checksum
  output_directory = var.output_directory
  vm_name          = local.vm_name
  format           = "qcow2"

  accelerator  = var.accelerator
  headless     = true
  machine_type = "q35"
  cpus         = var.cpus
  memory       = var.memory
  # Nested virtualization by default (-cpu host): the VLAB's switches and
  # servers are VMs.
  qemuargs = var.qemu_args

  disk_interface     = "virtio"
  disk_discard       = "unmap"
  disk_detect_zeroes = "unmap"
  disk_compression   = true
  skip_resize_disk   = true
  net_device         = "virtio-net"

  # NoCloud seed (user-data with this build's public key) on a CD labelled CIDATA.
  cd_files = ["${var.seed_dir}/user-data", "${var.seed_dir}/meta-data"]
  cd_label = "cidata"

  communicator         = "ssh"
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "30m"
  # The warm has sealed the machine; Packer's session is still open.
  shutdown_command = "sudo -n systemctl poweroff"
  shutdown_timeout = "15m"
}

build {
  sources = ["source.qemu.hedgehog-lab-prewarmed"]

  # The warm stage, and nothing else: labforge warm in attach mode against
  # the machine Packer runs (build.Host / build.Port: its forwarded SSH port).
  provisioner "shell-local" {
    inline = [
      "${var.labforge} warm --attach ${build.Host}:${build.Port} ${local.warm_flags}",
    ]
  }
}
