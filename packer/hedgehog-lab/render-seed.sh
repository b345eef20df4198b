#!/usr/bin/env bash
# render-seed.sh: render the autoinstall seed (user-data, meta-data) for one
# build of the Hedgehog lab appliance.
#
# The build's SSH public key goes into user-data; Packer logs in with its
# private half. No password is in the repository: if the environment variable
# LABFORGE_CONSOLE_PASSWORD is set, its SHA-512 crypt hash is computed here
# (openssl passwd -6, password on stdin, never in argv) so the console password
# and its hash cannot disagree; otherwise the user's password is locked.
#
# Usage: render-seed.sh --out DIR --public-key FILE [--username NAME]
# Exit codes: 0 rendered, 1 failed, 2 usage error.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=""
public_key_file=""
username=labforge

usage_error() {
  printf 'render-seed.sh: %s\nUsage: render-seed.sh --out DIR --public-key FILE [--username NAME]\n' "$*" >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --out) [[ $# -ge 2 ]] || usage_error "--out needs a directory"; out="$2"; shift ;;
    --public-key) [[ $# -ge 2 ]] || usage_error "--public-key needs a file"; public_key_file="$2"; shift ;;
    --username) [[ $# -ge 2 ]] || usage_error "--username needs a name"; username="$2"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done
[[ -n $out ]] || usage_error "--out is required"
[[ -n $public_key_file ]] || usage_error "--public-key is required (the per-build key's .pub file)"
[[ -f $public_key_file ]] || usage_error "--public-key: $public_key_file does not exist"
[[ $username =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || usage_error "--username: '$username' is not a valid user name"

public_key="$(head -n1 "$public_key_file")"
[[ $public_key =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp[0-9]+)\ [A-Za-z0-9+/=]+(\ .*)?$ ]] ||
  usage_error "--public-key: $public_key_file is not an OpenSSH public key"

indent='        '
if [[ -n ${LABFORGE_CONSOLE_PASSWORD:-} ]]; then
  hash="$(printf '%s' "$LABFORGE_CONSOLE_PASSWORD" | openssl passwd -6 -stdin)"
  password_lines="${indent}lock_passwd: false"$'\n'"${indent}passwd: \"$hash\""
else
  password_lines="${indent}lock_passwd: true"
fi

mkdir -p "$out"
template="$(<"$SRC/seed/user-data.in")"
rendered="${template//@SSH_USERNAME@/$username}"
rendered="${rendered//@SSH_PUBLIC_KEY@/$public_key}"
rendered="${rendered//@PASSWORD_LINES@/$password_lines}"
(umask 077 && printf '%s\n' "$rendered" >"$out/user-data")
cp "$SRC/seed/meta-data" "$out/meta-data"
printf 'render-seed.sh: seed written to %s (user %s, console password %s)\n' "$out" "$username" \
  "$([[ -n ${LABFORGE_CONSOLE_PASSWORD:-} ]] && echo 'set from LABFORGE_CONSOLE_PASSWORD' || echo locked)" >&2
