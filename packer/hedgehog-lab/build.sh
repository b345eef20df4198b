#!/usr/bin/env bash
# build.sh: build the Hedgehog lab appliance on this machine; the same as `labforge build --appliance
# packer/hedgehog-lab` (per-build key and seed, the variable contract, packer validate and build, the OVA).
# Any flag of `labforge build` may follow, e.g. --version 1.4.0 --validate-only.
set -euo pipefail
exec node "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/bin/labforge" build --appliance "$(dirname "${BASH_SOURCE[0]}")" "$@"
