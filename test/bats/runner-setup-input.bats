#!/usr/bin/env bats
# runner-setup/setup.sh input validation: an option's value never swallows the next option, every
# numeric option is checked the same way in every command, and system directories are refused as
# base or cache directories. All of these fail with exit 2 before anything is looked at or changed.

SETUP=$(cd "$(dirname "$BATS_TEST_FILENAME")/../.." && pwd)/runner-setup/setup.sh

setup() {
  ROOT_DIR=$(mktemp -d /tmp/labforge-runner-input.XXXXXX)
}

teardown() {
  [[ -n ${ROOT_DIR:-} && $ROOT_DIR == /tmp/labforge-runner-input.* ]] && rm -rf -- "$ROOT_DIR"
  return 0
}

# refused STATUS OUTPUT-PART: exit 2, the message, and nothing started.
refused() {
  [ "$status" -eq 2 ] || { echo "status $status: $output"; return 1; }
  [[ $output == *"$1"* ]] || { echo "missing '$1' in: $output"; return 1; }
  [[ $output != *"==>"* ]] || { echo "went on: $output"; return 1; }
}

@test "the issue's command: --labels followed by --dry-run is a missing label, not a real install" {
  run "$SETUP" install --root "$ROOT_DIR" --skip-register --labels --dry-run
  refused "setup.sh: --labels: missing value (found the option '--dry-run' where its value should be)"
  [ -z "$(ls -A "$ROOT_DIR")" ]
}

@test "every option that takes a value refuses a following option" {
  for opt in --url --token-file --name --count --labels --runner-group --github-pat-file --user \
    --runner-version --runner-sha256 --runner-tarball --base-dir --cache-dir --min-free-gb \
    --packer-source --root; do
    run "$SETUP" install --skip-register "$opt" --dry-run
    refused "$opt: missing value (found the option '--dry-run'" || { echo "option $opt"; return 1; }
    run "$SETUP" preflight "$opt" -h
    refused "$opt: missing value (found the option '-h'" || { echo "option $opt"; return 1; }
    run "$SETUP" install --skip-register "$opt"
    refused "$opt: missing value" || { echo "option $opt"; return 1; }
  done
}

@test "--count must be a number from 1 to 16 in every command" {
  for cmd in install preflight status uninstall; do
    for bad in abc -1 0 17 1e3 99999999999999999999 ' 3'; do
      run "$SETUP" "$cmd" --root "$ROOT_DIR" --skip-register --count "$bad"
      refused "--count: '$bad' is not a number from 1 to 16" || { echo "$cmd --count '$bad'"; return 1; }
    done
    run "$SETUP" "$cmd" --root "$ROOT_DIR" --skip-register --count 16 --dry-run
    [[ $output != *"--count:"* ]] && [ "$status" -ne 2 ] || { echo "$cmd --count 16: $output"; return 1; }
  done
}

@test "--min-free-gb must be a whole number of GB in every command" {
  for cmd in install preflight status uninstall; do
    for bad in abc -1 1.5 9999999 99999999999999999999; do
      run "$SETUP" "$cmd" --root "$ROOT_DIR" --skip-register --min-free-gb "$bad"
      refused "--min-free-gb: '$bad' is not a whole number of GB from 0 to 999999" || { echo "$cmd --min-free-gb '$bad'"; return 1; }
    done
    run "$SETUP" "$cmd" --root "$ROOT_DIR" --skip-register --min-free-gb 0 --dry-run
    [[ $output != *"--min-free-gb:"* ]] && [ "$status" -ne 2 ] || { echo "$cmd --min-free-gb 0: $output"; return 1; }
  done
}

@test "system directories are refused as base or cache directory" {
  for cmd in install uninstall preflight; do
    for dir in /usr/local /usr/local/ //usr//local /var/cache /opt /etc /home /root /tmp /tmp/x /var /usr /var/lib /srv /; do
      run "$SETUP" "$cmd" --root "$ROOT_DIR" --skip-register --base-dir "$dir"
      [ "$status" -eq 2 ] && [[ $output == *"--base-dir: '"* ]] || { echo "$cmd --base-dir $dir: $output"; return 1; }
      run "$SETUP" "$cmd" --root "$ROOT_DIR" --skip-register --cache-dir "$dir"
      [ "$status" -eq 2 ] && [[ $output == *"--cache-dir: '"* ]] || { echo "$cmd --cache-dir $dir: $output"; return 1; }
    done
  done
  run "$SETUP" uninstall --root "$ROOT_DIR" --base-dir /usr/local
  refused "setup.sh: --base-dir: '/usr/local' is a system directory"
  [ "$(grep -c '' <<<"$output")" -eq 1 ] # one line, ending with the pointer to --help
  [[ $output == *"(see setup.sh --help)" ]]
  run "$SETUP" install --root "$ROOT_DIR" --skip-register --cache-dir /var/cache/
  refused "--cache-dir: '/var/cache' is a system directory"
  run "$SETUP" install --root "$ROOT_DIR" --skip-register --cache-dir /opt/labforge-runner/cache
  refused "--cache-dir: '/opt/labforge-runner/cache' and --base-dir '/opt/labforge-runner' must be separate directories"
}

