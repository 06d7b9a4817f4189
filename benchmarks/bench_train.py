#!/usr/bin/env python
"""``hessref.train`` against a bare NumPy forward/backward loop (issue 20: target ≤ 1.15×).

Problem: scikit-learn's digits (all 1,797 samples, standardized, ``hessref.data.digits``),
MLP 64 → 20 → 10 with tanh, mean cross-entropy, θ₀ = ``model.init(0)``, full-batch
gradient descent with η = 0.5 for 1,000 steps.

* hessref: ``hr.train(model, θ₀, X, y, loss="cross_entropy", lr=0.5, steps=1000)``
  (validation once at the boundary; every step records L(θ_t), ‖∇L(θ_t)‖ and checks
  for divergence).
* bare loop, written here: per step one forward pass (Z₁ = X W₁ᵀ + b₁, A₁ = tanh Z₁,
  F = A₁ W₂ᵀ + b₂), the loss from a stable log-softmax, the gradient by backprop, its
  norm, and the update θ ← θ − η∇L — the same work per step as hessref records.

Both start from the same θ₀ and their final θ agree to round-off (printed). One BLAS
thread (threadpoolctl and the environment variables are set before NumPy loads),
alternating runs of the two in one process, best of ``--repeats``; the ratio uses the
best times. The process CPU time is the less noisy measure on a shared machine; both
are printed.

Usage::

    python benchmarks/bench_train.py            # 1,000 steps, 7 repeats
    python benchmarks/bench_train.py --quick    # 100 steps, 3 repeats
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import hessref as hr  # noqa: E402
from hessref.data import digits  # noqa: E402
from hessref.train import train  # noqa: E402


def bare_loop(theta0: np.ndarray, X: np.ndarray, y: np.ndarray, lr: float, steps: int):
    """Full-batch GD on 64 → 20 → 10, tanh, mean CE, in plain NumPy (hessref's θ layout)."""
    N = X.shape[0]
    theta = theta0.copy()
    W1, b1 = theta[:1280].reshape(20, 64), theta[1280:1300]
    W2, b2 = theta[1300:1500].reshape(10, 20), theta[1500:1510]
    grad = np.empty_like(theta)
    gW1, gb1 = grad[:1280].reshape(20, 64), grad[1280:1300]
    gW2, gb2 = grad[1300:1500].reshape(10, 20), grad[1500:1510]
    rows = np.arange(N)
    losses, norms = np.empty(steps + 1), np.empty(steps + 1)
    for t in range(steps + 1):
        A1 = np.tanh(X @ W1.T + b1)
        F = A1 @ W2.T + b2
        Z = F - F.max(axis=1, keepdims=True)
        E = np.exp(Z)
        S = E.sum(axis=1, keepdims=True)
        losses[t] = np.mean(np.log(S[:, 0]) - Z[rows, y])
        D2 = E / S
        D2[rows, y] -= 1.0
        D2 /= N
        np.matmul(D2.T, A1, out=gW2)
        D2.sum(axis=0, out=gb2)
        D1 = (D2 @ W2) * (1.0 - A1 * A1)
        np.matmul(D1.T, X, out=gW1)
        D1.sum(axis=0, out=gb1)
        norms[t] = np.linalg.norm(grad)
        if not np.isfinite(losses[t]):
            raise FloatingPointError(f"diverged at step {t}")
        if t < steps:
            theta -= lr * grad  # W1, b1, W2, b2 are views: updated in place
    return theta, losses, norms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.repeats = 100, 3
    X, y = digits()
    model = hr.MLP([64, 20, 10], activation="tanh")
    theta0 = model.init(0)
    runs = {
        "bare NumPy loop": lambda: bare_loop(theta0, X, y, args.lr, args.steps)[0],
        "hessref.train": lambda: (
            train(model, theta0, X, y, loss="cross_entropy", lr=args.lr, steps=args.steps).theta
        ),
    }
    best = {name: (np.inf, np.inf) for name in runs}
    thetas = {}
    with threadpool_limits(1):
        for name, fn in runs.items():
            thetas[name] = fn()  # warm-up
        for _ in range(args.repeats):
            for name, fn in runs.items():
                w, c = time.perf_counter(), time.process_time()
                fn()
                w, c = time.perf_counter() - w, time.process_time() - c
                best[name] = (min(best[name][0], w), min(best[name][1], c))
    print(
        f"digits N = {X.shape[0]}, MLP [64, 20, 10] tanh, mean CE, GD lr = {args.lr}, "
        f"{args.steps} steps, 1 thread, best of {args.repeats}; load {os.getloadavg()}"
    )
    for name, (w, c) in best.items():
        print(f"  {name:16s} wall {w:7.3f} s   cpu {c:7.3f} s")
    (bw, bc), (hw, hc) = best["bare NumPy loop"], best["hessref.train"]
    diff = np.abs(thetas["hessref.train"] - thetas["bare NumPy loop"]).max()
    print(f"  max |θ_hessref − θ_bare| = {diff:.2e} (same trajectory to round-off)")
    print(f"  ratio hessref / bare: wall {hw / bw:.3f}, cpu {hc / bc:.3f}  (target ≤ 1.15)")


if __name__ == "__main__":
    main()
