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

Before → after in one run: ``--baseline DIR`` (a checkout of the older tree, e.g.
``git archive daf48f5 | tar -x -C /tmp/base``) runs rounds alternately in two fresh
worker processes, one importing hessref from DIR and one from this tree (each warms
up, then times GEMM, ``hessian`` and ``gauss_newton`` once per round at one BLAS
thread); the best round of each is reported against the best GEMM of the whole run,
together with the load average and the busiest other processes (the machine may be
shared: repeat ≥ 5 times). ``--keep-freed`` runs both workers with glibc told to keep
freed memory (``GLIBC_TUNABLES``): the difference to a plain run is the cost of page
faults on memory the allocator returned to the kernel and got back.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

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


def setting(n: int):
    """The benchmark problem and the GEMM operands: (jobs by name, P)."""
    model = hr.MLP([20, 50, 50, 5], activation="tanh")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 20))
    y = rng.integers(0, 5, n)
    theta = model.init(rng=0)
    P = model.num_params
    A, B = rng.standard_normal((n, P)), rng.standard_normal((n, P))
    jobs = {
        "gemm_2NP2": lambda: A.T @ B,
        "hessian": lambda: hr.hessian(model, theta, X, y, loss="cross_entropy"),
        "gauss_newton": lambda: hr.gauss_newton(model, theta, X, y, loss="cross_entropy"),
    }
    return jobs, P


def one_round(n: int) -> None:
    """Worker: warm up, time each job once at one thread, print {name: (wall, cpu, user)}."""
    jobs, P = setting(n)
    for fn in jobs.values():
        timed(fn, 1)
    times = {name: timed(fn, 1) for name, fn in jobs.items()}
    # the floor of gauss_newton's page faults: writing its two fresh P×P results, nothing else
    times["touch_2PxP"] = timed(lambda: np.ones((2, P, P)), 1)
    print(json.dumps(times))


def busiest_processes(count: int = 5) -> list[str]:
    """The processes using the most CPU right now (``ps``), to say what ran beside us."""
    out = subprocess.run(
        ["ps", "-eo", "pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True
    ).stdout.splitlines()
    return [line[:110] for line in out[1 : count + 1]]


#: glibc keeps freed memory for reuse instead of returning it to the kernel (diagnosis of
#: the page-fault share: with it, repeated calls fault almost never)
KEEP_FREED = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"


def compare(baseline: str, repeats: int, n: int, out: str, keep_freed: bool = False) -> None:
    """Before (``baseline`` tree) → after (this tree), rounds alternating in fresh workers."""
    trees = {"before": str(Path(baseline).resolve()), "after": str(Path(__file__).parents[1])}
    runs: dict[str, list] = {label: [] for label in trees}
    print("load before:", os.getloadavg(), *busiest_processes(), sep="\n  ")
    for _ in range(repeats):
        for label, tree in trees.items():
            env = dict(os.environ, PYTHONPATH=tree, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
            if keep_freed:
                env["GLIBC_TUNABLES"] = KEEP_FREED
            cmd = [sys.executable, __file__, "--round", "--n", str(n)]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            runs[label].append(json.loads(res.stdout.splitlines()[-1]))
    gemm = min(r["gemm_2NP2"][0] for v in runs.values() for r in v)
    gemm_user = min(r["gemm_2NP2"][2] for v in runs.values() for r in v)
    print(
        f"[20, 50, 50, 5] tanh CE, N = {n}; {repeats} rounds per tree; best GEMM {gemm:.3f} s"
        + ("; GLIBC_TUNABLES keeps freed memory" if keep_freed else "")
    )
    table = {}
    for label, rounds in runs.items():
        for job in ("hessian", "gauss_newton"):
            wall = min(r[job][0] for r in rounds)
            user = min(r[job][2] for r in rounds)
            ratios = {"wall/gemm": wall / gemm, "user/gemm_user": user / gemm_user}
            table[f"{job} {label}"] = {"wall": wall, "user": user, **ratios}
            print(
                f"  {job:13s} {label:6s} best wall {wall:.3f} s = {wall / gemm:.3f}× GEMM, "
                f"user {user:.3f} s = {user / gemm_user:.3f}× GEMM user"
            )
    touch = min(r["touch_2PxP"][0] for v in runs.values() for r in v)
    print(f"  writing two fresh P×P arrays (page-fault floor of gauss_newton): {touch:.3f} s")
    print("load after:", os.getloadavg(), *busiest_processes(), sep="\n  ")
    with open(out, "w") as fh:
        json.dump({"N": n, "runs": runs, "table": table}, fh, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=1000, help="number of samples N")
    ap.add_argument("--out", default="/tmp/bench_gemm_limit.json")
    ap.add_argument("--baseline", help="older hessref tree: before → after in one run")
    ap.add_argument("--round", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--keep-freed",
        action="store_true",
        help="with --baseline: workers run with glibc keeping freed memory (page-fault diagnosis)",
    )
    args = ap.parse_args()
    if args.round:
        return one_round(args.n)
    if args.baseline:
        return compare(args.baseline, args.repeats, args.n, args.out, args.keep_freed)
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
