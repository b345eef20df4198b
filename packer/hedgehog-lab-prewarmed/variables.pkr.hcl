variable "version" {
  type        = string
  description = "Appliance version (semver without v); part of the image name and recorded in the warm manifest."
  default     = "0.0.0-dev"
}

variable "standard_image" {
  type        = string
  description = "The standard build's qcow2 (packer/hedgehog-lab output). Packer boots a copy of it."
}

variable "standard_image_checksum" {
  type        = string
  description = "Checksum of standard_image (sha256:<hex>), or none."
  default     = "none"
}

variable "seed_dir" {
  type        = string
  description = "Directory with the NoCloud seed (user-data, meta-data) that authorizes this build's key (made by build.sh)."
}

variable "ssh_private_key_file" {
  type        = string
  description = "Private half of the per-build key whose public half is in the seed (made by build.sh)."
}

variable "ssh_username" {
  type        = string
  description = "Build user; the warm's seal removes its authorized key again."
  default     = "labforge"
}

variable "labforge" {
  type        = string
  description = "How to run the labforge command line (build.sh passes node <repo>/bin/labforge)."
  default     = "labforge"
}

variable "output_directory" {
  type    = string
  default = "output/hedgehog-lab-prewarmed"
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
  description = "MiB. The Hedgehog VLAB needs tens of GiB while it is initialized."
  default     = 16384
}

variable "init_timeout_minutes" {
  type        = number
  description = "Limit for the lab's build-time initialization (hedgehog-lab build-init)."
  default     = 90
}

variable "ready_timeout_minutes" {
  type        = number
  description = "Limit for the readiness proof after the initialization."
  default     = 30
}

variable "qemu_args" {
  type        = list(list(string))
  description = "Extra QEMU arguments; the default gives the guest the host CPU (nested virtualization, KVM only)."
  default     = [["-cpu", "host"]]
}

variable "warm_extra_flags" {
  type        = string
  description = "More flags for labforge warm (e.g. --seal-command for a guest that keeps its test key)."
  default     = ""
}
