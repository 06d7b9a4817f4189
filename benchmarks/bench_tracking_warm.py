"""Sharpness-tracking cost per record, this tree against an older tree (before → after).

Setting: 4-class Gaussian mixture in d = 10 (N = 400, separation 3), MLP 10→40→40→4
tanh (P = 2,244), cross-entropy, full-batch GD (step 0.5, 100 steps), ``Tracking(every=10,
top_k=K, smallest=S)``: 11 records. Each configuration runs in a fresh worker process
importing either tree, alternating old/new per round; reported per tree: Hessian-vector
products per record (mean over the records, deterministic), the best wall time of
``train(..., track=...)`` over the rounds, and the largest error of the recorded top-K
and λ_min at the last record against ``eigenvalues(hessian(θ_T))`` relative to ‖H‖.

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_tracking_warm.py
        --baseline /tmp/hessref-base [--repeats 3] [--json out.json]

(``--worker TREE K S`` is the internal worker mode.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CONFIGS = [(3, True), (1, False)]  # (top_k, smallest)


def worker(top_k: int, smallest: bool) -> dict:
    """One tracked training run in this process (the tree on PYTHONPATH)."""
    import numpy as np

    import hessref as hr
    from hessref import data, spectrum
    from hessref.train import Tracking, train

    X, y = data.gaussian_mixture(400, 4, 10, separation=3.0, means="normal", rng=0)
    model = hr.MLP([10, 40, 40, 4], activation="tanh")
    track = Tracking(every=10, top_k=top_k, smallest=smallest, rng=0)
    t = time.perf_counter()
    res = train(model, model.init(0), X, y, loss="cross_entropy", lr=0.5, steps=100, track=track)
    wall = time.perf_counter() - t
    ev = spectrum.eigenvalues(hr.hessian(model, res.theta, X, y, loss="cross_entropy"))
    scale = float(np.max(np.abs(ev)))
    tr = res.tracking
    err = float(np.max(np.abs(tr.top[-1] - ev[:top_k]))) / scale
    if smallest:
        err = max(err, abs(float(tr.smallest[-1]) - ev[-1]) / scale)
    return {
        "wall": wall,
        "products_per_record": float(tr.matvecs.mean()),
        "records": int(tr.steps.size),
        "max_rel_error_last_record": err,
    }


def run(tree: Path, top_k: int, smallest: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, __file__, "--worker", str(tree), str(top_k), str(int(smallest))]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="older hessref tree")
    parser.add_argument("--tree", default=str(HERE), help="newer tree (default: this one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(int(args.worker[1]), bool(int(args.worker[2])))))
        return
    trees = {"old": Path(args.baseline).resolve(), "new": Path(args.tree).resolve()}
    results: dict = {}
    for top_k, smallest in CONFIGS:
        key = f"top_k={top_k}, smallest={smallest}"
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for r in range(args.repeats):
            for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                runs[name].append(run(trees[name], top_k, smallest))
        row = {}
        for name, rs in runs.items():
            row[name] = {
                **rs[0],
                "wall": min(x["wall"] for x in rs),
                "walls": [x["wall"] for x in rs],
            }
        row["wall_ratio_new_over_old"] = row["new"]["wall"] / row["old"]["wall"]
        results[key] = row
        print(
            f"{key}: products/record {row['old']['products_per_record']:.1f} -> "
            f"{row['new']['products_per_record']:.1f}; best wall {row['old']['wall']:.2f} s -> "
            f"{row['new']['wall']:.2f} s ({row['wall_ratio_new_over_old']:.2f}x); max error vs "
            f"dense / max|λ| {row['old']['max_rel_error_last_record']:.1e} -> "
            f"{row['new']['max_rel_error_last_record']:.1e}"
        )
    results["load_average_end"] = os.getloadavg()
    print(f"load average {results['load_average_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
