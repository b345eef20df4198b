#!/usr/bin/env bash
# Runs shellcheck over every bash script in the repository (by extension or by a bash shebang).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.sh' '*.bash' 'runner-setup/**' 'packer/**' '.ci/**' 'scripts/**' \
  | sort -u | while read -r f; do
      [ -f "$f" ] || continue
      case "$f" in *.sh|*.bash) echo "$f"; continue ;; esac
      head -n1 "$f" | grep -Eq '^#!.*\b(bash|sh)\b' && echo "$f"
    done)
if [ "${#files[@]}" -eq 0 ]; then echo "shellcheck: no scripts"; exit 0; fi
shellcheck -x "${files[@]}"
# runner-setup/setup.sh and its parts as one program: shellcheck does not report what it finds in a
# sourced file, and each part alone cannot tell whether a shared variable is used (SC2034, which
# the parts disable for themselves). Concatenated in setup.sh's order, the whole is checked.
whole=$(mktemp --suffix=.sh)
trap 'rm -f -- "$whole"' EXIT
# setup.sh with each '. "$SCRIPT_DIR/lib/X.sh"' line replaced by that part
while IFS= read -r line; do
  if [[ $line =~ ^\.\ \"\$SCRIPT_DIR/lib/([a-z-]+)\.sh\"$ ]]; then
    grep -v '^# shellcheck shell=bash' "runner-setup/lib/${BASH_REMATCH[1]}.sh"
  else
    printf '%s\n' "$line"
  fi
done <runner-setup/setup.sh >"$whole"
# every part is sourced, and the parts setup.sh checks before sourcing (LIB_FILES) are those it sources
parts=$(find runner-setup/lib -name '*.sh' -printf '%f\n' | sed 's/\.sh$//' | sort | tr '\n' ' ')
# shellcheck disable=SC2016 # a literal $SCRIPT_DIR in a sed pattern
sourced=$(sed -n 's/^\. "\$SCRIPT_DIR\/lib\/\([a-z-]*\)\.sh"$/\1/p' runner-setup/setup.sh | sort | tr '\n' ' ')
checked=$(sed -n 's/^readonly LIB_FILES=(\(.*\))$/\1/p' runner-setup/setup.sh | tr ' ' '\n' | sort | tr '\n' ' ')
if [ "$parts" != "$sourced" ] || [ "$parts" != "$checked" ]; then
  echo "shellcheck: runner-setup/lib has: $parts; setup.sh sources: $sourced; LIB_FILES: $checked" >&2
  exit 1
fi
shellcheck "$whole" || { echo "shellcheck: in runner-setup/lib/*.sh as one program (line numbers of the concatenation $whole)" >&2; exit 1; }
echo "shellcheck: ${#files[@]} scripts clean (runner-setup/lib: also as one program)"
