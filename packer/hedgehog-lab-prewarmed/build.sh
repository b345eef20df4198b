#!/usr/bin/env bash
# build.sh: build the pre-warmed Hedgehog lab appliance from a standard build.
#
# The pre-warmed image is the standard image plus the warm stage; nothing is
# provisioned twice. Per build, an ed25519 key pair and a NoCloud seed that
# authorizes it for the build user are made in a private temporary directory
# (removed on exit). Packer boots a copy of the standard qcow2 with the seed and
# runs `labforge warm --attach` against it (see hedgehog-lab-prewarmed.pkr.hcl).
# With Packer >= 1.7 the qemu plugin is installed by `packer init`
# (plugins.pkr.hcl); with an older Packer (Debian's 1.6.6, qemu builder built
# in) the template is used without plugins.pkr.hcl, which that version rejects.
#
# Usage: build.sh --standard-image FILE [--version X.Y.Z] [--output-dir DIR]
#                 [--validate-only] [-- PACKER-ARGS...]
#   --standard-image FILE   the standard build's qcow2 (packer/hedgehog-lab)
#   --validate-only         render everything and run `packer validate`
# Environment: LABFORGE (how to run labforge; default: node <repo>/bin/labforge)
# Exit codes: 0 ok, 1 packer failed, 2 usage error.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SRC/../.." && pwd)"
version=0.0.0-dev
output_dir=""
standard_image=""
action=build
packer_args=()

usage_error() {
  printf 'build.sh: %s\nUsage: build.sh --standard-image FILE [--version X.Y.Z] [--output-dir DIR] [--validate-only] [-- PACKER-ARGS...]\n' "$*" >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --standard-image) [[ $# -ge 2 ]] || usage_error "--standard-image needs a file"; standard_image="$2"; shift ;;
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
[[ -n $standard_image ]] || usage_error "--standard-image is required (the qcow2 of the standard build)"
if [[ $action == build && ! -f $standard_image ]]; then
  usage_error "--standard-image: $standard_image does not exist (build it with packer/hedgehog-lab/build.sh first)"
fi
command -v packer >/dev/null || { printf 'build.sh: packer not found; install it\n' >&2; exit 1; }
labforge="${LABFORGE:-node $REPO/bin/labforge}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 0700 "$work"
ssh-keygen -q -t ed25519 -N '' -C "labforge-warm-$version" -f "$work/id_ed25519"

# NoCloud seed: authorize the build key for the build user (created if the
# standard image does not have it), passwordless sudo for the warm.
mkdir -p "$work/seed"
{
  printf '#cloud-config\n'
  printf 'users:\n'
  printf '  - default\n'
  printf '  - name: labforge\n'
  printf '    sudo: "ALL=(ALL) NOPASSWD:ALL"\n'
  printf '    shell: /bin/bash\n'
  printf '    lock_passwd: true\n'
  printf '    ssh_authorized_keys:\n'
  printf '      - %s\n' "$(cat "$work/id_ed25519.pub")"
} >"$work/seed/user-data"
printf 'instance-id: labforge-warm-%s-%s\nlocal-hostname: hedgehog-lab\n' "$version" "$(date +%s)" >"$work/seed/meta-data"

# Template directory: as is for Packer >= 1.7, without plugins.pkr.hcl before.
# shellcheck source=../packer-template-dir.sh source-path=SCRIPTDIR
. "$SRC/../packer-template-dir.sh"
template="$(packer_template_dir "$SRC" "$work")"

vars=(
  -var "version=$version"
  -var "standard_image=$standard_image"
  -var "seed_dir=$work/seed"
  -var "ssh_private_key_file=$work/id_ed25519"
  -var "ssh_username=labforge"
  -var "labforge=$labforge"
)
[[ -z $output_dir ]] || vars+=(-var "output_directory=$output_dir")
packer "$action" "${vars[@]}" "${packer_args[@]}" "$template"
