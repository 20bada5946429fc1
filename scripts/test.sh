#!/usr/bin/env bash
# Quick start, 2 of 2: install (first use only) and run the test suite. Arguments go to pytest
# (e.g. tests/runtime -x). CI (.ci/run) ends with this same command.
set -euo pipefail
. "$(dirname "$0")/env.sh"
if [ $# -eq 0 ]; then set -- -n 2 -q; fi
exec .venv/bin/python -m pytest "$@"
