# The plugin requirement lives alone in this file: Packer >= 1.7 reads it
# (`packer init`), while Debian's Packer 1.6.6 (qemu builder built in) rejects
# `required_plugins`. To use 1.6.6, leave this file out: build.sh and the CI
# validation (test/bats/packer-template.bats) copy every other file.
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = ">= 1.1.0"
    }
  }
}
