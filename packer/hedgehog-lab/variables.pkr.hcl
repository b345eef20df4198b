variable "version" {
  type        = string
  description = "Appliance version (semver without v); part of the image name."
  default     = "0.0.0-dev"
}

variable "iso_url" {
  type        = string
  description = "Ubuntu 24.04 live-server ISO (URL or file:// path)."
  default     = "https://releases.ubuntu.com/24.04/ubuntu-24.04.3-live-server-amd64.iso"
}

variable "iso_checksum" {
  type        = string
  description = "Checksum of the ISO, e.g. sha256:<hex> or file:<url of SHA256SUMS>."
  default     = "file:https://releases.ubuntu.com/24.04/SHA256SUMS"
}

variable "seed_dir" {
  type        = string
  description = "Directory with the rendered autoinstall seed (user-data, meta-data), made per build by packer-build."
}

variable "ssh_private_key_file" {
  type        = string
  description = "Private half of the per-build key whose public half is in the seed (made by packer-build)."
}

variable "ssh_username" {
  type        = string
  description = "Build user created by the autoinstall; its authorized key is removed when the image is sealed."
  default     = "labforge"
}

variable "output_directory" {
  type    = string
  default = "output/hedgehog-lab-standard"
}

variable "accelerator" {
  type        = string
  description = "QEMU accelerator. kvm: the lab runs VMs of its own, so the guest gets the host CPU (-cpu host)."
  default     = "kvm"
}

variable "cpus" {
  type    = number
  default = 8
}

variable "memory" {
  type        = number
  description = "MiB. The Hedgehog VLAB needs tens of GiB when it runs (warm stage, first boot)."
  default     = 16384
}

variable "disk_size" {
  type    = string
  default = "200G"
}

variable "hhfab_install_command" {
  type        = string
  description = "Shell command that installs hhfab into /usr/local/bin (run as root in the guest)."
  default     = "curl -fsSL https://i.hhdev.io/hhfab | USE_SUDO=false INSTALL_DIR=/usr/local/bin bash"
}
