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

# cpus, memory and disk_size come from the chosen resource profile of appliance.yml (small or default:
# the VLAB topology's documented needs plus the appliance's own); these defaults are the default profile's.
variable "cpus" {
  type    = number
  default = 48
}

variable "memory" {
  type        = number
  description = "MiB. The VLAB's VMs get their memory from this (Hedgehog: allocate all of it)."
  default     = 43520
}

variable "disk_size" {
  type    = string
  default = "510G"
}

variable "lab_settings" {
  type        = string
  description = "lab.conf lines (KEY=VALUE): appliance.yml lab.settings, then the profile's lab-settings (the topology)."
  default     = ""
}

variable "hhfab_version" {
  type        = string
  description = "The pinned hhfab release (appliance.yml build.variables); the driver refuses another."
  validation {
    condition     = length(var.hhfab_version) > 1
    error_message = "The hhfab_version is not set: give the release tag, e.g. v0.48.0 (appliance.yml build.variables.hhfab_version)."
  }
}

variable "hhfab_url" {
  type        = string
  description = "HTTPS URL of the hhfab-linux-amd64 release archive of hhfab_version (GitHub release of githedgehog/fabricator)."
  validation {
    condition     = length(var.hhfab_url) > 8
    error_message = "The hhfab_url is not set (appliance.yml build.variables.hhfab_url)."
  }
}

variable "hhfab_sha256" {
  type        = string
  description = "SHA-256 of the archive at hhfab_url; the build refuses to run without it."
  validation {
    # Packer 1.6.6 offers no functions but length() in validation rules: the guest's sha256sum -c checks the rest.
    condition     = length(var.hhfab_sha256) == 64
    error_message = "The hhfab_sha256 is not set: put the SHA-256 (64 hex digits) of the hhfab archive in appliance.yml build.variables.hhfab_sha256 (sha256sum the release asset named by hhfab_url)."
  }
}

variable "registry_auth" {
  type        = string
  sensitive   = true
  description = "GHCR credential for Hedgehog's artifacts, USER:TOKEN (Hedgehog's download request gives it). Pass it in the environment as PKR_VAR_registry_auth (the packer-build action's registry-credential input does), never as -var: it must not reach argv. Used once, to pre-fetch what the lab downloads, then removed."
  default     = ""
  validation {
    condition     = length(var.registry_auth) > 2
    error_message = "The registry_auth is not set: give the GHCR credential as USER:TOKEN in the environment variable PKR_VAR_registry_auth (the packer-build input registry-credential), so that the build can pre-fetch hhfab's artifacts."
  }
}
