# shellcheck shell=bash
# Sourced by packer/*/build.sh. Packer >= 1.7 installs the qemu plugin from plugins.pkr.hcl (`packer init`);
# older Packer (Debian's 1.6.6, builders built in) rejects `required_plugins`, so there the template is used
# without that file.
#
# packer_template_dir SRC WORK [SIBLING_DIR...]
#   Prints the template directory to hand to Packer: SRC itself after `packer init SRC` (Packer >= 1.7), or a
#   copy of SRC's *.pkr.hcl without plugins.pkr.hcl in WORK/template/<name of SRC>, with each SIBLING_DIR
#   copied beside it (for templates that reference "${path.root}/../<dir>").
packer_template_dir() {
  local src=$1 work=$2
  shift 2
  local major minor
  read -r major minor < <(packer version | head -n1 | sed -E 's/^Packer v?([0-9]+)\.([0-9]+).*/\1 \2/')
  if ((major > 1 || minor >= 7)); then
    packer init "$src" >&2
    printf '%s\n' "$src"
    return 0
  fi
  local dest sibling
  dest="$work/template/$(basename "$src")"
  mkdir -p "$dest"
  find "$src" -maxdepth 1 -type f -name '*.pkr.hcl' ! -name plugins.pkr.hcl -exec cp {} "$dest/" \;
  for sibling in "$@"; do cp -r "$sibling" "$work/template/$(basename "$sibling")"; done
  printf '%s\n' "$dest"
}
