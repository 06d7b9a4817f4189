#!/usr/bin/env python
"""Peak memory of SLQ with full reorthogonalization at P ≈ 1.8M (issue 15).

Problem: MLP [784, 1000, 1000, 10] (P = 1,796,010), tanh, mean cross-entropy, the
first ``--N`` rows of the standard-normal data of ``bench_topk_scale.py``,
``hessian_operator(batch_size=--batch-size)``. Runs ``slq_density(H, m, num_probes,
reorthogonalize=True)``; one basis alone is 8·m·P bytes (1.15 GB at m = 80), above the
256 MiB budget, so it goes to a temporary file. Prints the peak resident set size
(``ru_maxrss``) after building the data and one warm-up product, and after SLQ; the
target is ≤ 2 GB for the whole process. N only changes the operator's chunk costs,
not the basis, so a reduced N measures the same basis memory in less time.

Usage: ``python benchmarks/bench_slq_memory.py [--N 500] [--m 80] [--probes 2]``.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref.spectrum import slq_density


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--N", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--m", type=int, default=80)
    ap.add_argument("--probes", type=int, default=2)
    args = ap.parse_args()
    model = hr.MLP([784, 1000, 1000, 10], activation="tanh")
    rng = np.random.default_rng(0)
    theta = model.init(rng)
    X = rng.standard_normal((10_000, 784))[: args.N]
    y = rng.integers(0, 10, size=10_000)[: args.N]
    op = hr.hessian_operator(model, theta, X, y, loss="cross_entropy", batch_size=args.batch_size)
    with threadpool_limits(1):
        op @ np.ones(model.num_params)
        before = rss_gib()
        t, c = time.perf_counter(), time.process_time()
        d = slq_density(op, m=args.m, num_probes=args.probes, rng=0)
        t, c = time.perf_counter() - t, time.process_time() - c
    P = model.num_params
    print(f"P = {P}, N = {args.N}, m = {args.m}, probes = {args.probes}, 1 thread")
    print(
        f"one basis: {8 * args.m * P / 2**30:.2f} GiB; peak RSS before SLQ {before:.2f} GiB, "
        f"after SLQ {rss_gib():.2f} GiB (target <= 2 GB); SLQ {t:.0f} s wall, {c:.0f} s cpu"
    )
    print(f"largest node {d.nodes.max():.6g}, weights sum {d.weights.sum(axis=1).round(12)}")


if __name__ == "__main__":
    main()
