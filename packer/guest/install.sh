#!/usr/bin/env bash
# install.sh: install the hedgehog-lab orchestrator, its drivers, the seal
# helper and the systemd units into a root file system, enable the units and
# write the build-type marker.
#
# Usage: install.sh [--root DIR] [--driver NAME] [--build-type standard|prewarmed]
#   --root DIR          install into DIR instead of / (image builds, tests)
#   --driver NAME       lab driver written to /etc/hedgehog-lab/lab.conf
#                       (hedgehog-vlab (default) or test-lab)
#   --build-type TYPE   marker to write (default standard). The warm stage
#                       writes "prewarmed" itself, after readiness is proven.
# Installs:
#   /usr/local/sbin/hedgehog-lab, /usr/local/sbin/hedgehog-lab-seal,
#   /usr/local/sbin/hedgehog-lab-sbom-inventory (the seal runs it)
#   /usr/local/lib/hedgehog-lab/drivers/*.sh
#   /etc/systemd/system/{hedgehog-lab,hedgehog-lab-hostkeys,test-lab,hhfab-vlab}.service
#   /etc/hedgehog-lab/lab.conf, /etc/hedgehog-lab/build-type, /var/lib/hedgehog-lab/
# Exit codes: 0 installed, 1 failed, 2 usage error.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root=""
driver=hedgehog-vlab
build_type=standard

usage_error() {
  printf 'install.sh: %s\nUsage: install.sh [--root DIR] [--driver NAME] [--build-type standard|prewarmed]\n' "$*" >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --root) [[ $# -ge 2 ]] || usage_error "--root needs a directory"; root="$2"; shift ;;
    --driver) [[ $# -ge 2 ]] || usage_error "--driver needs a name"; driver="$2"; shift ;;
    --build-type) [[ $# -ge 2 ]] || usage_error "--build-type needs a value"; build_type="$2"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done
if [[ -n $root ]]; then
  [[ -d $root ]] || usage_error "--root: '$root' is not a directory"
  root="$(cd "$root" && pwd)"
  [[ $root != / ]] || root=""
fi
if [[ ! -f $SRC/drivers/$driver.sh ]]; then
  known=("$SRC"/drivers/*.sh)
  known=("${known[@]##*/}")
  usage_error "--driver: unknown driver '$driver' (one of: ${known[*]%.sh})"
fi
case "$build_type" in
  standard | prewarmed) ;;
  *) usage_error "--build-type: '$build_type' is not standard or prewarmed" ;;
esac

install -d -m 0755 "$root/usr/local/sbin" "$root/usr/local/lib/hedgehog-lab/drivers" \
  "$root/etc/systemd/system/multi-user.target.wants" "$root/etc/systemd/system/ssh.service.requires" \
  "$root/etc/hedgehog-lab" "$root/var/lib/hedgehog-lab"
install -m 0755 "$SRC/hedgehog-lab" "$root/usr/local/sbin/hedgehog-lab"
install -m 0755 "$SRC/seal.sh" "$root/usr/local/sbin/hedgehog-lab-seal"
install -m 0755 "$SRC/sbom-inventory.sh" "$root/usr/local/sbin/hedgehog-lab-sbom-inventory"
install -m 0755 "$SRC"/drivers/*.sh "$root/usr/local/lib/hedgehog-lab/drivers/"
install -m 0644 "$SRC"/systemd/*.service "$root/etc/systemd/system/"

# Enable by symlink (what `systemctl enable` does, without needing systemd).
ln -sfn /etc/systemd/system/hedgehog-lab.service \
  "$root/etc/systemd/system/multi-user.target.wants/hedgehog-lab.service"
ln -sfn /etc/systemd/system/hedgehog-lab-hostkeys.service \
  "$root/etc/systemd/system/multi-user.target.wants/hedgehog-lab-hostkeys.service"
ln -sfn /etc/systemd/system/hedgehog-lab-hostkeys.service \
  "$root/etc/systemd/system/ssh.service.requires/hedgehog-lab-hostkeys.service"

printf '# hedgehog-lab settings (KEY=VALUE; see hedgehog-lab --help and the driver)\nDRIVER=%s\n' "$driver" \
  >"$root/etc/hedgehog-lab/lab.conf"
printf '%s\n' "$build_type" >"$root/etc/hedgehog-lab/build-type"
printf 'install.sh: installed hedgehog-lab (driver %s, build type %s)%s\n' "$driver" "$build_type" "${root:+ into $root}"
