# shellcheck shell=bash disable=SC2034 # variables shared between the parts; scripts/shellcheck.sh also checks setup.sh and all its parts as one program
# labforge runner-setup/lib/hooks.sh: the job hooks and the re-registration helper installed into the base directory.
# Sourced by runner-setup/setup.sh (never run on its own); see the header of setup.sh.

install_hooks() {
  section "job hooks"
  ensure_dir "$BASE_DIR" 755 root root
  ensure_dir "$BASE_DIR/hooks" 755 root root
  local hook
  for hook in job-started.sh job-completed.sh runner-cleanup.sh; do
    put_file "$BASE_DIR/hooks/$hook" 755 root root <"$SCRIPT_DIR/hooks/$hook"
  done
  if [[ -n $GITHUB_PAT_FILE ]]; then
    ensure_dir "$BASE_DIR/bin" 755 root root
    put_file "$BASE_DIR/bin/labforge-reregister" 755 root root <"$SCRIPT_DIR/reregister.sh"
    ensure_dir "$STATE_DIR" 755 root root
    tr -d ' \t\r\n' <"$GITHUB_PAT_FILE" | put_file "$STATE_DIR/github-pat" 600 root root
  fi
}