@test "runner names that collide with install's own directories are refused" {
  for name in hooks bin downloads; do
    run "$SETUP" install --root "$ROOT_DIR" --skip-register --name "$name"
    refused "--name: '$name' is reserved"
  done
}

# The bad-input table: every option of every command gets at least one bad value (names with
# spaces, quotes, $(), newlines and non-ASCII; devices and directories where a file is expected),
# and each case must end with exit status 2, one line that names the option, no raw workflow
# command, within 5 s. Rows: OPTION, then the arguments that carry the bad value.
table() {
  empty=$ROOT_DIR/empty-file && : >"$empty"
  rows=(
    --url "--url|http://github.com/x"
    --url "--url|https://github.com/o/r"$'\n'"::error::injected"
    --url "--url|https://github.com/\$(touch $ROOT_DIR/pwned)"
    --url "--url=https://github.com/o/r"
    --token-file "--token-file|$ROOT_DIR/no-such-token"
    --token-file "--token-file|/dev/zero"
    --token-file "--token-file|$ROOT_DIR"
    --token "--token|AAAATESTDOUBLETOKEN7Q3ZX9"
    --name "--name|bad name"
    --name "--name|\$(touch $ROOT_DIR/pwned)"
    --name "--name|bu"$'\u0308'"ild"
    --name "--name|it's"
    --count "--count|abc"
    --labels "--labels|a,,b"
    --labels "--labels|a"$'\n'"::warning::b"
    --runner-group "--runner-group|grp"$'\n'"::error::x"
    --runner-group "--runner-group|\"quoted\""
    --github-pat-file "--github-pat-file|$ROOT_DIR/no-such-pat"
    --github-pat-file "--github-pat-file|/dev/urandom"
    --github-pat-file "--github-pat-file|$empty"
    --user "--user|Root"
    --user "--user|ünïcode"
    --runner-version "--runner-version|1.2"
    --runner-version "--runner-version|2.300.0"
    --runner-sha256 "--runner-sha256|xyz"
    --runner-tarball "--runner-tarball|$ROOT_DIR/no-such.tar.gz"
    --runner-tarball "--runner-tarball|$ROOT_DIR"
    --runner-tarball "--runner-tarball|/dev/urandom"
    --base-dir "--base-dir|relative/dir"
    --cache-dir "--cache-dir|/var/cache/a b"
    --min-free-gb "--min-free-gb|lots"
    --packer-source "--packer-source|ftp"
    --root "--root|relative/dir"
    --root "--root|$ROOT_DIR/missing"
    --ephemeral "--ephemeral=yes"
    --skip-register "--skip-register=1"
    --enable-nested "--enable-nested=true"
    --allow-no-kvm "--allow-no-kvm=x"
    --uninstall "--uninstall=now"
    --purge "--purge=all"
    --dry-run "--dry-run=yes"
    --help "--help=me"
    --frobnicate "--frobnicate"
  )
}

@test "bad-input table: every option of every command, exit 2 and one line naming it within 5 s" {
  table
  cases=0
  for cmd in install preflight status uninstall; do
    for ((i = 0; i < ${#rows[@]}; i += 2)); do
      opt=${rows[i]}
      IFS='|' read -r -d '' -a args < <(printf '%s' "${rows[i + 1]}") || true
      start=$(date +%s%N)
      run "$SETUP" "$cmd" --root "$ROOT_DIR" --skip-register "${args[@]}"
      ms=$((($(date +%s%N) - start) / 1000000))
      what="$cmd ${rows[i + 1]}: status $status, ${ms} ms: $output"
      [ "$status" -eq 2 ] || { echo "exit: $what"; return 1; }
      [ "$(printf '%s\n' "$output" | grep -c '')" -eq 1 ] || { echo "not one line: $what"; return 1; }
      [[ $output == "setup.sh: "*"$opt"*"(see setup.sh --help)" ]] || { echo "does not name $opt: $what"; return 1; }
      [[ $output != *AAAATESTDOUBLETOKEN7Q3ZX9* ]] || { echo "echoed the token: $what"; return 1; }
      ((ms < 5000)) || { echo "slow: $what"; return 1; }
      cases=$((cases + 1))
    done
  done
  [ ! -e "$ROOT_DIR/pwned" ]
  [ -z "$(ls -A "$ROOT_DIR" | grep -v -x empty-file)" ]
  echo "# $cases bad-input cases" >&3
  [ "$cases" -eq $((4 * ${#rows[@]} / 2)) ]
}

@test "an unknown command is one line naming it" {
  run "$SETUP" instal --root "$ROOT_DIR"
  [ "$status" -eq 2 ]
  [ "$output" == "setup.sh: unknown command 'instal' (use install, preflight, status or uninstall) (see setup.sh --help)" ]
}
