#!/usr/bin/env bash
# Early warning: run the test suite against the NEWEST releases pyproject.toml's ranges allow
# (no lock), in a throw-away venv, and write a report (.newest/report.md): which packages moved
# past the lock and what failed. It never touches the lock or .venv; CI keeps installing the lock.
# torch stays at requirements/torch.txt (the build the README installs; newer builds are CUDA
# wheels of several GB here). Extra arguments go to pytest (e.g. `-x`, `tests/pipeline`).
set -uo pipefail
cd "$(dirname "$0")/.."
out=.newest
rm -rf "$out" && mkdir -p "$out"
python3 -m venv "$out/venv"
. "$out/venv/bin/activate"
{ pip install -q -c requirements/torch.txt "$(grep -v '^#' requirements/torch.txt)" \
  && pip install -q --upgrade -c requirements/torch.txt -e ".[test,cluster]"; } >"$out/install.log" 2>&1
installed=$?
moved=$(python - <<'PY'
from jobs.lockfile import LOCK_DIR, drift
print("\n".join(f"- {line}" for line in drift(LOCK_DIR / "test.txt")) or "- nothing: the lock is current")
PY
)
status=install-failed
if [ "$installed" = 0 ]; then
    BIOMINE_SKIP_LOCK_CHECK=1 python -m pytest -q -p no:cacheprovider "$@" >"$out/pytest.log" 2>&1
    rc=$?
    status=$([ "$rc" = 0 ] && echo passed || echo "failed (pytest exit $rc)")
fi
{
    echo "# Newest releases vs the lock ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "Result: **$status**"
    echo
    echo "## Packages newer (or other) than requirements/test.txt"
    echo "$moved"
    echo
    echo "## Test summary"
    echo '```'
    if [ "$installed" = 0 ]; then grep -E "^(FAILED|ERROR)|passed|failed" "$out/pytest.log" | tail -40
    else tail -20 "$out/install.log"; fi
    echo '```'
} >"$out/report.md"
cat "$out/report.md"
