#!/usr/bin/env bash
# CI stage: the main test suite on the OLDEST dependency versions setup.cfg declares.
# Every "name>=version" floor of install_requires and of the test and distributed extras (ruff excluded:
# lint runs in the main environment) is installed as "name==version" in a second venv,
# .venv-oldest, so a floor that is too low fails here instead of on a user's machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg

PINS=$(python3 - <<'PY'
import configparser, re
cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
extras = cfg["options.extras_require"]
lines = cfg["options"]["install_requires"].split("\n")
lines += extras["test"].split("\n") + extras["distributed"].split("\n")
pins = []
for line in filter(None, (l.strip() for l in lines)):
    m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", line)
    if m is None:
        raise SystemExit(f"setup.cfg: cannot read a floor from {line!r} (expected name>=version)")
    if m.group(1) != "ruff":
        pins.append(f"{m.group(1)}=={m.group(2)}")
print(" ".join(pins))
PY
)
echo "oldest declared versions: $PINS"
python3 -m venv .venv-oldest
. .venv-oldest/bin/activate
pip install -q --upgrade pip
# shellcheck disable=SC2086
pip install -q $PINS
pip install -q --no-deps -e .
python - <<'PY'
import numpy, scipy, matplotlib, sklearn
print("running on numpy", numpy.__version__, "scipy", scipy.__version__,
      "matplotlib", matplotlib.__version__, "scikit-learn", sklearn.__version__)
PY
start=$(date +%s)
set +e
python -m pytest -q -p no:cacheprovider
rc=$?
set -e
echo "oldest-versions suite wall time: $(( $(date +%s) - start )) s"
if [ "$rc" -eq 5 ]; then echo "oldest.sh: no tests collected" >&2; exit 1; fi
exit "$rc"
