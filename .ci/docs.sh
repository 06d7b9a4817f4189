#!/usr/bin/env bash
# CI stage for the book: build the documentation site from scratch in fast mode with warnings
# as errors (the README's command), then open the built tutorial pages in headless Chromium
# and check that their figures and math render (docs/browser_check.py).
# Installs everything it needs: a separate venv with the docs extra, and Chromium from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg HESSREF_FAST=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

python3 -m venv .venv-docs
. .venv-docs/bin/activate
pip install -q --upgrade pip
start=$(date +%s)
# --- the README's docs command, verbatim (tests/test_tutorials.py checks they match) ---
DOCS_COMMAND='pip install -q -e ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html'
bash -c "$DOCS_COMMAND"
echo "docs build wall time: $(( $(date +%s) - start )) s"

# Chromium for the browser check (Debian package; about a minute to install)
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
python docs/browser_check.py docs/_build/html
