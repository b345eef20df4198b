# Contract variables (every appliance template declares them; packer-build
# supplies them) and the demo appliance's own extras. Packer 1.6.6 compatible:
# no packer {} block, the qemu builder is built in.

variable "version" {
  type        = string
  description = "Appliance version (semver without v); part of the image name."
  default     = "0.0.0-dev"
}

variable "seed_dir" {
  type        = string
  description = "Directory with the NoCloud seed (user-data, meta-data) that authorizes the per-build key; attached as a CD labelled cidata."
}

variable "ssh_private_key_file" {
  type        = string
  description = "Private half of the per-build key whose public half is in the seed."
}

variable "ssh_username" {
  type        = string
  description = "Build user created by cloud-init from the seed; its authorized keys (and every other user's) are removed by the seal."
  default     = "labforge"
}

variable "cpus" {
  type    = number
  default = 2
}

variable "memory" {
  type        = number
  description = "MiB."
  default     = 1024
}

variable "disk_size" {
  type        = string
  description = "Size of the disk. The image keeps the size of the base disk (skip_resize_disk): give the base's size (3072M), a larger disk would only add unpartitioned space that packing has to scan."
  default     = "3072M"
}

variable "accelerator" {
  type        = string
  description = "QEMU accelerator: kvm where a guest really boots under it, tcg otherwise."
  default     = "tcg"
}

variable "output_directory" {
  type    = string
  default = "output/demo-lab-standard"
}

variable "base_image" {
  type        = string
  description = "The base disk (qcow2) made by build-base.sh: the \"image\" field of its JSON. It is copied, never modified."
}

variable "lab_driver" {
  type        = string
  description = "hedgehog-lab driver of the appliance (a file in ../guest/drivers)."
  default     = "test-lab"
}

variable "lab_settings" {
  type        = string
  description = "KEY=VALUE lines appended to /etc/hedgehog-lab/lab.conf (e.g. \"TEST_LAB_SWITCHES=8\\nREADY_INTERVAL=1\")."
  default     = ""
}

variable "ssh_timeout" {
  type        = string
  description = "How long Packer waits for SSH (boot, cloud-init) before it gives up."
  default     = "5m"
}
