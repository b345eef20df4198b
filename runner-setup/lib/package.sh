# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/package.sh: the actions/runner package: download, checksum, and its
# installation into a runner's directory, owned by root and read-only to the runner user.
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

RUNNER_PACKAGE=""

# Download (once) and verify the runner tarball; sets RUNNER_PACKAGE.
fetch_runner_package() {
  [[ -n $RUNNER_PACKAGE ]] && return 0
  if [[ -n $RUNNER_TARBALL ]]; then
    RUNNER_PACKAGE=$RUNNER_TARBALL # verified during input validation
    return 0
  fi
  local file=actions-runner-linux-x64-$RUNNER_VERSION.tar.gz
  local cached
  cached=$(r "$CACHE_DIR/downloads/$file")
  if [[ -f $cached && $(sha256sum "$cached" | cut -d' ' -f1) == "$RUNNER_SHA256" ]]; then
    unchanged "runner package $CACHE_DIR/downloads/$file (SHA-256 verified)"
    record_created file "$CACHE_DIR/downloads/$file"
    RUNNER_PACKAGE=$cached
    return 0
  fi
  local url=https://github.com/actions/runner/releases/download/v$RUNNER_VERSION/$file
  if $DRY_RUN; then
    changed "download $url and verify SHA-256 $RUNNER_SHA256"
    RUNNER_PACKAGE=$cached
    return 0
  fi
  local tmp
  tmp=$(mktemp "$WORK_TMP/runner.XXXXXX")
  say "  downloading $url"
  "$CURL" -fsSL --retry 3 -o "$tmp" "$url" || die "runner: download of $url failed"
  local actual
  actual=$(sha256sum "$tmp" | cut -d' ' -f1)
  [[ $actual == "$RUNNER_SHA256" ]] ||
    die "runner: SHA-256 mismatch for $url: expected $RUNNER_SHA256, got $actual (refusing to install it)"
  ensure_dir "$CACHE_DIR" 755 root root
  ensure_dir "$CACHE_DIR/downloads" 755 root root
  mv -fT "$tmp" "$cached"
  record_created file "$CACHE_DIR/downloads/$file"
  changed "runner package $CACHE_DIR/downloads/$file (SHA-256 verified)"
  RUNNER_PACKAGE=$cached
}

# The runner package installed in a runner directory ("VERSION SHA256"), recorded in the runner's
# root-owned manifest; RUNNER_PACKAGE_RECORD carries it to the manifest this run writes.
RUNNER_PACKAGE_RECORD=""
PACKAGE_CHANGED=false # this run put a package into the runner's directory (restart its service)

# runner_package_in_place DIR: the package in DIR is root's (an earlier version of this script had
# the runner user unpack it, and the runner then updated itself: such a package is replaced).
runner_package_in_place() {
  local dest p
  dest=$(r "$1")
  for p in "$dest/bin" "$dest/config.sh" "$dest/bin/runsvc.sh"; do
    [[ -e $p && ! -L $p ]] || return 1
  done
  [[ -z $(find "$dest/bin" "$dest/config.sh" "$dest/run.sh" "$dest/env.sh" "$dest/externals" \
    \( ! -uid 0 -o -perm /022 \) -print -quit 2>/dev/null) ]]
}

