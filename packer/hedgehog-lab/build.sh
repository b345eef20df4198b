#!/usr/bin/env bash
# build.sh: build the standard Hedgehog lab appliance with Packer.
#
# Per build: an ed25519 key pair and the autoinstall seed are made in a private
# temporary directory (removed on exit), and Packer gets the key's path. With
# Packer >= 1.7 the qemu plugin is installed by `packer init` (plugins.pkr.hcl);
# with an older Packer (Debian's 1.6.6, qemu builder built in) the template is
# used without plugins.pkr.hcl, which that version rejects.
#
# Usage: build.sh [--version X.Y.Z] [--output-dir DIR] [--validate-only] [-- PACKER-ARGS...]
#   --validate-only   render everything and run `packer validate` instead of build
# Environment: LABFORGE_CONSOLE_PASSWORD (optional console password, see render-seed.sh)
# Exit codes: 0 ok, 1 packer failed, 2 usage error.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version=0.0.0-dev
output_dir=""
action=build
packer_args=()

usage_error() {
  printf 'build.sh: %s\nUsage: build.sh [--version X.Y.Z] [--output-dir DIR] [--validate-only] [-- PACKER-ARGS...]\n' "$*" >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --version) [[ $# -ge 2 ]] || usage_error "--version needs a value"; version="$2"; shift ;;
    --output-dir) [[ $# -ge 2 ]] || usage_error "--output-dir needs a directory"; output_dir="$2"; shift ;;
    --validate-only) action=validate ;;
    --) shift; packer_args=("$@"); break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || usage_error "--version: '$version' is not semver without v (e.g. 1.4.0)"
command -v packer >/dev/null || { printf 'build.sh: packer not found; install it\n' >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 0700 "$work"
ssh-keygen -q -t ed25519 -N '' -C "labforge-build-$version" -f "$work/id_ed25519"
"$SRC/render-seed.sh" --out "$work/seed" --public-key "$work/id_ed25519.pub"

# Template directory: as is for Packer >= 1.7, without plugins.pkr.hcl before (guest/ goes along: the
# template installs the orchestrator from ../guest).
# shellcheck source=../packer-template-dir.sh source-path=SCRIPTDIR
. "$SRC/../packer-template-dir.sh"
template="$(packer_template_dir "$SRC" "$work" "$SRC/../guest")"

vars=(-var "version=$version" -var "seed_dir=$work/seed" -var "ssh_private_key_file=$work/id_ed25519")
[[ -z $output_dir ]] || vars+=(-var "output_directory=$output_dir")
packer "$action" "${vars[@]}" "${packer_args[@]}" "$template"
