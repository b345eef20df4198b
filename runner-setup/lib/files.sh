# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/files.sh: root-managed and runner-user files and directories, the install manifests and the host state.
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

# put_file PATH MODE OWNER GROUP < CONTENT: install a root-managed file (under --root) if its
# content, mode or owner differ. Sets LAST_CHANGED. Inside a runner tree only where root owns the
# directory (the runner's own directory: .env, .path); never in a directory the runner user owns
# (put_user_file). PUT_FILE_RECORD=false: not listed in the install manifest (a file inside a
# runner tree goes with the tree).
PUT_FILE_RECORD=true
put_file() {
  local path=$1 mode=$2 owner=$3 group=$4 dest tmp uid="" gid=""
  dest=$(r "$path")
  tmp=$(mktemp "$WORK_TMP/file.XXXXXX")
  cat >"$tmp"
  uid=$(uid_of "$owner" 2>/dev/null) || uid=""
  gid=$(gid_of "$group" 2>/dev/null) || gid=""
  LAST_CHANGED=false
  if [[ -f $dest && ! -L $dest && -n $uid && -n $gid ]] && cmp -s "$tmp" "$dest" &&
    [[ $(stat -c '%a %u %g' "$dest") == "$mode $uid $gid" ]]; then
    unchanged "$path"
    $PUT_FILE_RECORD && record_created file "$path"
    return 0
  fi
  LAST_CHANGED=true
  local verb=write
  [[ -e $dest || -L $dest ]] && verb=update
  [[ -L $dest ]] && warn "$path is a symbolic link (planted by a job?); replacing it with a file owned by $owner, not following it"
  changed "$verb $path ($mode $owner:$group)"
  $DRY_RUN && return 0
  mkdir -p "$(dirname "$dest")"
  # Written next to the destination (mktemp creates it exclusively, never through a link) and then
  # renamed over it: the rename replaces a file or symbolic link there instead of writing through
  # it, and in a sticky directory nobody but root can take the new file away.
  local staged
  staged=$(mktemp "$(dirname "$dest")/.labforge-put.XXXXXX")
  cat "$tmp" >"$staged"
  chmod "$mode" "$staged"
  chown "$uid:$gid" "$staged"
  mv -fT "$staged" "$dest"
  $PUT_FILE_RECORD && record_created file "$path"
  return 0
}

# put_user_file PATH MODE USER < CONTENT: a file inside USER's runner tree, written by USER (a
# symbolic link there is replaced, never written through). Sets LAST_CHANGED.
put_user_file() {
  local path=$1 mode=$2 user=$3 dest tmp uid="" gid=""
  dest=$(r "$path")
  tmp=$(mktemp "$WORK_TMP/file.XXXXXX")
  cat >"$tmp"
  uid=$(passwd_field "$user" 3 2>/dev/null) || uid=""
  gid=$(passwd_field "$user" 4 2>/dev/null) || gid=""
  LAST_CHANGED=false
  if [[ -f $dest && ! -L $dest && -n $uid ]] && cmp -s "$tmp" "$dest" &&
    [[ $(stat -c '%a %u %g' "$dest") == "$mode $uid $gid" ]]; then
    unchanged "$path"
    return 0
  fi
  LAST_CHANGED=true
  if [[ -L $dest ]]; then
    warn "$path is a symbolic link (planted by a job?); replacing it with a file written as $user, not following it"
  fi
  local verb=write
  [[ -e $dest || -L $dest ]] && verb=update
  changed "$verb $path ($mode $user:$user, as $user)"
  $DRY_RUN && return 0
  # shellcheck disable=SC2016 # expanded by the inner shell
  as_user "$user" sh -c 'set -e; t=$(mktemp "$(dirname "$1")/.labforge-write.XXXXXX"); cat >"$t"; chmod "$2" "$t"; mv -fT "$t" "$1"' \
    labforge-user-write "$dest" "$mode" <"$tmp" || die "cannot write $path as $user"
}

