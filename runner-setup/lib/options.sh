# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/options.sh: usage, argument parsing, input validation and the registration token.
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME [COMMAND] [OPTIONS]

Turn a bare KVM host into one or many GitHub Actions runners that build labforge appliances.

Commands:
  install        (default) preflight, packages, KVM access, runner users, runners, services
  preflight      only the host checks; exit 0 = ready (maybe with warnings), 1 = not ready
  status         show each installed runner's service state; exit 1 if one is not active
  uninstall      stop, deregister and remove what install added (also: --uninstall)

Registration:
  --url URL              repository or organization URL (https://github.com/OWNER[/REPO])
  --token-file FILE      file holding the registration token (or set RUNNER_TOKEN in the
                         environment). Never pass a token on the command line.
                         uninstall needs a removal token the same way.
  --name NAME            runner name (default: short host name); with --count N: NAME-1..NAME-N
  --count N              N isolated runners on this host (own user, directory, work folder,
                         caches and service), 1..16 (default 1)
  --labels a,b           extra labels after $BASE_LABELS
  --runner-group NAME    runner group (organization runners)
  --ephemeral            register ephemeral runners (one job each, see docs/RUNNER_SETUP.md)
  --github-pat-file FILE with --ephemeral: a long-lived token (fine-grained PAT, "Self-hosted
                         runners: write" / repository "Administration: write") that the service
                         uses to register the runner again after each job; kept root-only
  --skip-register        prepare the host only: packages, KVM access, users, directories,
                         environment and hooks; no download, registration or service
                         (with uninstall: remove without deregistering)

Runner package:
  --runner-version V     actions/runner version (default $DEFAULT_RUNNER_VERSION, minimum $MIN_RUNNER_VERSION)
  --runner-sha256 HEX    expected SHA-256 of the tarball (built in for: ${!RUNNER_SHA256_X64[*]})
  --runner-tarball PATH  use this tarball instead of downloading it (checksum still verified)

Host:
  --user NAME            runner user (default labforge-runner; with --count N: NAME-1..NAME-N)
  --base-dir DIR         runner installations (default /opt/labforge-runner)
  --cache-dir DIR        persistent Packer caches and downloads (default /var/cache/labforge-runner)
  --min-free-gb N        job-started hook fails a job when less disk is free (default 50)
  --packer-source S      auto (HashiCorp's apt repository where reachable, else the distribution),
                         hashicorp, or distro (default auto)
  --enable-nested        turn nested virtualization on persistently (modprobe.d) and reload kvm
  --allow-no-kvm         missing /dev/kvm or CPU flags are warnings, not failures (CI hosts)

Lifecycle:
  --dry-run              print every action without doing any
  --purge                with uninstall: also remove the caches install created (only what
                         <cache-dir>/.labforge-install-manifest lists)
  --root DIR             prefix for every file written and read (default /, or LABFORGE_ROOT)
  -h, --help             this help

Exit codes: 0 done, 1 failed (preflight not passed, a step failed), 2 bad input.

Test seams (environment): SYSTEMCTL UDEVADM APT_GET DPKG_QUERY CURL GPG PACKER MODPROBE USERADD
USERMOD USERDEL GROUPADD GROUPDEL SETPRIV (commands); CPUINFO_PATH MEMINFO_PATH KVM_DEVICE
NESTED_PARAM_PATH OS_RELEASE_PATH UDEV_CONTROL_PATH HOST_ARCH (preflight inputs).
EOF
}

# --- input validation ---------------------------------------------------------------------------

# need_value OPTION [NEXT...]: the option's value must follow, and must not be the next option
# ("--labels --dry-run" is a missing label, not the label "--dry-run").
need_value() {
  [[ $# -ge 2 && -n $2 ]] || die_input "$1: missing value"
  [[ $2 != -[-A-Za-z]* ]] || die_input "$1: missing value (found the option '$2' where its value should be)"
}

parse_args() {
  if [[ $# -gt 0 && $1 != -* ]]; then
    case $1 in
      install | preflight | status | uninstall) COMMAND=$1 ;;
      *) die_input "unknown command '$1' (use install, preflight, status or uninstall)" ;;
    esac
    shift
  fi
  while [[ $# -gt 0 ]]; do
    case $1 in
      -h | --help) usage; exit 0 ;;
      --url) need_value "$@"; URL=$2; shift ;;
      --token-file) need_value "$@"; TOKEN_FILE=$2; shift ;;
      --token | --token=*) die_input "--token: a token on the command line is visible to every user of this host (ps, /proc); put it in RUNNER_TOKEN or a file given with --token-file" ;;
      --*=*) option_with_equals "$1" ;;
      --name) need_value "$@"; RUNNER_NAME=$2; shift ;;
      --count) need_value "$@"; COUNT=$2; shift ;;
      --labels) need_value "$@"; EXTRA_LABELS=$2; shift ;;
      --runner-group) need_value "$@"; RUNNER_GROUP=$2; shift ;;
      --ephemeral) EPHEMERAL=true ;;
      --github-pat-file) need_value "$@"; GITHUB_PAT_FILE=$2; shift ;;
      --user) need_value "$@"; RUNNER_USER=$2; shift ;;
      --runner-version) need_value "$@"; RUNNER_VERSION=$2; shift ;;
      --runner-sha256) need_value "$@"; RUNNER_SHA256=$2; shift ;;
      --runner-tarball) need_value "$@"; RUNNER_TARBALL=$2; shift ;;
      --base-dir) need_value "$@"; BASE_DIR=$2; shift ;;
      --cache-dir) need_value "$@"; CACHE_DIR=$2; shift ;;
      --min-free-gb) need_value "$@"; MIN_FREE_GB=$2; shift ;;
      --packer-source) need_value "$@"; PACKER_SOURCE=$2; shift ;;
      --enable-nested) ENABLE_NESTED=true ;;
      --allow-no-kvm) ALLOW_NO_KVM=true ;;
      --skip-register) SKIP_REGISTER=true ;;
      --uninstall) COMMAND=uninstall ;;
      --purge) PURGE=true ;;
      --dry-run) DRY_RUN=true ;;
      --root) need_value "$@"; ROOT=$2; shift ;;
      *) die_input "unknown option '$1'" ;;
    esac
    shift
  done
}

