#!/usr/bin/env bash
# Refresh the lock: resolve pyproject.toml's ranges to exact versions, for the runtime
# (requirements/run.txt) and for the test extra (requirements/test.txt).
# Resolved by pip's own resolver (pip-tools), against the index pip is configured for, with the
# torch build installed first (the README's `pip install torch==2.13.0`, the CPU build here):
# torch (and pip/setuptools) are left out of the lock, so a GPU machine keeps the CUDA build it installed, but
# torch's own dependencies are pinned. Run from anywhere; needs `pip install pip-tools`.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--quiet --strip-extras --unsafe-package torch --no-emit-index-url
        --no-emit-find-links --no-emit-trusted-host --resolver backtracking --newline LF)
python -m piptools compile "${common[@]}" "$@" --constraint requirements/torch.txt --extra test --extra cluster --extra s3 \
    --output-file requirements/test.txt pyproject.toml
# the runtime lock is the test lock's subset: what the tests ran is what a run installs
python -m piptools compile "${common[@]}" --constraint requirements/torch.txt \
    --constraint requirements/test.txt --output-file requirements/run.txt pyproject.toml
echo "lock refreshed: requirements/run.txt, requirements/test.txt (torch left to the README's install step)"
