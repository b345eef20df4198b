# The demo lab appliance (standard build): the Debian base disk made by
# build-base.sh (GRUB, cloud-init for NoCloud, no user, no key), booted through
# its own bootloader with the per-build NoCloud seed on a CD labelled cidata.
# Like the Hedgehog appliance, the orchestrator is installed from ../guest
# (again: the base has a copy, install.sh is idempotent) and the image is
# sealed last. The lab is initialized on the first boot of every copy; the
# pre-warmed variant is this image plus the warm stage.
#
# Packer 1.6.6's cd_files needs xorriso, mkisofs, hdiutil or oscdimg on the
# host (Debian: genisoimage provides mkisofs, or xorriso).

locals {
  guest_dir = "${path.root}/../guest"
  vm_name   = "demo-lab-standard-${var.version}.qcow2"
  # base64 keeps any character of the settings intact through the shell.
  lab_settings_b64 = base64encode(var.lab_settings)
}

source "qemu" "demo-lab" {
  disk_image       = true
  iso_url          = var.base_image
  iso_checksum     = "none"
  use_backing_file = false
  output_directory = var.output_directory
  vm_name          = local.vm_name
  format           = "qcow2"
  skip_compaction  = true
  # The base disk's partition fills it and nothing grows it: resizing would
  # only add zeros for packing to scan.
  skip_resize_disk = true
  disk_size        = var.disk_size

  accelerator  = var.accelerator
  headless     = true
  machine_type = "pc"
  cpus         = var.cpus
  memory       = var.memory

  disk_interface     = "virtio"
  disk_discard       = "unmap"
  disk_detect_zeroes = "unmap"
  net_device         = "virtio-net"

  # Firmware -> GRUB -> kernel: no boot command, no kernel on the command line.

  cd_files = ["${var.seed_dir}/user-data", "${var.seed_dir}/meta-data"]
  cd_label = "cidata"

  communicator         = "ssh"
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = var.ssh_timeout
  shutdown_command     = "sudo -n poweroff"
  shutdown_timeout     = "5m"
}

build {
  sources = ["source.qemu.demo-lab"]

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

  provisioner "shell" {
    execute_command = "sudo -n env {{ .Vars }} bash -euo pipefail '{{ .Path }}'"
    environment_vars = [
      "LAB_DRIVER=${var.lab_driver}",
      "LAB_SETTINGS_B64=${local.lab_settings_b64}",
    ]
    inline = [
      "bash /tmp/hedgehog-lab-guest/install.sh --driver \"$LAB_DRIVER\" --build-type standard",
      "# The base disk's GRUB skips the lab (this build VM must not init it); the appliance runs it on first boot.",
      "sed -i 's/^set base_args=.*/set base_args=\"\"/' /boot/grub/grub.cfg",
      "grep -qx 'set base_args=\"\"' /boot/grub/grub.cfg",
      "printf '%s' \"$LAB_SETTINGS_B64\" | base64 -d >/tmp/lab-settings",
      "if grep -vEq '^([A-Za-z_][A-Za-z0-9_]*=.*|[[:space:]]*(#.*)?)$' /tmp/lab-settings; then echo 'lab_settings: every line must be KEY=VALUE' >&2; exit 1; fi",
      "if [ -s /tmp/lab-settings ]; then sed -e '$a\\' /tmp/lab-settings >>/etc/hedgehog-lab/lab.conf; fi",
      "rm -rf /tmp/hedgehog-lab-guest /tmp/lab-settings",
    ]
  }

  # Clone hygiene last: new machine-id and host keys on first boot, cloud-init
  # reset (it runs again on every copy with that copy's seed), the build key
  # and every other authorized key removed, free space trimmed.
  provisioner "shell" {
    execute_command = "sudo -n env {{ .Vars }} bash -euo pipefail '{{ .Path }}'"
    inline          = ["/usr/local/sbin/hedgehog-lab-seal --remove-all-authorized-keys"]
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
