#!/usr/bin/env python
"""Benchmarks of hessref's core engine against autograd, JAX and torch.func (issue 2).

Everything is measured in ONE process, on the same MLP, the same float64 data and
the same θ, with the number of cores pinned before any numerical library is imported:

1. exact H at [20, 50, 50, 5], tanh, mean cross-entropy, N = 1000 (P = 3855):
   ``hr.hessian`` vs ``jax.jit(jax.hessian(loss))`` (x64; compile time reported apart)
   vs ``torch.func.hessian`` (float64); the three results are checked to agree;
2. exact H at [20, 30, 10, 5], N = 500 (P = 995): ``hr.hessian`` vs ``autograd.hessian``;
3. HVP on problem 1: one ``hr.hvp`` vs one ``hr.gradient``, vs torch.func's HVP
   (forward-over-reverse ``jvp(grad(loss))`` and reverse-over-reverse
   ``grad(⟨grad(loss), v⟩)``; ``jax.jit`` HVP for information), all timed round-robin,
   and a block of K = 32 directions vs 32 single HVPs;
4. peak memory of ``hr.hessian`` and ``hr.gauss_newton`` (tracemalloc, which sees
   every NumPy allocation) relative to the P×P·8 bytes of one result.

Thread pinning (``--threads k``), applied before importing NumPy/JAX/torch:
``os.sched_setaffinity`` to k CPUs (a hard cap every thread pool respects: OpenBLAS,
XLA's Eigen pool, torch's intra-op pool; hessref itself only uses BLAS threads);
``OMP_NUM_THREADS = OPENBLAS_NUM_THREADS =
MKL_NUM_THREADS = k``; for k = 1 also ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1"``; then ``torch.set_num_threads(k)`` and
``threadpoolctl.threadpool_limits(k)`` around every measurement.

Timing: warm-up, then ``repeats`` runs; for each we record wall time
(``perf_counter``) and process CPU time (``process_time``, all threads). Min and
median are reported; ratios use minima measured in the same run. On a shared
machine the CPU time at k = 1 is the least noisy measure of cost (wall time then
also counts time the process waited for a core); both are printed and saved.

Usage::

    python benchmarks/bench_core.py                  # 1 thread, default repeats
    python benchmarks/bench_core.py --threads 2 --out /tmp/bench_core_t2.json
    python benchmarks/bench_core.py --quick          # smoke test, a few seconds

Tools that are not installed (torch, jax, autograd) are skipped with a note.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="cores/BLAS threads (default 1)")
    ap.add_argument("--out", default="/tmp/bench_core.json", help="JSON output path")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of the big exact-H rows")
    ap.add_argument(
        "--torch-repeats",
        type=int,
        default=None,
        help="timed runs of torch.func.hessian (default: --repeats)",
    )
    ap.add_argument("--small-repeats", type=int, default=20, help="timed runs of HVP/gradient")
    ap.add_argument(
        "--autograd-budget",
        type=float,
        default=60.0,
        help="seconds allowed for one autograd.hessian at full N; beyond that it is "
        "timed on a row subset and scaled (labelled in the output)",
    )
    ap.add_argument("--skip", default="", help="comma list of tools to skip: jax,torch,autograd")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat (smoke test)")
    ap.add_argument(
        "--only",
        default="exact_h,autograd,hvp,memory",
        help="comma list of sections to run (default: all): exact_h,autograd,hvp,memory",
    )
    return ap.parse_args(argv)


def pin_threads(k: int) -> dict:
    """Cap this process at k cores and k BLAS/XLA threads; call before importing NumPy."""
    cpus = sorted(os.sched_getaffinity(0))
    if k < 1 or k > len(cpus):
        raise SystemExit(f"--threads: expected 1..{len(cpus)} (usable CPUs), got {k}")
    os.sched_setaffinity(0, set(cpus[:k]))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(k)
    if k == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    return {
        "threads": k,
        "affinity": sorted(os.sched_getaffinity(0)),
        "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"],
        "OPENBLAS_NUM_THREADS": os.environ["OPENBLAS_NUM_THREADS"],
        "MKL_NUM_THREADS": os.environ["MKL_NUM_THREADS"],
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
    }


ARGS = parse_args() if __name__ == "__main__" else None
THREADS = pin_threads(ARGS.threads) if ARGS is not None else None

# --- everything below may import numerical libraries -------------------------------------

import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import hessref as hr  # noqa: E402

SEED = 0


# --- problems -----------------------------------------------------------------------------


def make_problem(sizes: list[int], n: int, seed: int = SEED) -> dict:
    """Same float64 data for every tool: X ~ N(0, 1), labels uniform, PyTorch-style θ."""
    rng = np.random.default_rng(seed)
    model = hr.MLP(sizes, activation="tanh")
    theta = model.init(rng=seed)
    X = rng.normal(size=(n, sizes[0]))
    y = rng.integers(0, sizes[-1], size=n)
    return {
        "sizes": sizes,
        "N": n,
        "P": model.num_params,
        "model": model,
        "theta": theta,
        "X": X,
        "y": y,
    }


def rel_fro(a: np.ndarray, ref: np.ndarray) -> float:
    """‖a − ref‖_F / ‖ref‖_F."""
    return float(np.linalg.norm(np.asarray(a) - ref) / np.linalg.norm(ref))


# --- timing -------------------------------------------------------------------------------


def measure(fn, repeats: int, warmup: int = 1) -> dict:
    """Run ``fn`` ``warmup`` + ``repeats`` times; wall and CPU seconds of the timed runs."""
    out = None
    for _ in range(warmup):
        out = fn()
    wall, cpu = [], []
    for _ in range(repeats):
        out = None
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "wall": wall,
        "cpu": cpu,
        "wall_min": min(wall),
        "wall_median": statistics.median(wall),
        "cpu_min": min(cpu),
        "cpu_median": statistics.median(cpu),
        "repeats": repeats,
        "warmup": warmup,
        "result": out,
    }


def strip(m: dict) -> dict:
    return {k: v for k, v in m.items() if k != "result"}


# --- peer implementations (same layout: θ = [W1.ravel(), b1, W2.ravel(), b2, ...]) ---------


def jax_tools(p: dict) -> dict | None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    sizes, X, y = p["sizes"], jnp.asarray(p["X"]), jnp.asarray(p["y"])

    def loss(theta):
        A, pos = X, 0
        for l, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
            W = theta[pos : pos + d_out * d_in].reshape(d_out, d_in)
            pos += d_out * d_in
            b = theta[pos : pos + d_out]
            pos += d_out
            A = A @ W.T + b
            if l < len(sizes) - 1:
                A = jnp.tanh(A)
        logp = jax.nn.log_softmax(A, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    theta = jnp.asarray(p["theta"])
    assert theta.dtype == jnp.float64

    def compile_hessian():
        """Ahead-of-time compile (timed apart); returns the zero-argument H call."""
        t0 = time.perf_counter()
        hess = jax.jit(jax.hessian(loss)).lower(theta).compile()
        return (lambda: hess(theta).block_until_ready()), time.perf_counter() - t0

    grad = jax.jit(jax.grad(loss))
    hvp = jax.jit(lambda th, v: jax.jvp(jax.grad(loss), (th,), (v,))[1])
    return {
        "version": jax.__version__,
        "compile_hessian": compile_hessian,
        "grad": lambda: grad(theta).block_until_ready(),
        "hvp": lambda v: hvp(theta, v).block_until_ready(),
    }


def torch_tools(p: dict, threads: int) -> dict | None:
    try:
        import torch
        from torch.func import grad, hessian, jvp
    except ImportError:
        return None
    torch.set_num_threads(threads)
    sizes = p["sizes"]
    X = torch.from_numpy(p["X"])
    y = torch.from_numpy(p["y"]).long()
    theta = torch.from_numpy(p["theta"].copy())
    assert X.dtype == theta.dtype == torch.float64

    def loss(th):
        A, pos = X, 0
        for l, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
            W = th[pos : pos + d_out * d_in].reshape(d_out, d_in)
            pos += d_out * d_in
            b = th[pos : pos + d_out]
            pos += d_out
            A = A @ W.T + b
            if l < len(sizes) - 1:
                A = torch.tanh(A)
        return torch.nn.functional.cross_entropy(A, y)  # mean over samples

    def hvp(v):
        return jvp(grad(loss), (theta,), (torch.from_numpy(v),))[1]

    def hvp_rr(v):
        # reverse-over-reverse: grad of ⟨∇L, v⟩
        vt = torch.from_numpy(v)
        return grad(lambda th: torch.dot(grad(loss)(th), vt))(theta)

    return {
        "version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "hessian": lambda: hessian(loss)(theta),
        "grad": lambda: grad(loss)(theta),
        "hvp": hvp,
        "hvp_rr": hvp_rr,
    }


def autograd_hessian_fn(p: dict, rows: slice | None = None):
    """autograd.hessian of the same loss (or, with ``rows``, the Hessian rows in ``rows``

    computed exactly like autograd.hessian does: one reverse pass of ∇L per row)."""
    try:
        import autograd
        import autograd.numpy as anp
        from autograd.scipy.special import logsumexp
    except ImportError:
        return None
    sizes, X, y = p["sizes"], p["X"], p["y"]
    onehot = np.eye(sizes[-1])[y]

    def loss(theta):
        A, pos = X, 0
        for l, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
            W = anp.reshape(theta[pos : pos + d_out * d_in], (d_out, d_in))
            pos += d_out * d_in
            b = theta[pos : pos + d_out]
            pos += d_out
            A = anp.dot(A, W.T) + b
            if l < len(sizes) - 1:
                A = anp.tanh(A)
        logp = A - logsumexp(A, axis=1, keepdims=True)
        return -anp.sum(logp * onehot) / X.shape[0]

    theta = p["theta"]
    if rows is None:
        return lambda: autograd.hessian(loss)(theta)
    # autograd.jacobian(g) = one vjp of g per output; restrict the outputs to `rows`
    grad_rows = autograd.jacobian(lambda th: autograd.grad(loss)(th)[rows])
    return lambda: grad_rows(theta)


# --- benchmark sections -------------------------------------------------------------------


def bench_exact_h(p, args, skip, notes) -> dict:
    model, theta, X, y = p["model"], p["theta"], p["X"], p["y"]
    res: dict = {"sizes": p["sizes"], "N": p["N"], "P": p["P"]}
    # warm-up on a small row subset: same code paths, no 10 s wasted
    hr.hessian(model, theta, X[:50], y[:50], loss="cross_entropy")
    m = measure(lambda: hr.hessian(model, theta, X, y, loss="cross_entropy"), args.repeats, 0)
    H = m["result"]
    res["hessref"] = strip(m)
    print(f"  hessref  H: min {m['wall_min']:.2f} s wall, {m['cpu_min']:.2f} s cpu", flush=True)

    tools_jax = None if "jax" in skip else jax_tools(p)
    if tools_jax is None:
        notes.append("jax not installed or skipped: jax rows omitted")
    else:
        hess_call, compile_s = tools_jax["compile_hessian"]()
        mj = measure(hess_call, args.repeats, warmup=0)  # compiled ahead of time
        res["jax"] = strip(mj) | {"compile_s": compile_s, "version": tools_jax["version"]}
        res["jax"]["rel_err_vs_hessref"] = rel_fro(np.asarray(mj["result"]), H)
        print(
            f"  jax      H: min {mj['wall_min']:.2f} s wall, {mj['cpu_min']:.2f} s cpu, "
            f"compile {compile_s:.2f} s, "
            f"rel err {res['jax']['rel_err_vs_hessref']:.1e}",
            flush=True,
        )
        del mj

    tools_torch = None if "torch" in skip else torch_tools(p, args.threads)
    if tools_torch is None:
        notes.append("torch not installed or skipped: torch rows omitted")
    else:
        # warm-up on a tiny problem with the same ops (torch has no compile step)
        small = make_problem(p["sizes"], 20)
        torch_tools(small, args.threads)["hessian"]()
        reps = args.torch_repeats or args.repeats
        mt = measure(tools_torch["hessian"], reps, warmup=0)
        res["torch"] = strip(mt) | {
            "version": tools_torch["version"],
            "num_threads": tools_torch["num_threads"],
        }
        res["torch"]["rel_err_vs_hessref"] = rel_fro(mt["result"].numpy(), H)
        print(
            f"  torch    H: min {mt['wall_min']:.2f} s wall, {mt['cpu_min']:.2f} s cpu, "
            f"rel err {res['torch']['rel_err_vs_hessref']:.1e}",
            flush=True,
        )
        del mt
    return res


def bench_autograd(p, args, skip, notes) -> dict:
    model, theta, X, y = p["model"], p["theta"], p["X"], p["y"]
    res: dict = {"sizes": p["sizes"], "N": p["N"], "P": p["P"]}
    hr.hessian(model, theta, X, y, loss="cross_entropy")
    m = measure(
        lambda: hr.hessian(model, theta, X, y, loss="cross_entropy"), max(args.repeats, 5), 0
    )
    H = m["result"]
    res["hessref"] = strip(m)
    print(f"  hessref  H: min {m['wall_min']:.3f} s wall, {m['cpu_min']:.3f} s cpu", flush=True)
    if "autograd" in skip or autograd_hessian_fn(p) is None:
        notes.append("autograd not installed or skipped: autograd row omitted")
        return res
    # probe: time 20 rows to predict the full Hessian's cost
    probe_rows = min(20, p["P"])
    probe = measure(autograd_hessian_fn(p, slice(0, probe_rows)), 1, 1)
    predicted = probe["wall_min"] * p["P"] / probe_rows
    if predicted <= args.autograd_budget:
        ma = measure(autograd_hessian_fn(p), 1, 0)
        res["autograd"] = strip(ma) | {"mode": "full", "rows_timed": p["P"]}
        res["autograd"]["rel_err_vs_hessref"] = rel_fro(ma["result"], H)
        print(
            f"  autograd H: {ma['wall_min']:.2f} s wall (full), "
            f"rel err {res['autograd']['rel_err_vs_hessref']:.1e}",
            flush=True,
        )
    else:
        # autograd.hessian = one reverse pass of ∇L per row, all rows alike: time a
        # contiguous fraction of the rows (spread over every layer) and scale by P / rows
        rows = max(probe_rows, int(p["P"] * args.autograd_budget / predicted))
        step = max(1, p["P"] // rows)
        sel = slice(0, p["P"], step)
        n_rows = len(range(p["P"])[sel])
        ma = measure(autograd_hessian_fn(p, sel), 1, 0)
        scale = p["P"] / n_rows
        res["autograd"] = {
            "mode": f"scaled: {n_rows} of {p['P']} rows (every {step}th) timed, x{scale:.2f}",
            "rows_timed": n_rows,
            "wall_timed": ma["wall_min"],
            "cpu_timed": ma["cpu_min"],
            "wall_min": ma["wall_min"] * scale,
            "cpu_min": ma["cpu_min"] * scale,
            "rel_err_vs_hessref": rel_fro(ma["result"], H[sel]),
        }
        notes.append(f"autograd.hessian timed on {n_rows}/{p['P']} rows and scaled x{scale:.2f}")
        print(
            f"  autograd H: {res['autograd']['wall_min']:.2f} s wall (scaled from "
            f"{n_rows} rows), rel err {res['autograd']['rel_err_vs_hessref']:.1e}",
            flush=True,
        )
    return res


def measure_interleaved(fns: dict, repeats: int, warmup: int = 2) -> dict:
    """Like :func:`measure` for several callables, timed round-robin.

    Each round calls every function once, so slow drifts of the machine's load hit
    all of them alike and their ratios stay meaningful on a shared machine.
    """
    out = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            out[name] = fn()
    times = {name: ([], []) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            out[name] = fn()
            times[name][0].append(time.perf_counter() - t0)
            times[name][1].append(time.process_time() - c0)
    res = {}
    for name, (wall, cpu) in times.items():
        res[name] = {
            "wall": wall,
            "cpu": cpu,
            "wall_min": min(wall),
            "wall_median": statistics.median(wall),
            "cpu_min": min(cpu),
            "cpu_median": statistics.median(cpu),
            "repeats": repeats,
            "warmup": warmup,
            "interleaved": True,
            "result": out[name],
        }
    return res


def bench_hvp(p, args, skip, notes, H: np.ndarray | None) -> dict:
    model, theta, X, y = p["model"], p["theta"], p["X"], p["y"]
    P, K, reps = p["P"], 32, args.small_repeats
    rng = np.random.default_rng(SEED + 1)
    v = rng.normal(size=P)
    V = rng.normal(size=(P, K))
    kw = {"loss": "cross_entropy"}
    res: dict = {"sizes": p["sizes"], "N": p["N"], "P": P, "K": K}
    # single products: every tool timed round-robin in the same loop
    fns = {
        "hessref_gradient": lambda: hr.gradient(model, theta, X, y, **kw),
        "hessref_hvp": lambda: hr.hvp(model, theta, X, y, v, **kw),
    }
    tools_torch = None if "torch" in skip else torch_tools(p, args.threads)
    if tools_torch is not None:
        fns["torch_grad"] = tools_torch["grad"]
        fns["torch_hvp_fwd_over_rev"] = lambda: tools_torch["hvp"](v)
        fns["torch_hvp_rev_over_rev"] = lambda: tools_torch["hvp_rr"](v)
    tools_jax = None if "jax" in skip else jax_tools(p)
    if tools_jax is not None:
        fns["jax_grad_jit"] = tools_jax["grad"]
        fns["jax_hvp_jit"] = lambda: tools_jax["hvp"](v)
    singles = measure_interleaved(fns, reps, warmup=3)
    hv = singles["hessref_hvp"]["result"]
    for name, m in singles.items():
        res[name] = strip(m)
        if name.endswith(("hvp_fwd_over_rev", "hvp_rev_over_rev", "hvp_jit")):
            res[name]["rel_err_vs_hessref"] = rel_fro(np.asarray(m["result"]), hv)
    # a block of K directions vs K single calls, also round-robin
    blocks = measure_interleaved(
        {
            "hessref_hvp_block": lambda: hr.hvp(model, theta, X, y, V, **kw),
            "hessref_hvp_32_singles": lambda: np.stack(
                [hr.hvp(model, theta, X, y, V[:, j], **kw) for j in range(K)], axis=1
            ),
        },
        max(3, reps // 4),
        warmup=1,
    )
    res["hessref_hvp_block"] = strip(blocks["hessref_hvp_block"])
    res["hessref_hvp_32_singles"] = strip(blocks["hessref_hvp_32_singles"])
    res["hessref_hvp_block"]["rel_err_vs_32_singles"] = rel_fro(
        blocks["hessref_hvp_block"]["result"], blocks["hessref_hvp_32_singles"]["result"]
    )
    if H is not None:
        res["hessref_hvp"]["rel_err_vs_H_v"] = rel_fro(hv, H @ v)
        res["hessref_hvp_block"]["rel_err_vs_H_V"] = rel_fro(
            blocks["hessref_hvp_block"]["result"], H @ V
        )
    return res


def bench_memory(p) -> dict:
    model, theta, X, y = p["model"], p["theta"], p["X"], p["y"]
    P = p["P"]
    res: dict = {"P": P, "PxP_bytes": 8 * P * P}
    for name, fn in (("hessian", hr.hessian), ("gauss_newton", hr.gauss_newton)):
        gc.collect()
        tracemalloc.start()
        out = fn(model, theta, X, y, loss="cross_entropy")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del out
        res[name] = {"peak_bytes": peak, "peak_over_PxP": peak / (8 * P * P)}
    return res


# --- report -------------------------------------------------------------------------------


def ratio(a: dict, b: dict, key: str) -> float:
    return a[key] / b[key]


def summarize(results: dict) -> list[dict]:
    """Rows (name, value on wall minima, value on CPU minima, target, met)."""
    rows = []

    def add(name, a, b, target, cmp):
        if a is None or b is None:
            rows.append({"name": name, "wall": None, "cpu": None, "target": target})
            return
        w, c = ratio(a, b, "wall_min"), ratio(a, b, "cpu_min")
        ok = (lambda r: r <= cmp) if target.startswith("<=") else (lambda r: r >= cmp)
        rows.append(
            {
                "name": name,
                "wall": w,
                "cpu": c,
                "target": target,
                "met_wall": bool(ok(w)),
                "met_cpu": bool(ok(c)),
            }
        )

    big, small, hv = results.get("exact_h"), results.get("exact_h_small"), results.get("hvp")
    if big:
        add("H: hessref / jax.jit(jax.hessian)", big["hessref"], big.get("jax"), "<= 1.0", 1.0)
        add("H: hessref / torch.func.hessian", big["hessref"], big.get("torch"), "<= 1.0", 1.0)
    if small:
        add(
            f"H (P={small['P']}): autograd / hessref",
            small.get("autograd"),
            small["hessref"],
            ">= 50",
            50.0,
        )
    if hv:
        add("hvp / gradient (hessref)", hv["hessref_hvp"], hv["hessref_gradient"], "<= 4", 4.0)
        add(
            "hvp: hessref / torch jvp(grad)",
            hv["hessref_hvp"],
            hv.get("torch_hvp_fwd_over_rev"),
            "<= 1.5",
            1.5,
        )
        add(
            "hvp: hessref / torch grad(grad.v)",
            hv["hessref_hvp"],
            hv.get("torch_hvp_rev_over_rev"),
            "<= 1.5",
            1.5,
        )
        add(
            "hvp K=32 block / 32 singles",
            hv["hessref_hvp_block"],
            hv["hessref_hvp_32_singles"],
            "<= 0.25 ('far less')",
            0.25,
        )
    mem = results.get("memory")
    if mem:
        for name, tgt in (("hessian", 3.0), ("gauss_newton", 3.0 * 2)):
            r = mem[name]["peak_over_PxP"]
            rows.append(
                {
                    "name": f"peak mem {name} / (P^2*8)",
                    "wall": r,
                    "cpu": r,
                    "target": f"<= {tgt:g}" + (" (2 results)" if tgt > 3 else ""),
                    "met_wall": bool(r <= tgt),
                    "met_cpu": bool(r <= tgt),
                }
            )
    return rows


def print_times(results: dict) -> None:
    print("\nAbsolute times (seconds; min / median over the timed runs)")
    print(f"{'measurement':48s} {'wall min':>10s} {'wall med':>10s} {'cpu min':>10s} {'runs':>5s}")
    for section in ("exact_h", "exact_h_small", "hvp"):
        sec = results.get(section)
        if not sec:
            continue
        print(f"-- {section}: sizes {sec['sizes']}, N = {sec['N']}, P = {sec['P']}")
        for key, m in sec.items():
            if isinstance(m, dict) and "wall_min" in m:
                med = m.get("wall_median", float("nan"))
                extra = ""
                if "compile_s" in m:
                    extra += f"  (compile {m['compile_s']:.2f} s, excluded)"
                if "mode" in m and m["mode"] != "full":
                    extra += f"  ({m['mode']})"
                for k in (
                    "rel_err_vs_hessref",
                    "rel_err_vs_H_v",
                    "rel_err_vs_H_V",
                    "rel_err_vs_32_singles",
                ):
                    if k in m:
                        extra += f"  {k}={m[k]:.1e}"
                print(
                    f"{key:48s} {m['wall_min']:10.4f} {med:10.4f} {m['cpu_min']:10.4f} "
                    f"{m.get('repeats', m.get('rows_timed', '')):>5}{extra}"
                )


def print_summary(rows: list[dict]) -> None:
    print("\nRatios vs targets (from minima measured in this run)")
    print("(wall: ratio of minimum wall times; cpu: ratio of minimum process CPU times)")
    print(f"{'ratio':42s} {'wall':>9s} {'cpu':>9s}  {'target':22s} met (wall / cpu)")
    for r in rows:
        if r["wall"] is None:
            print(f"{r['name']:42s} {'n/a':>9s} {'n/a':>9s}  {r['target']:22s} skipped")
            continue
        met = " / ".join("yes" if r[k] else "NO" for k in ("met_wall", "met_cpu"))
        print(f"{r['name']:42s} {r['wall']:9.3f} {r['cpu']:9.3f}  {r['target']:22s} {met}")


def environment() -> dict:
    env = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "hessref": hr.__version__,
        "platform": platform.platform(),
        "cpus_total": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "blas": [
            {k: d.get(k) for k in ("internal_api", "version", "num_threads")}
            for d in threadpool_info()
        ],
    }
    return env


def main(args: argparse.Namespace) -> dict:
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    notes: list[str] = []
    if args.quick:
        big_sizes, big_n, small_sizes, small_n = [5, 8, 8, 3], 50, [5, 6, 3], 40
        args.repeats, args.small_repeats = 1, 3
    else:
        big_sizes, big_n, small_sizes, small_n = [20, 50, 50, 5], 1000, [20, 30, 10, 5], 500
    results: dict = {"settings": {"threads": THREADS, "args": vars(args)}, "env": environment()}
    t_start = time.perf_counter()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    with threadpool_limits(limits=args.threads):
        big = make_problem(big_sizes, big_n)
        H = None
        if "exact_h" in only:
            print(
                f"[exact H] sizes {big_sizes} tanh CE mean, N = {big_n}, P = {big['P']}", flush=True
            )
            results["exact_h"] = bench_exact_h(big, args, skip, notes)
        if "autograd" in only:
            small = make_problem(small_sizes, small_n)
            print(
                f"[exact H vs autograd] sizes {small_sizes}, N = {small_n}, P = {small['P']}",
                flush=True,
            )
            results["exact_h_small"] = bench_autograd(small, args, skip, notes)
        if "hvp" in only:
            print("[HVP]", flush=True)
            H = hr.hessian(big["model"], big["theta"], big["X"], big["y"], loss="cross_entropy")
            results["hvp"] = bench_hvp(big, args, skip, notes, H)
            del H
        if "memory" in only:
            print("[peak memory, tracemalloc]", flush=True)
            results["memory"] = bench_memory(big)
    results["env"]["loadavg_end"] = os.getloadavg()
    results["total_seconds"] = time.perf_counter() - t_start
    results["notes"] = notes
    results["summary"] = summarize(results)

    print(f"\nthreads: {THREADS}")
    print_times(results)
    mem = results.get("memory", {"P": big["P"], "PxP_bytes": 8 * big["P"] ** 2})
    if "hessian" in mem:
        print(
            f"\nPeak traced memory (P = {mem['P']}, P^2*8 = {mem['PxP_bytes'] / 2**20:.1f} MiB):"
            f" hessian {mem['hessian']['peak_bytes'] / 2**20:.1f} MiB,"
            f" gauss_newton {mem['gauss_newton']['peak_bytes'] / 2**20:.1f} MiB"
        )
    print_summary(results["summary"])
    for n in notes:
        print("note:", n)
    print(
        f"load average start {results['env']['loadavg_start']}, end {results['env']['loadavg_end']};"
        f" total {results['total_seconds']:.0f} s"
    )
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=1, default=float)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main(ARGS)
