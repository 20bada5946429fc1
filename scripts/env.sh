# Sourced by scripts/demo.sh and scripts/test.sh: make .venv with .ci/install (every extra that runs
# on a CPU, at the versions of requirements/lock.txt) on first use, and again whenever the lock or
# pyproject.toml changed since. MILMER_SERVE_ENV=0 skips the serving environment (.venv-serve).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
_want=$(cat requirements/lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/milmer ] || [ "$(cat .venv/.milmer-installed 2>/dev/null)" != "$_want" ]; then
  echo "== installing milmer into .venv from requirements/lock.txt (first run: about 5 minutes)"
  bash .ci/install
fi
unset _want
