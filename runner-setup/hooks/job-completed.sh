#!/usr/bin/env bash
# labforge runner hook (ACTIONS_RUNNER_HOOK_JOB_COMPLETED): after a job, stop any QEMU it left running
# and remove its overlays, so that the next job starts on a clean runner.
set -euo pipefail
# shellcheck source=runner-setup/hooks/runner-cleanup.sh
. "$(dirname "${BASH_SOURCE[0]}")/runner-cleanup.sh"

kill_stray_qemu
clean_runner_tmp
