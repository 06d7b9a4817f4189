"""``hessref demo`` before → after: this tree against an older tree, alternating runs.

Each round runs ``python -m hessref demo`` (default full profile unless ``--fast``) once
with ``PYTHONPATH`` pointing at the older tree and once at this tree, each in a fresh
process writing to its own temporary folder; the order alternates between rounds so that
machine load affects both alike. Reports, per tree, the best of the rounds for the
demo's own compute time (``summary.json`` ``timings.total``, the experiment without
import, plotting and report writing) and the process wall time, and the ratios
old / new. Also checks that both trees report the same eigenvalues to 1e-12 relative.

Make the older tree with e.g.
``mkdir /tmp/hessref-020 && git archive daf48f5 | tar -x -C /tmp/hessref-020``.

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_demo.py
        --baseline /tmp/hessref-020 [--repeats 3] [--fast] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent


def run_demo(tree: Path, out: Path, fast: bool) -> dict:
    """One demo in a fresh process importing ``tree``; its timings, wall time and spectra."""
    env = dict(os.environ, PYTHONPATH=str(tree), MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "hessref", "demo", "--out", str(out), "--force", "--quiet"]
    t = time.perf_counter()
    subprocess.run(cmd + (["--fast"] if fast else []), env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    H = np.array(summary["per_seed"][0]["eigenvalues"]["H"])
    return {"compute": float(summary["timings"]["total"]), "wall": wall, "H": H}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="older hessref tree")
    parser.add_argument("--tree", default=str(HERE), help="newer tree (default: this one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    trees = {"old": Path(args.baseline).resolve(), "new": Path(args.tree).resolve()}
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                res = run_demo(trees[name], Path(tmp) / f"{name}{r}", args.fast)
                runs[name].append(res)
                print(f"round {r} {name}: compute {res['compute']:.2f} s, wall {res['wall']:.2f} s")
    H_old, H_new = runs["old"][0]["H"], runs["new"][0]["H"]
    diff = float(np.max(np.abs(H_old - H_new)) / np.max(np.abs(H_old)))
    best = {n: {k: min(x[k] for x in runs[n]) for k in ("compute", "wall")} for n in runs}
    out = {
        "profile": "fast" if args.fast else "full",
        "load_average_end": os.getloadavg(),
        "compute_s": {n: [x["compute"] for x in runs[n]] for n in runs},
        "wall_s": {n: [x["wall"] for x in runs[n]] for n in runs},
        "speedup_compute": best["old"]["compute"] / best["new"]["compute"],
        "speedup_wall": best["old"]["wall"] / best["new"]["wall"],
        "H_eigenvalues_max_rel_diff": diff,
    }
    print(
        f"best of {args.repeats}: compute old {best['old']['compute']:.2f} s, new "
        f"{best['new']['compute']:.2f} s, speed-up {out['speedup_compute']:.2f}x; wall old "
        f"{best['old']['wall']:.2f} s, new {best['new']['wall']:.2f} s, speed-up "
        f"{out['speedup_wall']:.2f}x; H eigenvalues agree to {diff:.1e} (relative); "
        f"load average {out['load_average_end'][0]:.2f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
