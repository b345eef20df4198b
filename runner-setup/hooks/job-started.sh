#!/usr/bin/env bash
# labforge runner hook (ACTIONS_RUNNER_HOOK_JOB_STARTED): before a job runs, stop QEMU left over from
# earlier jobs of this runner, remove their stale overlays, and refuse to start without enough disk.
set -euo pipefail
# shellcheck source=runner-setup/hooks/runner-cleanup.sh
. "$(dirname "${BASH_SOURCE[0]}")/runner-cleanup.sh"

kill_stray_qemu
clean_runner_tmp
check_free_disk "${RUNNER_WORKSPACE:-$PWD}" "${LABFORGE_RUNNER_TMP:-}" "${PACKER_CACHE_DIR:-}"
