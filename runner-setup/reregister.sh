#!/usr/bin/env bash
# labforge runner-setup: re-register an ephemeral runner before its service starts.
#
# Installed by setup.sh --ephemeral --github-pat-file FILE as <base-dir>/bin/labforge-reregister
# and run by systemd as root (ExecStartPre=+...) before every start of the runner, with the
# runner's manifest (it first gives the runner a fresh directory: see below):
#   labforge-reregister /etc/labforge-runner/runners/<name>.conf
# An ephemeral runner deregisters itself after its one job; this obtains a fresh registration token
# with the long-lived token in the manifest's pat_file (sent to curl on stdin, never in argv) and
# registers the runner again as its own user (token in ACTIONS_RUNNER_INPUT_TOKEN, never in argv).
#
# Test seams: LABFORGE_ROOT (prefix for every path), CURL, SETPRIV.
set -euo pipefail

CURL=${CURL:-curl}
SETPRIV=${SETPRIV:-setpriv}
ROOT=${LABFORGE_ROOT:-}
ROOT=${ROOT%/}

conf=${1:?usage: labforge-reregister RUNNER_MANIFEST}
[[ -f $conf ]] || { echo "labforge-reregister: $conf: no such runner manifest" >&2; exit 2; }
get() { awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); print; exit }' "$conf"; }

name=$(get name) user=$(get user) dir=$(get dir) url=$(get url) labels=$(get labels)
group=$(get runner_group) api=$(get registration_api) pat_file=$(get pat_file)

uid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$ROOT/etc/passwd")
gid=$(awk -F: -v u="$user" '$1 == u { print $4 }' "$ROOT/etc/passwd")
groups=$(awk -F: -v u="$user" '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) { printf "%s%s", sep, $3; sep = "," } }' "$ROOT/etc/group")
[[ -n $uid && $uid != 0 ]] || { echo "labforge-reregister: user $user does not exist" >&2; exit 1; }
group_args=(--clear-groups)
[[ -n $groups ]] && group_args=(--groups "$groups")
# as_runner COMMAND...: run COMMAND as the runner user (never root in the runner's files).
as_runner() { HOME=$dir USER=$user LOGNAME=$user "$SETPRIV" --reuid "$uid" --regid "$gid" "${group_args[@]}" -- "$@"; }

# A fresh start for every run of the service: the runner's directory is root's (setup.sh install:
# root-owned, group $user, 1770, so the user cannot remove or replace root's files in it); all that
# the runner user made in it (the last job's _work, _diag, tmp, dotfiles in its home, ...) is
# removed by the user itself (rm never follows a link), and so is its plugin cache, which the next
# job would run. Only the registration survives while the runner has not taken its job yet.
dest=$ROOT$dir
if [[ -L $dest || ! -d $dest || $(stat -c '%u %g %a' "$dest") != "0 $gid 1770" ]]; then
  echo "labforge-reregister: $dir is not the runner's root-owned directory (root:$user 1770); run setup.sh install again" >&2
  exit 1
fi
keep=()
[[ -f $dest/.runner ]] && keep=(.runner .runner_migrated .credentials .credentials_migrated .credentials_rsaparams)
leftovers=()
while IFS= read -r -d '' entry; do
  name_of=${entry##*/}
  [[ " ${keep[*]} " == *" $name_of "* ]] || leftovers+=("$entry")
done < <(find "$dest" -mindepth 1 -maxdepth 1 ! -uid 0 -print0)
if ((${#leftovers[@]} > 0)); then
  echo "labforge-reregister: runner $name: removing ${#leftovers[@]} thing(s) the runner user left in $dir"
  as_runner rm -rf -- "${leftovers[@]}" ||
    { echo "labforge-reregister: could not remove what the runner user left in $dir" >&2; exit 1; }
fi
cache=$(get cache) plugins=""
[[ -n $cache ]] && plugins=$ROOT$cache/plugins
if [[ -n $plugins ]] && [[ -e $plugins || -L $plugins ]]; then
  as_runner rm -rf -- "$plugins" || { echo "labforge-reregister: could not empty $plugins" >&2; exit 1; }
fi
# shellcheck disable=SC2016 # expanded by the inner shell
as_runner sh -c 'set -e
  mkdir -m 700 "$1/tmp" "$1/_work"
  : >"$1/tmp/.labforge-runner-tmp"
  if [ -n "$2" ] && [ -d "${2%/*}" ]; then mkdir -m 750 "$2"; fi' labforge-fresh "$dest" "$plugins" ||
  { echo "labforge-reregister: could not make a fresh tmp and _work in $dir as $user" >&2; exit 1; }

if [[ -f $dest/.runner ]]; then
  echo "labforge-reregister: runner $name is registered"
  exit 0
fi
[[ -n $api && -n $pat_file && -r $ROOT$pat_file ]] ||
  { echo "labforge-reregister: runner $name: no registration API or token file in $conf" >&2; exit 1; }

echo "labforge-reregister: runner $name took its job; registering it again"
response=$(printf 'header = "Authorization: Bearer %s"\n' "$(tr -d ' \t\r\n' <"$ROOT$pat_file")" |
  "$CURL" -fsS --retry 3 --max-time 30 --config - -X POST \
    -H 'Accept: application/vnd.github+json' -H 'X-GitHub-Api-Version: 2022-11-28' \
    "$api/actions/runners/registration-token") ||
  { echo "labforge-reregister: POST $api/actions/runners/registration-token failed (check the token in $pat_file)" >&2; exit 1; }
token=$(jq -r '.token // empty' <<<"$response")
[[ -n $token ]] || { echo "labforge-reregister: no token in the API response" >&2; exit 1; }

args=(--unattended --url "$url" --name "$name" --labels "$labels" --work _work --replace --ephemeral --disableupdate)
[[ -n $group ]] && args+=(--runnergroup "$group")
# The runner user changes into its own directory; root never does (a job may have changed it).
# shellcheck disable=SC2016 # expanded by the inner shell
ACTIONS_RUNNER_INPUT_TOKEN=$token as_runner \
  sh -c 'cd "$1" || exit 1; shift; exec "$@"' labforge-in-dir "$ROOT$dir" ./config.sh "${args[@]}"