# ensure_dir PATH MODE OWNER GROUP: a root-managed directory (parents root owns). Records it
# in the install manifest when this run creates it.
ensure_dir() {
  local path=$1 mode=$2 owner=$3 group=$4 dest uid="" gid=""
  dest=$(r "$path")
  uid=$(uid_of "$owner" 2>/dev/null) || uid=""
  gid=$(gid_of "$group" 2>/dev/null) || gid=""
  if ! [[ -d $dest && -n $uid && -n $gid && $(stat -L -c '%a %u %g' "$dest") == "$mode $uid $gid" ]]; then
    changed "directory $path ($mode $owner:$group)"
    $DRY_RUN && return 0
    if [[ -d $dest ]]; then
      chmod "$mode" "$dest"
      chown "$uid:$gid" "$dest"
    else
      mkdir -p "$(dirname "$dest")"
      install -d -m "$mode" -o "$uid" -g "$gid" "$dest"
      record_created dir "$path"
      return 0
    fi
  fi
  # Our own subdirectories (hooks, bin, downloads) are recorded even when an earlier version made
  # them; the base and cache directories themselves only when this script created them.
  [[ $path == "$BASE_DIR" || $path == "$CACHE_DIR" ]] || record_created dir "$path"
}

# ensure_user_tree PATH MODE USER [root]: the top of a runner tree: created by root in a directory
# root owns and handed to USER; with "root", owned by root and group USER's group (the runner's own
# directory, mode 1770: the user may add files, but the sticky bit keeps it from removing,
# renaming or replacing root's). Refuses a symbolic link (chowning through it would give its
# target away) and a parent that someone other than root could change.
ensure_user_tree() {
  local path=$1 mode=$2 user=$3 owner_name=$3 dest parent uid="" gid=""
  dest=$(r "$path")
  parent=$(dirname "$dest")
  uid=$(passwd_field "$user" 3 2>/dev/null) || uid=""
  gid=$(passwd_field "$user" 4 2>/dev/null) || gid=""
  if [[ ${4:-} == root ]]; then uid=0 owner_name=root; fi
  [[ -L $dest ]] && die "$path is a symbolic link; refusing to hand it to $user (remove it, then run install again)"
  if [[ -d $parent ]] && ! [[ $(stat -c '%u' "$parent") == 0 && $(stat -c '%A' "$parent") != ?????w???? && $(stat -c '%A' "$parent") != ????????w? ]]; then
    die "$(dirname "$path") must be owned by root and writable only by root ($(stat -c '%A %U:%G' "$parent")); refusing to create $path in it"
  fi
  local created=false
  if [[ -d $dest ]]; then
    [[ -n $gid && $(stat -c '%a %u %g' "$dest") == "$mode $uid $gid" ]] || {
      changed "directory $path ($mode $owner_name:$user)"
      $DRY_RUN || { chown -h "$uid:$gid" "$dest" && chmod "$mode" "$dest"; }
    }
  else
    [[ -e $dest ]] && die "$path exists and is not a directory; refusing to replace it"
    changed "directory $path ($mode $owner_name:$user)"
    $DRY_RUN || install -d -m "$mode" -o "$uid" -g "$gid" "$dest"
    created=true
  fi
  # A tree is recorded when created, or when an earlier run (its runner manifest) created it.
  if $created || [[ -n ${KNOWN_RUNNER:-} ]]; then record_created tree "$path"; fi
}

