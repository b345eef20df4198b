#!/usr/bin/env bash
# sbom-inventory.sh: write the package inventory of an appliance image, from
# which the build host makes the appliance's SBOM (CycloneDX; see
# docs/adr/006-appliance-sbom.md). Run by the seal, as the last step before the
# image is shut down for packaging; the build then downloads the file.
#
# The inventory is JSON (inventoryVersion 1):
#   takenAt      UTC time it was taken
#   os           ID, VERSION_ID, VERSION_CODENAME, PRETTY_NAME of /etc/os-release
#   packages     every installed dpkg package: name, version, architecture,
#                source package and source version (dpkg-query of the tree's
#                own database, --admindir)
#   labforge     the orchestrator and every installed driver (path, SHA-256),
#                the configured driver and the build-type marker
#   lab          the lab's recorded versions: every *_VERSION=value line of
#                /etc/hedgehog-lab/lab.conf, and the SHA-256 of the lab tool
#                (hhfab) when the image has it
#
# Usage: sbom-inventory.sh [--root DIR] [--output FILE]
#   --root DIR     inventory the tree at DIR instead of / (image builds, tests)
#   --output FILE  where to write it (default DIR/var/lib/hedgehog-lab/sbom-inventory.json)
# Needs dpkg-query, jq, sha256sum.
# Exit codes: 0 written, 1 failed (no dpkg database, a tool failed), 2 usage error.
set -euo pipefail

root=""
output=""

usage_error() {
  printf 'sbom-inventory.sh: %s\nUsage: sbom-inventory.sh [--root DIR] [--output FILE]\n' "$*" >&2
  exit 2
}
die() {
  printf 'sbom-inventory.sh: %s\n' "$*" >&2
  exit 1
}

while (($#)); do
  case "$1" in
    --root) [[ $# -ge 2 ]] || usage_error "--root needs a directory"; root="$2"; shift ;;
    --output) [[ $# -ge 2 ]] || usage_error "--output needs a file name"; output="$2"; shift ;;
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
output="${output:-$root/var/lib/hedgehog-lab/sbom-inventory.json}"

for tool in dpkg-query jq sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is missing (install it in the image)"
done
admindir="$root/var/lib/dpkg"
[[ -f $admindir/status ]] || die "no dpkg database at $admindir (the inventory needs a Debian or Ubuntu tree)"

# file_json PATH: {"path": PATH, "sha256": HEX} of the tree's file, or nothing when it is absent.
file_json() {
  local path="$1" sum
  [[ -f $root$path && ! -L $root$path ]] || return 0
  sum="$(sha256sum "$root$path")"
  jq -cn --arg path "$path" --arg sha256 "${sum%% *}" '{path: $path, sha256: $sha256}'
}

# os-release: KEY=value or KEY="value" lines (no shell evaluation of the tree's file).
os_release="$root/etc/os-release"
[[ -f $os_release || -L $os_release ]] || os_release="$root/usr/lib/os-release"
[[ -r $os_release ]] || die "no /etc/os-release or /usr/lib/os-release in the tree"
os_json="$(jq -Rn '
  [inputs | select(test("^[A-Z_]+=")) | capture("^(?<key>[A-Z_]+)=(?<value>.*)$")
   | .value |= (if test("^\".*\"$") or test("^'"'"'.*'"'"'$") then .[1:-1] else . end)]
  | from_entries
  | {id: (.ID // ""), versionId: (.VERSION_ID // ""), versionCodename: (.VERSION_CODENAME // ""), prettyName: (.PRETTY_NAME // "")}
' <"$os_release")" || die "cannot read $os_release"

# Installed packages only (status "install ok installed", also held ones): the
# database keeps removed-but-configured ones too.
packages_json="$(dpkg-query --admindir="$admindir" -W \
  -f='${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n' |
  jq -Rn '[inputs | split("\t") | select(length == 6 and (.[0] | test("^.i")))
           | {name: .[1], version: .[2], architecture: .[3], sourceName: .[4], sourceVersion: .[5]}]
          | sort_by(.name, .architecture)')" || die "dpkg-query failed on $admindir"

drivers_json="$(
  for f in "$root"/usr/local/lib/hedgehog-lab/drivers/*.sh; do
    [[ -e $f ]] || continue
    name="${f##*/}"
    file_json "/usr/local/lib/hedgehog-lab/drivers/$name" | jq -c --arg name "${name%.sh}" '{name: $name} + .'
  done | jq -sc .
)"
conf="$root/etc/hedgehog-lab/lab.conf"
driver=""
lab_versions='{}'
if [[ -f $conf ]]; then
  driver="$(sed -n 's/^DRIVER=//p' "$conf" | tail -n 1)"
  lab_versions="$(grep -E '^[A-Z][A-Z0-9_]*_VERSION=' "$conf" | jq -Rn '[inputs | capture("^(?<key>[^=]+)=(?<value>.*)$")] | from_entries')" ||
    lab_versions='{}'
fi
build_type=""
[[ -f $root/etc/hedgehog-lab/build-type ]] && build_type="$(head -n 1 "$root/etc/hedgehog-lab/build-type")"
orchestrator="$(file_json /usr/local/sbin/hedgehog-lab)"
hhfab="$(file_json /usr/local/bin/hhfab)"

mkdir -p "$(dirname "$output")"
# The package list goes through stdin (thousands of packages exceed an argument's size).
printf '%s\n' "$packages_json" | jq \
  --arg takenAt "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --argjson os "$os_json" \
  --argjson orchestrator "${orchestrator:-null}" \
  --argjson drivers "$drivers_json" \
  --arg driver "$driver" \
  --arg buildType "$build_type" \
  --argjson labVersions "$lab_versions" \
  --argjson hhfab "${hhfab:-null}" \
  '{inventoryVersion: 1, takenAt: $takenAt, os: $os, packages: .,
    labforge: {orchestrator: $orchestrator, drivers: $drivers, driver: $driver, buildType: $buildType},
    lab: {versions: $labVersions, tools: (if $hhfab == null then [] else [{name: "hhfab"} + $hhfab] end)}}' \
  >"$output.tmp"
mv -f "$output.tmp" "$output"
printf 'sbom-inventory: %s packages of %s written to %s\n' "$(jq '.packages | length' "$output")" \
  "$(jq -r '.os.prettyName' "$output")" "${output#"$root"}" >&2
