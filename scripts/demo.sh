#!/usr/bin/env bash
# Quick start, 1 of 2: install (first use only) and run `milmer demo` on synthetic data, on a CPU.
# Arguments go to `milmer demo` (e.g. --out DIR, --ablations); the default output folder is demo/.
set -euo pipefail
MILMER_SERVE_ENV=${MILMER_SERVE_ENV:-0}
export MILMER_SERVE_ENV
. "$(dirname "$0")/env.sh"
exec .venv/bin/milmer demo "$@"
