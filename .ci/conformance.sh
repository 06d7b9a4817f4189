#!/usr/bin/env bash
# Conformance stage: a second virtual environment (.venv-peers) holding hessref plus the
# peer tools (torch CPU, jax[cpu], curvlinops, BackPACK, PyHessian); runs the conformance
# suite, the torch cross-check and tutorial 07 there, then regenerates docs/conformance.md.
# hessref's own environment (.venv) never sees these packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg
start=$(date +%s)
out="$(mktemp -d)"  # results of this run (JSON for the report, JUnit XML for the skip check)

python3 -m venv .venv-peers
. .venv-peers/bin/activate
# The constraints file pins torch to the CPU build 2.13.0 for every resolution step.
# hessref itself plus the peers; only pytest and hypothesis (tests/conftest.py) of the
# test tools are needed here.
pip install -q -c conformance/constraints.txt -e . -r conformance/requirements.txt
python - <<'PY'
import importlib.metadata as md
import torch
assert "+cu" not in torch.__version__ and not torch.version.cuda, torch.__version__
for name in ("torch", "jax", "jaxlib", "curvlinops-for-pytorch", "backpack-for-pytorch", "pyhessian"):
    print(f"{name} {md.version(name)}")
PY
echo "peers install: $(( $(date +%s) - start )) s"

# conformance/conftest.py records every comparison and fails the session on any skip
# (every peer is installed here); the torch cross-check of the main suite runs here too.
OMP_NUM_THREADS=1 python -m pytest conformance tests/test_torch_crosscheck.py -q -ra \
    -p no:cacheprovider -W ignore::DeprecationWarning \
    --conformance-json "$out/results.json" --junitxml "$out/junit.xml"
python - "$out/junit.xml" <<'PY'
# no skips anywhere in this run (the torch cross-check of the main suite included)
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
skipped = [c.get("name") for c in root.iter("testcase") if c.find("skipped") is not None
           and "xfail" not in (c.find("skipped").get("type") or "") + (c.find("skipped").get("message") or "")]
total = sum(1 for _ in root.iter("testcase"))
assert total > 0, "no tests ran"
assert not skipped, f"skipped in the conformance environment: {skipped}"
print(f"conformance: {total} tests, none skipped")
PY
# tutorial 07 with its PyTorch cells (they need torch, so they run here)
HESSREF_REQUIRE_TORCH=1 python tutorials/07_hessref_as_an_oracle.py > /dev/null
# regenerate the published table from this run (exit 1 on a failed or missing tool)
python -m conformance.report "$out/results.json" --out docs/conformance.md
echo "conformance stage wall time: $(( $(date +%s) - start )) s"
