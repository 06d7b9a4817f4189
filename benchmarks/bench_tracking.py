"""Sharpness-tracking overhead: train with and without ``Tracking(every=10)``.

The demo-sized problem: a 3-class Gaussian mixture in d = 20 (N = 600, separation 3,
standardized), MLP 20→30→30→3 ReLU (P = 1,653), cross-entropy, full-batch GD with
step 0.5. Runs are interleaved (untracked, tracked, untracked, …) so that machine load
affects both alike; the ratio is median(tracked) / median(untracked). Also reports the
Hessian-vector products per record and checks the tracked λ_max against the dense
Hessian at the last step.

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_tracking.py [--steps 300]
        [--repeats 3] [--every 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import hessref as hr
from hessref import data, spectrum
from hessref.train import Tracking, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    X, y = data.gaussian_mixture(600, 3, 20, separation=3.0, means="normal", rng=0)
    model = hr.MLP([20, 30, 30, 3], activation="relu")
    theta0 = model.init(0)
    kw = dict(loss="cross_entropy", lr=0.5, steps=args.steps)
    plain, tracked = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        base = train(model, theta0, X, y, **kw)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        res = train(model, theta0, X, y, track=Tracking(every=args.every), **kw)
        tracked.append(time.perf_counter() - t)
    assert np.array_equal(base.theta, res.theta)
    dense = spectrum.eigenvalues(hr.hessian(model, res.theta, X, y, loss="cross_entropy"))[0]
    err = abs(res.tracking.sharpness[-1] - dense) / dense
    ratio = float(np.median(tracked) / np.median(plain))
    out = {
        "num_params": model.num_params,
        "steps": args.steps,
        "every": args.every,
        "untracked_s": plain,
        "tracked_s": tracked,
        "ratio": ratio,
        "hvps_per_record_mean": float(res.tracking.matvecs.mean()),
        "records": int(res.tracking.steps.size),
        "last_lambda_max_rel_error_vs_dense": float(err),
    }
    print(
        f"P = {model.num_params}, N = 600, {args.steps} GD steps, tracking every {args.every}: "
        f"untracked median {np.median(plain):.2f} s, tracked {np.median(tracked):.2f} s, "
        f"ratio {ratio:.2f} ({out['hvps_per_record_mean']:.1f} HVPs per record, "
        f"λ_max rel. error vs dense {err:.1e})"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
