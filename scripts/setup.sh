#!/usr/bin/env bash
# setup.sh: make this Debian 12 machine ready for the demo (npm run demo) and the tests (npm test):
#   1. the Debian packages listed in scripts/debian-packages.txt (apt-get, as root);
#   2. npm ci (Node.js 20 or newer must be installed already: Debian 12 has 18);
#   3. npm run build (the actions' and the CLI's bundles).
# Idempotent: a second run does no slow work it need not do. apt is skipped when dpkg-query says every
# package is installed; npm ci when node_modules was installed from this package-lock.json (a stamp holding
# the lock's SHA-256); the build when no source changed since the last build it made (a stamp holding the
# hash of the sources).
#
# Usage: scripts/setup.sh [--dry-run] [--no-npm] [--no-build] [--no-apt-update] [--help]
#   --dry-run        print what would be done (the package list, what is missing, the commands), do nothing
#   --no-npm         only the Debian packages (no npm ci, no build)
#   --no-build       no npm run build (.ci/run checks the committed bundles before it builds)
#   --no-apt-update  do not run apt-get update before installing (the caller just did)
# Not root and packages missing: one line saying what to run as root (no sudo is tried), exit 1.
# Exit codes: 0 ready, 1 something failed or is missing, 2 bad option.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly LIST="$ROOT/scripts/debian-packages.txt"
readonly NPM_STAMP="$ROOT/node_modules/.labforge-setup-npm.sha256"
readonly BUILD_STAMP="$ROOT/node_modules/.labforge-setup-build.sha256"
readonly APT_LOG="${TMPDIR:-/tmp}/labforge-setup-apt.log"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

dry_run=0 npm=1 build=1 apt_update=1
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    --no-npm) npm=0 build=0 ;;
    --no-build) build=0 ;;
    --no-apt-update) apt_update=0 ;;
    --help | -h) usage; exit 0 ;;
    *) printf "setup: unknown option '%s' (options: --dry-run, --no-npm, --no-build, --no-apt-update, --help)\n" "${arg//[^[:print:]]/?}" >&2; exit 2 ;;
  esac
done

[[ -r $LIST ]] || die "$LIST is missing (run this script from a labforge checkout)"
mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$')
[[ ${#packages[@]} -gt 0 ]] || die "$LIST lists no package"

# 1. Debian packages: what dpkg does not have installed.
# (One dpkg-query for all of them: it names the installed ones; an unknown package is only not listed.)
installed=" $({ dpkg-query -W -f='${db:Status-Abbrev}${Package}\n' "${packages[@]}" 2>/dev/null || true; } | sed -n 's/^ii  *//p' | paste -sd' ') "
missing=()
for p in "${packages[@]}"; do
  [[ $installed == *" $p "* ]] || missing+=("$p")
done
install_line="apt-get install -y ${missing[*]}"
update_line=""
((apt_update)) && update_line="apt-get update && "

if ((dry_run)); then
  say "packages: ${packages[*]}"
  if ((${#missing[@]})); then say "missing: ${missing[*]}"; say "would run as root: ${update_line}${install_line}"; else say "missing: none (all ${#packages[@]} installed)"; fi
elif ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    printf 'setup: %d Debian package(s) missing and this is not root (no sudo is tried); run as root: %s%s\n' "${#missing[@]}" "$update_line" "$install_line" >&2
    exit 1
  fi
  say "installing ${#missing[@]} Debian package(s): ${missing[*]} (log: $APT_LOG)"
  export DEBIAN_FRONTEND=noninteractive
  {
    if ((apt_update)); then apt-get update -qq; fi
    apt-get install -y -qq "${missing[@]}"
  } >"$APT_LOG" 2>&1 || { tail -n 50 "$APT_LOG" >&2; die "apt-get failed (the last lines of $APT_LOG are above)"; }
else
  say "Debian packages: all ${#packages[@]} installed"
fi

((npm)) || exit 0

# 2. Node.js and npm ci.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  die "node and npm are needed: install Node.js 20 or newer (Debian 12 has 18: use NodeSource's nodejs package or nvm), then run this again"
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 20)) || die "Node.js $(node --version) is too old: labforge needs 20 or newer (Debian 12 has 18: use NodeSource's nodejs package or nvm)"

cd "$ROOT"
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -d node_modules && -f $NPM_STAMP && $(cat "$NPM_STAMP") == "$lock_hash" ]]; then
  say "node_modules matches package-lock.json (sha256 ${lock_hash:0:12}): npm ci skipped"
elif ((dry_run)); then
  say "would run: npm ci --no-audit --no-fund"
else
  say "npm ci (package-lock.json sha256 ${lock_hash:0:12})"
  npm ci --no-audit --no-fund
  mkdir -p node_modules # (npm ci makes none for a project without dependencies)
  printf '%s\n' "$lock_hash" >"$NPM_STAMP"
fi

((build)) || exit 0

# 3. The bundles, when a source (or the lock) changed since the build this script made last.
sources_hash() {
  local paths=() p
  for p in actions cli bench scripts/build.mjs package.json package-lock.json tsconfig.json; do [[ -e $p ]] && paths+=("$p"); done
  find "${paths[@]}" -type f \( -name '*.ts' -o -name '*.mjs' -o -name '*.json' -o -name '*.yml' \) -not -path '*/dist/*' -print0 |
    sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1
}
src_hash="$(sources_hash)"
if [[ -f $BUILD_STAMP && $(cat "$BUILD_STAMP") == "$src_hash" ]]; then
  say "the bundles were built from these sources (sha256 ${src_hash:0:12}): build skipped"
elif ((dry_run)); then
  say "would run: npm run build"
else
  say "npm run build"
  npm run build
  mkdir -p node_modules
  printf '%s\n' "$src_hash" >"$BUILD_STAMP"
fi