# ensure_user_dir PATH MODE USER: a directory inside USER's runner tree, made by USER. A symbolic
# link there (planted by a job) is replaced by a directory; its target is never touched.
ensure_user_dir() {
  local path=$1 mode=$2 user=$3 dest uid="" gid=""
  dest=$(r "$path")
  uid=$(passwd_field "$user" 3 2>/dev/null) || uid=""
  gid=$(passwd_field "$user" 4 2>/dev/null) || gid=""
  if [[ -d $dest && ! -L $dest && -n $uid && $(stat -c '%a %u %g' "$dest") == "$mode $uid $gid" ]]; then
    return 0
  fi
  if [[ -L $dest ]]; then
    warn "$path is a symbolic link (planted by a job?); replacing it with a directory made by $user, not following it"
  fi
  changed "directory $path ($mode $user:$user, as $user)"
  $DRY_RUN && return 0
  # shellcheck disable=SC2016 # expanded by the inner shell
  as_user "$user" sh -c 'set -e; if [ -L "$1" ]; then rm -f "$1"; fi; if [ ! -d "$1" ]; then mkdir "$1"; fi; chmod "$2" "$1"' \
    labforge-user-mkdir "$dest" "$mode" || die "cannot make $path as $user"
  [[ $(stat -c '%u' "$dest") == "$uid" ]] || die "$path is not owned by $user; remove it, then run install again"
}

# remove_path PATH: remove a file or directory tree under --root if present (rm never follows links).
remove_path() {
  local dest
  dest=$(r "$1")
  [[ -e $dest || -L $dest ]] || return 0
  act "remove $1" rm -rf -- "$dest"
}

# --- install manifest ---------------------------------------------------------------------------------
# What install created under the base and cache directories, one "TYPE PATH" line each (TYPE: file,
# dir = removed only when empty, tree = a runner's directory or cache, removed with its content), in
# the order created. Root-owned files: $BASE_DIR/.labforge-install-manifest for the base directory,
# $CACHE_DIR/.labforge-install-manifest for the caches (kept until uninstall --purge).
readonly INSTALL_MANIFEST=.labforge-install-manifest

manifest_for() { # PATH: the manifest that records PATH (empty: none)
  if [[ $1 == "$BASE_DIR" || $1 == "$BASE_DIR"/* ]]; then echo "$BASE_DIR/$INSTALL_MANIFEST"
  elif [[ $1 == "$CACHE_DIR" || $1 == "$CACHE_DIR"/* ]]; then echo "$CACHE_DIR/$INSTALL_MANIFEST"
  fi
}

# record_created TYPE PATH
record_created() {
  $DRY_RUN && return 0
  local manifest file line
  manifest=$(manifest_for "$2")
  [[ -n $manifest ]] || return 0
  file=$(r "$manifest")
  [[ -d $(dirname "$file") ]] || return 0
  [[ -L $file ]] && die "$manifest is a symbolic link; refusing to write through it"
  line="$1 $2"
  [[ -f $file ]] && grep -qxF -- "$line" "$file" && return 0
  printf '%s\n' "$line" >>"$file"
  chmod 644 "$file"
}

# Host-level state (what this script created, so uninstall removes exactly that).
host_state_get() { # KEY
  local file
  file=$(r "$STATE_DIR/host.conf")
  [[ -f $file ]] || return 1
  awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); print; found = 1 } END { exit !found }' "$file"
}
HOST_STATE_LINES=()
host_state_set() { HOST_STATE_LINES+=("$1=$2"); }
# Keep what earlier runs recorded (e.g. the nested config of a run with --enable-nested).
host_state_load() {
  local key value
  for key in kvm_group_created nested_conf udev_rule kvm_device_original; do
    value=$(host_state_get "$key" 2>/dev/null) && host_state_set "$key" "$value"
  done
  return 0
}

# Per-runner manifest: key=value lines, read without evaluating anything.
manifest_get() { # FILE KEY
  awk -F= -v k="$2" '$1 == k { sub(/^[^=]*=/, ""); print; found = 1 } END { exit !found }' "$1"
}
installed_manifests() {
  local dir
  dir=$(r "$STATE_DIR/runners")
  [[ -d $dir ]] || return 0
  find "$dir" -maxdepth 1 -name '*.conf' -type f | sort
}