readonly FLAG_OPTIONS=" --help --ephemeral --enable-nested --allow-no-kvm --skip-register --uninstall --purge --dry-run "
readonly VALUE_OPTIONS=" --url --token-file --name --count --labels --runner-group --github-pat-file --user --runner-version --runner-sha256 --runner-tarball --base-dir --cache-dir --min-free-gb --packer-source --root "

# option_with_equals ARG: "--option=value" is not how this script takes options: say which way is.
option_with_equals() {
  local opt=${1%%=*}
  if [[ $FLAG_OPTIONS == *" $opt "* ]]; then
    die_input "$opt: takes no value (found '$1')"
  elif [[ $VALUE_OPTIONS == *" $opt "* ]]; then
    die_input "$opt: give the value after a space ($opt VALUE), not after '='"
  fi
  die_input "unknown option '$1'"
}

version_at_least() { # HAVE WANT
  [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]
}

validate_common() {
  [[ $ROOT == /* ]] || die_input "--root: '$ROOT' is not an absolute path (give an absolute directory)"
  [[ -d $ROOT ]] || die_input "--root: '$ROOT' does not exist (create it or use /)"
  local opt value
  for opt in base-dir cache-dir; do
    if [[ $opt == base-dir ]]; then value=$BASE_DIR; else value=$CACHE_DIR; fi
    [[ $value == /* && $value != / && $value != *..* && $value != */./* && $value != */. ]] ||
      die_input "--$opt: '$value' must be an absolute directory other than / without '.' or '..'"
    [[ $value =~ ^[A-Za-z0-9/._+-]+$ ]] ||
      die_input "--$opt: '$value' may only contain letters, digits and / . _ + -"
    while [[ $value == *//* ]]; do value=${value//\/\//\/}; done
    value=${value%/}
    system_directory "$value" &&
      die_input "--$opt: '$value' is a system directory (uninstall would remove from it); give a directory of its own, such as /opt/labforge-runner or /var/cache/labforge-runner"
    if [[ $opt == base-dir ]]; then BASE_DIR=$value; else CACHE_DIR=$value; fi
  done
  if [[ $BASE_DIR == "$CACHE_DIR" || $BASE_DIR == "$CACHE_DIR"/* || $CACHE_DIR == "$BASE_DIR"/* ]]; then
    die_input "--cache-dir: '$CACHE_DIR' and --base-dir '$BASE_DIR' must be separate directories, neither inside the other"
  fi
  validate_numbers
  [[ $RUNNER_USER =~ ^[a-z_][a-z0-9_-]{0,28}$ ]] ||
    die_input "--user: '$RUNNER_USER' is not a valid user name (lower case letters, digits, '-', '_'; at most 29 characters)"
  validate_values
}

# validate_values: the form of every other option's value, in every command (what a value must
# be does not depend on the command; whether it is needed does: validate_install).
validate_values() {
  [[ -z $RUNNER_NAME ]] || validate_name
  if [[ -n $EXTRA_LABELS ]]; then
    [[ $EXTRA_LABELS =~ ^[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*$ ]] ||
      die_input "--labels: '$EXTRA_LABELS' must be a comma-separated list of labels (letters, digits, '.', '_', '-')"
  fi
  if [[ -n $RUNNER_GROUP ]]; then
    [[ $RUNNER_GROUP =~ ^[A-Za-z0-9][A-Za-z0-9\ ._-]{0,63}$ ]] ||
      die_input "--runner-group: '$RUNNER_GROUP' is not a runner group name (letters, digits, spaces, '.', '_', '-'; at most 64 characters)"
  fi
  case $PACKER_SOURCE in
    auto | hashicorp | distro) ;;
    *) die_input "--packer-source: '$PACKER_SOURCE' is not one of auto, hashicorp, distro" ;;
  esac
  [[ $RUNNER_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die_input "--runner-version: '$RUNNER_VERSION' is not a version like $DEFAULT_RUNNER_VERSION"
  version_at_least "$RUNNER_VERSION" "$MIN_RUNNER_VERSION" ||
    die_input "--runner-version: $RUNNER_VERSION is too old; GitHub only registers runners >= $MIN_RUNNER_VERSION"
  if [[ -n $RUNNER_SHA256 ]]; then
    RUNNER_SHA256=${RUNNER_SHA256,,}
    [[ $RUNNER_SHA256 =~ ^[0-9a-f]{64}$ ]] || die_input "--runner-sha256: not a SHA-256 (64 hex digits)"
  fi
  if [[ -n $URL ]]; then
    [[ $URL =~ ^https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?/?$ ]] ||
      die_input "--url: '$URL' is not https://HOST/OWNER or https://HOST/OWNER/REPO"
  fi
  # Files: regular files (never a device or a directory, so reading them is bounded) that can be read.
  local opt file
  for opt in token-file github-pat-file runner-tarball; do
    case $opt in
      token-file) file=$TOKEN_FILE ;;
      github-pat-file) file=$GITHUB_PAT_FILE ;;
      runner-tarball) file=$RUNNER_TARBALL ;;
    esac
    [[ -z $file ]] && continue
    [[ -f $file && -r $file ]] || die_input "--$opt: cannot read '$file' (not a readable regular file)"
  done
  if [[ -n $GITHUB_PAT_FILE && ! -s $GITHUB_PAT_FILE ]]; then
    die_input "--github-pat-file: '$GITHUB_PAT_FILE' is empty"
  fi
  return 0
}

validate_name() {
  [[ $RUNNER_NAME =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,60}$ ]] ||
    die_input "--name: '$RUNNER_NAME' is not a valid runner name (letters, digits, '.', '_', '-'; at most 61 characters)"
  case $RUNNER_NAME in
    hooks | bin | downloads) die_input "--name: '$RUNNER_NAME' is reserved (install keeps its own $RUNNER_NAME directory next to the runners)" ;;
  esac
}

# system_directory DIR: a directory of the system (or one everybody can write to), never a base or
# cache directory of ours.
system_directory() {
  case $1 in
    / | /bin | /boot | /dev | /etc | /home | /lib | /lib32 | /lib64 | /libx32 | /media | /mnt | /opt | /proc | \
      /root | /run | /sbin | /srv | /sys | /tmp | /usr | /usr/bin | /usr/games | /usr/include | /usr/lib | \
      /usr/lib32 | /usr/lib64 | /usr/libexec | /usr/local | /usr/local/bin | /usr/local/etc | /usr/local/games | \
      /usr/local/include | /usr/local/lib | /usr/local/man | /usr/local/sbin | /usr/local/share | /usr/local/src | /usr/sbin | /usr/share | /usr/src | \
      /var | /var/backups | /var/cache | /var/lib | /var/local | /var/log | /var/mail | /var/opt | /var/spool | \
      /var/tmp | /var/www | /snap | /lost+found) return 0 ;;
    /tmp/* | /var/tmp/* | /dev/* | /proc/* | /sys/* | /run/*) return 0 ;;
  esac
  return 1
}

# validate_numbers: every numeric option, for every command (preflight computes with --count).
validate_numbers() {
  if ! [[ $COUNT =~ ^[0-9]{1,3}$ ]] || ((10#$COUNT < 1 || 10#$COUNT > 16)); then
    die_input "--count: '$COUNT' is not a number from 1 to 16"
  fi
  COUNT=$((10#$COUNT))
  if ! [[ $MIN_FREE_GB =~ ^[0-9]{1,6}$ ]]; then
    die_input "--min-free-gb: '$MIN_FREE_GB' is not a whole number of GB from 0 to 999999"
  fi
  MIN_FREE_GB=$((10#$MIN_FREE_GB))
}

validate_install() {
  if [[ -z $RUNNER_NAME ]]; then
    RUNNER_NAME=$(hostname -s 2>/dev/null || hostname)
    validate_name
  fi
  if ! $SKIP_REGISTER; then
    [[ -n $URL ]] || die_input "--url: missing (https://github.com/OWNER/REPO or https://github.com/ORG; or use --skip-register)"
    if [[ -z $RUNNER_SHA256 && -z ${RUNNER_SHA256_X64[$RUNNER_VERSION]:-} ]]; then
      die_input "--runner-sha256: no built-in checksum for runner $RUNNER_VERSION; give the SHA-256 from the release page"
    fi
    [[ -n $RUNNER_SHA256 ]] || RUNNER_SHA256=${RUNNER_SHA256_X64[$RUNNER_VERSION]}
    if [[ -n $RUNNER_TARBALL ]]; then
      [[ -f $RUNNER_TARBALL && -r $RUNNER_TARBALL ]] ||
        die_input "--runner-tarball: cannot read '$RUNNER_TARBALL' (give the path of actions-runner-linux-x64-$RUNNER_VERSION.tar.gz)"
      local actual
      actual=$(sha256sum "$RUNNER_TARBALL" | cut -d' ' -f1)
      [[ $actual == "$RUNNER_SHA256" ]] ||
        die_input "--runner-tarball: SHA-256 mismatch for $RUNNER_TARBALL: expected $RUNNER_SHA256, got $actual (refusing to install it; download it again from https://github.com/actions/runner/releases)"
    fi
    if [[ -n $GITHUB_PAT_FILE ]]; then
      $EPHEMERAL || die_input "--github-pat-file: only used with --ephemeral (to register the runner again after each job)"
      [[ -f $GITHUB_PAT_FILE && -r $GITHUB_PAT_FILE && -s $GITHUB_PAT_FILE ]] ||
        die_input "--github-pat-file: cannot read '$GITHUB_PAT_FILE' or it is empty"
    elif $EPHEMERAL; then
      warn "--ephemeral without --github-pat-file: each runner takes one job and is not registered again"
    fi
    read_token
  fi
}

# The registration (or removal) token: from a file or RUNNER_TOKEN; never from argv, never printed.
read_token() {
  if [[ -n $TOKEN_FILE ]]; then
    [[ -f $TOKEN_FILE && -r $TOKEN_FILE ]] || die_input "--token-file: cannot read '$TOKEN_FILE'"
    if [[ $(stat -c '%a' "$TOKEN_FILE") =~ [0-7][0-7][1-7]$ ]]; then
      warn "--token-file: $TOKEN_FILE is readable by other users (chmod 600 it)"
    fi
    TOKEN=$(tr -d ' \t\r\n' <"$TOKEN_FILE")
  else
    TOKEN=${RUNNER_TOKEN:-}
  fi
  unset RUNNER_TOKEN
  [[ -n $TOKEN ]] ||
    die_input "registration token missing: set RUNNER_TOKEN or pass --token-file FILE (token from Settings > Actions > Runners > New self-hosted runner, or POST /repos/OWNER/REPO/actions/runners/registration-token); or use --skip-register"
  [[ $TOKEN =~ ^[^[:space:]]+$ ]] || die_input "registration token: contains white space (check the token file)"
}