# install_runner_package DIR USER MANIFEST: put the verified package into DIR, owned by root and
# read-only to USER (a job runs as USER: if it could change the runner's own files, it could read
# the next job's tokens). The runner's self-update is off (config.sh --disableupdate: it would
# rewrite these files as USER); this installs a newer --runner-version instead, never an older one.
# The package's bin/installdependencies.sh runs as root from a root-only copy taken from the
# verified tarball, never from the runner directory.
install_runner_package() {
  local dir=$1 user=$2 manifest=$3 recorded=""
  RUNNER_PACKAGE_RECORD=""
  PACKAGE_CHANGED=false
  [[ -f $(r "$manifest") ]] && recorded=$(manifest_get "$(r "$manifest")" runner_package 2>/dev/null || true)
  if [[ -n $recorded ]] && runner_package_in_place "$dir"; then
    if [[ ${recorded%% *} =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] && version_at_least "${recorded%% *}" "$RUNNER_VERSION"; then
      RUNNER_PACKAGE_RECORD=$recorded
      unchanged "runner package ${recorded%% *} in $dir (root-owned)"
      return 0
    fi
  fi
  if [[ -n $recorded || -e $(r "$dir/bin") || -L $(r "$dir/bin") ]]; then
    say "  runner package in $dir: ${recorded:-unrecorded}, not root's or older than $RUNNER_VERSION; replacing it"
  fi
  fetch_runner_package
  act "install runner $RUNNER_VERSION into $dir (owned by root, read-only to $user)" \
    place_runner_package "$user" "$RUNNER_PACKAGE" "$dir" || die "runner: installing the package into $dir failed"
  RUNNER_PACKAGE_RECORD="$RUNNER_VERSION $RUNNER_SHA256"
  PACKAGE_CHANGED=true
  # Earlier versions kept a record in the runner directory; the runner manifest holds it now.
  [[ -e $(r "$dir/.labforge-runner-package") || -L $(r "$dir/.labforge-runner-package") ]] &&
    act "remove $dir/.labforge-runner-package (as $user)" as_user "$user" rm -f -- "$(r "$dir/.labforge-runner-package")"
  if $DRY_RUN || tar -tzf "$RUNNER_PACKAGE" | grep -Eq '^(\./)?bin/installdependencies\.sh$'; then
    act "install the runner's own dependencies (bin/installdependencies.sh, from the verified package)" \
      run_package_dependencies "$RUNNER_PACKAGE" || die "runner: bin/installdependencies.sh failed"
  fi
}

# place_runner_package USER TARBALL DIR: unpack as root into a root-only staging directory next to
# DIR (in the base directory, which only root can write), make it root's and read-only to others,
# then move each entry into DIR. What stands in the way is removed first: by USER when USER owns it
# (a job may have put it there: a link is removed, never followed), by root when it is root's
# (the package an earlier run installed). A rename never writes through a link.
place_runner_package() {
  local user=$1 tarball=$2 dest stage entry
  dest=$(r "$3")
  # Called as "act ... || die": errexit is off in here, so every step checks its own status.
  stage=$(mktemp -d "$(dirname "$dest")/.labforge-stage.XXXXXX") || return 1
  STAGE_DIR=$stage
  if ! { tar --no-same-owner --no-same-permissions -xzf "$tarball" -C "$stage" &&
    chown -R -h 0:0 "$stage" && chmod -R u+rwX,go+rX,go-w "$stage"; }; then
    rm -rf -- "$stage"
    return 1
  fi
  while IFS= read -r -d '' entry; do
    entry=${entry##*/}
    local target=$dest/$entry
    if [[ -e $target || -L $target ]]; then
      if [[ ! -L $target && $(stat -c '%u' "$target") == 0 ]]; then
        rm -rf --one-file-system -- "$target" || return 1
      else
        as_user "$user" rm -rf -- "$target" || return 1
      fi
    fi
    mv -T -- "$stage/$entry" "$target" || { warn "cannot move $entry into $3 (did a job put it back?)"; return 1; }
  done < <(find "$stage" -mindepth 1 -maxdepth 1 -print0)
  # Leftovers of the runner's own updates under an earlier version (bin.2.x, externals.2.x).
  while IFS= read -r -d '' entry; do
    as_user "$user" rm -rf -- "$entry" || return 1
  done < <(find "$dest" -mindepth 1 -maxdepth 1 ! -uid 0 \( -name 'bin.*' -o -name 'externals.*' \) -print0)
  rmdir -- "$stage" && STAGE_DIR=""
}

run_package_dependencies() { # TARBALL
  local stage
  stage=$(mktemp -d "$WORK_TMP/runner-deps.XXXXXX")
  tar --no-same-owner -xzf "$1" -C "$stage" --wildcards --no-anchored 'bin/installdependencies.sh'
  # shellcheck disable=SC2016 # expanded by the inner shell
  sh -c 'cd "$1" && ./bin/installdependencies.sh' sh "$stage"
}
