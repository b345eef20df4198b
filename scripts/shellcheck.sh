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
echo "shellcheck: ${#files[@]} scripts clean"
