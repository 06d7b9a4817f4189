#!/usr/bin/env python
"""Top-C outliers of G at scale from C×C Gram matrices vs Lanczos on G (issue 15).

Papyan (2019, arXiv:1901.08244) writes the Gauss-Newton matrix of a C-class
cross-entropy model as G = G₀ + G₁ + G₂ + G₃ (docs/theory.md §10). The class-mean part
G₁ = Σ_c w_c δ̄_c δ̄_cᵀ has rank ≤ C, so its nonzero eigenvalues are those of a C×C Gram
matrix, and G₀+G₁+G₂ = A Aᵀ those of a C²×C² one: ``hessref.papyan.outlier_bounds``
computes both with one Jacobian pass over the data and never forms a P×P matrix.
Because G − G₁ and G₃ are PSD, the eigenvalues of A Aᵀ are LOWER bounds of the top
eigenvalues of G for every θ and data set; the G₁ ("class means") values are the usual
outlier estimate, valid only when the rest is small (what this script measures).

Problem (defaults): MLP [784, 1000, 1000, 10] tanh (P = 1,796,010), mean cross-entropy,
a 10-class Gaussian mixture in 784 dimensions (``hessref.data.gaussian_mixture``,
separation 3, spread 1, standardised, rng 0), θ = ``model.init(rng=0)``.

Printed for the top-C eigenvalues of G: Lanczos (``top_eigenpairs(ggn_operator,
method="lanczos", tol=1e-8)``), the G₁ estimate and the A Aᵀ lower bound, their
relative errors against Lanczos, and both times (one BLAS thread by default).

Usage::

    python benchmarks/bench_papyan_gram.py                 # N = 2000, ~ minutes
    python benchmarks/bench_papyan_gram.py --N 500 --sizes 784,200,200,10
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref.data import gaussian_mixture
from hessref.papyan import outlier_bounds
from hessref.spectrum import top_eigenpairs


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="784,1000,1000,10", help="layer widths d_0,...,d_L")
    ap.add_argument("--N", type=int, default=2000, help="number of samples")
    ap.add_argument("--batch-size", type=int, default=250, help="rows per chunk of the G operator")
    ap.add_argument(
        "--gram-batch",
        type=int,
        default=8,
        help="rows per Jacobian chunk (memory 8·rows·C·P bytes)",
    )
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    ap.add_argument("--tol", type=float, default=1e-8, help="Lanczos tolerance")
    ap.add_argument("--out", default="/tmp/bench_papyan_gram.json")
    return ap.parse_args()


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    args = parse()
    sizes = [int(s) for s in args.sizes.split(",")]
    C = sizes[-1]
    X, y = gaussian_mixture(args.N, C, sizes[0], rng=0)
    model = hr.MLP(sizes, activation="tanh")
    theta = model.init(rng=0)
    P = model.num_params
    kw = {"loss": "cross_entropy", "batch_size": args.batch_size}
    print(f"MLP {sizes} tanh, P = {P:,}, N = {args.N:,}, C = {C}, {args.threads} BLAS thread(s)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with threadpool_limits(args.threads):
        gram, gw, gc = timed(
            lambda: outlier_bounds(
                model, theta, X, y, loss="cross_entropy", batch_size=args.gram_batch, upper=False
            )
        )
        G = hr.ggn_operator(model, theta, X, y, **kw)
        top, lw, lc = timed(lambda: top_eigenpairs(G, C, method="lanczos", tol=args.tol, rng=0))
    exact = top.values
    rows = {
        "class means G1 (C x C Gram)": gram.class_estimate[:C],
        "lower bound G0+G1+G2 (C^2 x C^2 Gram)": gram.lower[:C],
    }
    print(f"Lanczos: {lw:.1f} s wall / {lc:.1f} s CPU, {top.num_matvecs} products, "
          f"max residual {top.residuals.max():.1e}")  # fmt: skip
    print(f"Gram matrices: {gw:.1f} s wall / {gc:.1f} s CPU (C backprops over the data)")
    print(f"time ratio Gram / Lanczos (CPU): {gc / lc:.3f}")
    print(f"{'i':>2} {'Lanczos':>12} " + " ".join(f"{k[:24]:>26}" for k in rows))
    for i in range(C):
        cells = " ".join(
            f"{v[i]:12.6g} ({(v[i] - exact[i]) / exact[i]:+.1e})" for v in rows.values()
        )
        print(f"{i:>2} {exact[i]:12.6g} {cells}")
    summary = {name: float(np.max(np.abs(v - exact) / np.abs(exact))) for name, v in rows.items()}
    for name, err in summary.items():
        print(f"max relative error of {name}: {err:.2e}")
    below = bool(np.all(gram.lower[:C] <= exact * (1 + 1e-10)))
    print(f"lower bounds below Lanczos (as they must be): {below}")
    record = {
        "args": vars(args), "P": P, "lanczos": exact.tolist(),
        "lanczos_seconds": [lw, lc], "gram_seconds": [gw, gc],
        "products": top.num_matvecs, "estimates": {k: v.tolist() for k, v in rows.items()},
        "max_relative_error": summary, "lower_bounds_hold": below,
    }  # fmt: skip
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
