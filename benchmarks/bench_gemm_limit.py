#!/usr/bin/env python
"""Exact H and the Gauss-Newton split against the DGEMM limit, measured in one run (issue 15).

Problem: ``MLP([20, 50, 50, 5], "tanh")``, mean cross-entropy, N = 1000 (P = 3855),
X ~ N(0, 1), labels uniform in [0, 5), θ = ``model.init(rng=0)``, float64.

Reference: the time of ONE DGEMM ``Aᵀ @ B`` with A, B of shape (N, P), i.e. 2·N·P²
flops producing a P×P result, at one BLAS thread (``threadpoolctl``), timed in the
same process, interleaved with the hessref calls (round-robin, so load on a shared
machine hits both alike). Printed ratios (min over repeats, wall and CPU time):

* ``hessian`` / GEMM(2NP²) at 1 thread                     target ≤ 1.0 (stretch ≤ 0.6)
  (wall, CPU, and user-mode CPU: the kernel's share is page faults on fresh memory)
* ``gauss_newton`` (G and R) / GEMM(2NP²) at 1 thread       target ≤ 1.5
* ``hessian`` at 2 threads / ``hessian`` at 1 thread (wall)  target ≤ 0.6
* tracemalloc peak of ``hessian`` / ``gauss_newton`` over P²·8 bytes  (≤ 2.5 for H)

Usage: ``python benchmarks/bench_gemm_limit.py [--repeats 3] [--n 1000] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr


def timed(fn, threads: int) -> tuple[float, float, float]:
    """(wall, CPU, user-mode CPU) seconds of ``fn()``; CPU − user is kernel time (page faults)."""
    with threadpool_limits(limits=threads, user_api="blas"):
        u0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        user = resource.getrusage(resource.RUSAGE_SELF).ru_utime - u0
        return time.perf_counter() - w0, time.process_time() - c0, user


def peak_ratio(fn, P: int) -> float:
    with threadpool_limits(limits=1, user_api="blas"):
        tracemalloc.start()
        fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / (8.0 * P * P)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=1000, help="number of samples N")
    ap.add_argument("--out", default="/tmp/bench_gemm_limit.json")
    args = ap.parse_args()
    model = hr.MLP([20, 50, 50, 5], activation="tanh")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, 20))
    y = rng.integers(0, 5, args.n)
    theta = model.init(rng=0)
    P, N = model.num_params, args.n
    A, B = rng.standard_normal((N, P)), rng.standard_normal((N, P))
    jobs = {
        "gemm_2NP2": lambda: A.T @ B,
        "hessian": lambda: hr.hessian(model, theta, X, y, loss="cross_entropy"),
        "gauss_newton": lambda: hr.gauss_newton(model, theta, X, y, loss="cross_entropy"),
    }
    plan = [(name, 1) for name in jobs] + [("hessian", 2), ("gemm_2NP2", 2)]
    for name, k in plan:  # warm-up
        timed(jobs[name], k)
    runs: dict[str, list] = {f"{n}@{k}": [] for n, k in plan}
    for _ in range(args.repeats):
        for name, k in plan:
            runs[f"{name}@{k}"].append(timed(jobs[name], k))
    best = {key: tuple(min(r[i] for r in v) for i in range(3)) for key, v in runs.items()}
    g = best["gemm_2NP2@1"]
    ratios = {
        "hessian/gemm (wall, cpu, user)": tuple(best["hessian@1"][i] / g[i] for i in range(3)),
        "gauss_newton/gemm (wall, cpu, user)": tuple(
            best["gauss_newton@1"][i] / g[i] for i in range(3)
        ),
        "hessian 2 threads / 1 thread (wall)": best["hessian@2"][0] / best["hessian@1"][0],
        "gemm 2 threads / 1 thread (wall)": best["gemm_2NP2@2"][0] / g[0],
        "peak hessian / P^2*8": peak_ratio(jobs["hessian"], P),
        "peak gauss_newton / P^2*8": peak_ratio(jobs["gauss_newton"], P),
    }
    load = os.getloadavg()
    print(f"[20, 50, 50, 5] tanh CE, N = {N}, P = {P}; repeats = {args.repeats}; load {load}")
    print(f"DGEMM rate (1 thread): {2 * N * P * P / g[0] / 1e9:.1f} GFLOP/s (wall)")
    for key, (w, c, u) in best.items():
        print(f"  {key:18s} min wall {w:8.3f} s   min cpu {c:8.3f} s   min user {u:8.3f} s")
    for key, val in ratios.items():
        text = ", ".join(f"{v:.3f}" for v in val) if isinstance(val, tuple) else f"{val:.3f}"
        print(f"  {key:38s} {text}")
    with open(args.out, "w") as fh:
        json.dump({"N": N, "P": P, "load": load, "runs": runs, "ratios": ratios}, fh, indent=1)


if __name__ == "__main__":
    main()
