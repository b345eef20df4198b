# The plugin requirement lives alone in this file: Packer >= 1.7 reads it
# (`packer init`), while Debian's Packer 1.6.6 (qemu builder built in) rejects
# `required_plugins`. build.sh and the CI validation
# (test/bats/packer-prewarmed-template.bats) leave it out for Packer < 1.7.
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = ">= 1.1.0"
    }
  }
}
