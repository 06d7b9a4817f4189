#!/usr/bin/env python
"""Benchmark of the matrix-free operators (issue 3) on a ~1M-parameter MLP.

Default problem: MLP [784, 1000, 1000, 10] (P = 1,796,010), tanh, mean
cross-entropy, N = 10,000 synthetic standard-normal inputs with uniform random
labels, θ from ``model.init(0)``, chunks of ``--batch-size`` rows. Measured in ONE
process (run it with /work/venv-peers/bin/python to include torch):

1. one gradient (same chunking as the operator; backprop per chunk, summed);
2. one HVP ``H @ v`` (target: ≤ 4× the gradient);
3. one HVP with the forward caches kept (``cache_bytes``), if ``--cache-bytes`` > 0;
4. a block of 16 HVPs ``H @ V`` (target: ≤ 8× one HVP);
5. torch.func HVP (forward-over-reverse ``jvp(grad(L))`` and reverse-over-reverse)
   on the same model, θ, data and chunks in float64 (target hessref/torch ≤ 1.5), and
   the relative difference of the two HVPs;
6. top-10 eigenvalues (``hessref.spectrum.top_eigenpairs``, ARPACK ``'LA'``, modest
   tol; falls back to ``eigsh`` if spectrum is missing), with products and time;
7. a 100-probe Hutchinson trace and an SLQ density (m = 80, 10 probes), if
   ``hessref.spectrum`` exists;
8. peak memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``).

Items 6-7 need hundreds of products. ``--est-N`` runs them on the first est-N rows
(same model and θ): their product counts and times are measured at est-N, and the
CPU time at the full N is *projected* as (measured CPU time) + (products) × (CPU time
of one full-N HVP − CPU time of one est-N HVP), i.e. the products re-costed at full N
and everything else (reorthogonalization, ...) unchanged. Projections are labelled as
such in the table and the JSON; the product count itself may differ at full N.

The machine is shared: wall-clock minima can come from different load levels, so
gradient, HVP and torch are timed round-robin, and CPU times (``process_time``; with
one thread, the work done) are reported beside wall times.

Threads: ``--threads k`` caps the process at k CPUs (``sched_setaffinity``), sets
OMP/OPENBLAS/MKL_NUM_THREADS = k before NumPy is imported, uses
``threadpoolctl.threadpool_limits(k)`` and ``torch.set_num_threads(k)``. Each timing
is the minimum over ``--repeats`` runs (wall clock); CPU time is recorded too.

Usage::

    /work/venv-peers/bin/python benchmarks/bench_operators.py --threads 2
    python benchmarks/bench_operators.py --quick          # smoke test, seconds
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="784,1000,1000,10", help="layer widths d_0,...,d_L")
    ap.add_argument("--activation", default="tanh")
    ap.add_argument("--loss", default="cross_entropy", choices=("mse", "cross_entropy"))
    ap.add_argument("--N", type=int, default=10_000, help="number of samples")
    ap.add_argument("--batch-size", type=int, default=500, help="rows per chunk")
    ap.add_argument("--block", type=int, default=16, help="directions in the HVP block")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--block-repeats", type=int, default=2)
    ap.add_argument("--cache-bytes", type=int, default=0, help="forward-cache budget (bytes)")
    ap.add_argument("--eig-k", type=int, default=10)
    ap.add_argument("--eig-tol", type=float, default=1e-3)
    ap.add_argument("--probes", type=int, default=100, help="Hutchinson probes")
    ap.add_argument("--slq-m", type=int, default=80)
    ap.add_argument("--slq-probes", type=int, default=10)
    ap.add_argument("--est-N", type=int, default=None, help="rows used by items 6-7")
    ap.add_argument("--skip", default="", help="comma list: torch,block,eig,hutchinson,slq")
    ap.add_argument("--out", default="/tmp/bench_operators.json")
    ap.add_argument("--quick", action="store_true", help="tiny problem (smoke test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.N, args.batch_size, args.repeats, args.block_repeats = (
            "30,40,40,10",
            300,
            70,
            2,
            1,
        )
        args.slq_m, args.slq_probes, args.probes = 20, 3, 20
    return args


def pin_threads(k: int) -> dict:
    """Cap the process at k CPUs and k BLAS threads; call before importing NumPy."""
    cpus = sorted(os.sched_getaffinity(0))
    k = max(1, min(k, len(cpus)))
    os.sched_setaffinity(0, set(cpus[:k]))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(k)
    return {"threads": k, "affinity": sorted(os.sched_getaffinity(0))}


ARGS = parse_args() if __name__ == "__main__" else None
THREADS = pin_threads(ARGS.threads) if ARGS is not None else None

import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import hessref as hr  # noqa: E402
from hessref.core.mlp import backprop_gradient, forward  # noqa: E402
from hessref.core.problem import make_problem  # noqa: E402
from hessref.operators import hessian_operator  # noqa: E402

try:
    from hessref import spectrum
except ImportError:  # pragma: no cover - spectrum is written concurrently
    spectrum = None


def measure(fn, repeats: int) -> dict:
    """Wall and CPU seconds of ``repeats`` runs of ``fn`` (no warm-up: runs are long)."""
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        out = None
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall": wall, "cpu": cpu, "min": min(wall), "cpu_min": min(cpu), "result": out}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(args) -> dict:
    sizes = [int(s) for s in args.sizes.split(",")]
    model = hr.MLP(sizes, activation=args.activation)
    rng = np.random.default_rng(0)
    theta = model.init(rng)
    X = rng.standard_normal((args.N, sizes[0]))
    if args.loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], size=args.N)
    else:
        y = rng.standard_normal((args.N, sizes[-1]))
    v = rng.standard_normal(model.num_params)
    V = rng.standard_normal((model.num_params, args.block))
    return {"model": model, "theta": theta, "X": X, "y": y, "v": v, "V": V, "sizes": sizes}


def chunked_gradient(p: dict, args) -> np.ndarray:
    """∇L with the operator's chunking: Σ_chunks backprop (global weight 1/N)."""
    prob = make_problem(p["model"], p["theta"], p["X"], p["y"], args.loss, "mean")
    total = None
    for c in prob.chunks(args.batch_size):
        cache = forward(c.model, c.params, c.X)
        delta = c.scale * c.loss.gradient(cache.F, c.y)
        g = p["model"].flatten(backprop_gradient(c.params, cache, delta))
        total = g if total is None else np.add(total, g, out=total)
    return total


def torch_hvps(p: dict, args):
    """torch.func HVP closures on the same model/θ/data/chunks (float64), or None."""
    try:
        import torch
        from torch.func import functional_call, grad, jvp
    except ImportError:
        return None
    torch.set_num_threads(THREADS["threads"] if THREADS else 1)
    model = p["model"]
    layers = []
    for l in range(1, model.num_layers + 1):
        layers.append(torch.nn.Linear(model.sizes[l - 1], model.sizes[l]).double())
        if l < model.num_layers:
            layers.append(getattr(torch.nn, model.activation.torch_name)())
    net = torch.nn.Sequential(*layers)
    torch.nn.utils.vector_to_parameters(torch.from_numpy(p["theta"]), net.parameters())
    params = {k: t.detach() for k, t in net.named_parameters()}
    names = list(params)
    shapes = [params[k].shape for k in names]
    N, bs = args.N, args.batch_size
    X = torch.from_numpy(p["X"])
    y = torch.from_numpy(p["y"])

    def loss(prm, Xc, yc):
        out = functional_call(net, prm, (Xc,))
        if args.loss == "cross_entropy":
            return torch.nn.functional.cross_entropy(out, yc, reduction="sum") / N
        return 0.5 * ((out - yc) ** 2).sum() / N

    def as_dict(v):
        out, pos = {}, 0
        vt = torch.from_numpy(v)
        for k, s in zip(names, shapes, strict=True):
            n = int(np.prod(s))
            out[k] = vt[pos : pos + n].reshape(s)
            pos += n
        return out

    def flat(d):
        return torch.cat([d[k].reshape(-1) for k in names]).numpy()

    def hvp_fwd_rev(v):
        vd, total = as_dict(v), None
        for s in range(0, N, bs):
            Xc, yc = X[s : s + bs], y[s : s + bs]
            _, hv = jvp(lambda q, Xc=Xc, yc=yc: grad(loss)(q, Xc, yc), (params,), (vd,))
            total = hv if total is None else {k: total[k] + hv[k] for k in names}
        return flat(total)

    def hvp_rev_rev(v):
        vd, total = as_dict(v), None
        for s in range(0, N, bs):
            Xc, yc = X[s : s + bs], y[s : s + bs]

            def dot_grad(q, Xc=Xc, yc=yc):
                g = grad(loss)(q, Xc, yc)
                return sum((g[k] * vd[k]).sum() for k in names)

            hv = grad(dot_grad)(params)
            total = hv if total is None else {k: total[k] + hv[k] for k in names}
        return flat(total)

    def gradient():
        total = None
        for s in range(0, N, bs):
            g = grad(loss)(params, X[s : s + bs], y[s : s + bs])
            total = g if total is None else {k: total[k] + g[k] for k in names}
        return flat(total)

    return {
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "hvp_fwd_rev": hvp_fwd_rev,
        "hvp_rev_rev": hvp_rev_rev,
        "gradient": gradient,
    }


def rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def run(args) -> dict:
    skip = {s for s in args.skip.split(",") if s}
    p = build(args)
    model = p["model"]
    R: dict = {"P": model.num_params, "sizes": p["sizes"], "N": args.N}
    # cache_bytes=0: the "hvp" row times a product that recomputes the forward pass
    # (operators keep chunk state by default since issue 20; "hvp_cached" times that)
    op = hessian_operator(
        model,
        p["theta"],
        p["X"],
        p["y"],
        loss=args.loss,
        batch_size=args.batch_size,
        cache_bytes=0,
    )

    # gradient, HVP (and torch) are timed round-robin, so that a change of machine
    # load during the run hits all of them alike; ratios use the minima
    fns = {"gradient": lambda: chunked_gradient(p, args), "hvp": lambda: op @ p["v"]}
    opc = None
    if args.cache_bytes > 0:
        opc = hessian_operator(
            model,
            p["theta"],
            p["X"],
            p["y"],
            loss=args.loss,
            batch_size=args.batch_size,
            cache_bytes=args.cache_bytes,
        )
        opc @ p["v"]  # fills the cache
        fns["hvp_cached"] = lambda: opc @ p["v"]
    tt = None if "torch" in skip else torch_hvps(p, args)
    if tt is not None:
        R["torch"] = {"version": tt["version"], "threads": tt["threads"]}
        fns["torch_gradient"] = tt["gradient"]
        fns["torch_hvp_fwd_rev"] = lambda: tt["hvp_fwd_rev"](p["v"])
        fns["torch_hvp_rev_rev"] = lambda: tt["hvp_rev_rev"](p["v"])
    elif "torch" not in skip:
        print("torch not installed: skipped")
    times = {k: {"wall": [], "cpu": []} for k in fns}
    outs = {}
    for rep in range(args.repeats):
        for k, fn in fns.items():
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            outs[k] = fn()
            times[k]["wall"].append(time.perf_counter() - t0)
            times[k]["cpu"].append(time.process_time() - c0)
            print(
                f"  round {rep}: {k:<18s} wall {times[k]['wall'][-1]:7.2f} s  "
                f"cpu {times[k]['cpu'][-1]:7.2f} s",
                flush=True,
            )
    for k, t in times.items():
        t["min"], t["cpu_min"] = min(t["wall"]), min(t["cpu"])
        R[k] = t
    g, Hv = outs["gradient"], outs["hvp"]
    if args.N <= 3000:  # the chunked sum equals the one-shot gradient
        R["gradient_check_rel"] = rel(
            g, hr.gradient(model, p["theta"], p["X"], p["y"], loss=args.loss)
        )
    if opc is not None:
        R["hvp_cached"]["identical_bits"] = bool(np.array_equal(outs["hvp_cached"], Hv))
        R["hvp_cached"]["cached_bytes"] = opc.cached_bytes
    if tt is not None:
        for k in ("gradient", "hvp_fwd_rev", "hvp_rev_rev"):
            R["torch"][k] = R.pop("torch_" + k)
            R["torch"][k]["rel_diff"] = rel(outs["torch_" + k], g if k == "gradient" else Hv)
    opc = outs = fns = None  # free the cache and the results
    gc.collect()

    if "block" not in skip:
        m = measure(lambda: op @ p["V"], args.block_repeats)
        HV = m.pop("result")
        R["block"] = m
        R["block"]["K"] = args.block
        R["block"]["column0_vs_single_rel"] = rel(HV[:, 0], op @ p["V"][:, 0])
        del HV
        print(f"block of {args.block:<3d}       {m['min']:8.2f} s", flush=True)

    R["rss_after_products_mib"] = peak_rss_mib()

    est_N = args.est_N or args.N
    # the estimators use their own operator, with the forward cache if --cache-bytes
    est_op = hessian_operator(
        model,
        p["theta"],
        p["X"][:est_N],
        p["y"][:est_N],
        loss=args.loss,
        batch_size=args.batch_size,
        cache_bytes=args.cache_bytes,
    )
    if est_N != args.N:
        m = measure(lambda: est_op @ p["v"], 1)
        m.pop("result")
        R["hvp_at_est_N"] = m
    R["est_N"] = est_N

    def project(cpu_seconds: float, matvecs: int) -> float | None:
        """CPU seconds at the full N: products re-costed at full N, the rest unchanged."""
        if est_N == args.N:
            return None
        per_product = R["hvp"]["cpu_min"] - R["hvp_at_est_N"]["cpu_min"]
        return cpu_seconds + matvecs * per_product

    if "eig" not in skip:
        n0, t0, c0 = est_op.num_matvecs, time.perf_counter(), time.process_time()
        if spectrum is not None:
            ep = spectrum.top_eigenpairs(est_op, args.eig_k, "largest", tol=args.eig_tol, rng=0)
            vals, matvecs, resid = ep.values, ep.num_matvecs, ep.residuals
            method = "hessref.spectrum.top_eigenpairs(arpack, 'largest')"
        else:  # pragma: no cover
            from scipy.sparse.linalg import eigsh

            vals, vecs = eigsh(est_op, k=args.eig_k, which="LA", tol=args.eig_tol)
            vals = vals[::-1]
            resid = np.linalg.norm(est_op @ vecs - vecs * vals[::-1], axis=0)[::-1]
            matvecs = est_op.num_matvecs - n0
            method = "scipy eigsh(which='LA')"
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        R["eig"] = {
            "method": method,
            "tol": args.eig_tol,
            "seconds": dt,
            "matvecs": int(matvecs),
            "values": [float(x) for x in vals],
            "residuals": [float(x) for x in resid],
            "cpu_seconds": dc,
            "projected_cpu_seconds_full_N": project(dc, int(matvecs)),
        }
        print(f"top-{args.eig_k} eig (N={est_N}) {dt:8.2f} s, {matvecs} products")

    if spectrum is not None and "hutchinson" not in skip:
        t0, c0 = time.perf_counter(), time.process_time()
        te = spectrum.hutchinson_trace(est_op, args.probes, rng=0)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        R["hutchinson"] = {
            "seconds": dt,
            "probes": args.probes,
            "estimate": te.estimate,
            "stderr": te.stderr,
            "matvecs": te.num_matvecs,
            "cpu_seconds": dc,
            "projected_cpu_seconds_full_N": project(dc, te.num_matvecs),
        }
        print(
            f"hutchinson {args.probes} (N={est_N}) {dt:8.2f} s  tr={te.estimate:.4g}±{te.stderr:.2g}"
        )

    if spectrum is not None and "slq" not in skip:
        t0, c0 = time.perf_counter(), time.process_time()
        sd = spectrum.slq_density(est_op, m=args.slq_m, num_probes=args.slq_probes, rng=0)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        R["slq"] = {
            "seconds": dt,
            "m": args.slq_m,
            "probes": args.slq_probes,
            "matvecs": args.slq_m * args.slq_probes,
            "node_range": [float(sd.nodes.min()), float(sd.nodes.max())],
            "cpu_seconds": dc,
            "projected_cpu_seconds_full_N": project(dc, args.slq_m * args.slq_probes),
        }
        print(f"slq m={args.slq_m} x{args.slq_probes} (N={est_N}) {dt:8.2f} s")

    R["peak_rss_mib"] = peak_rss_mib()
    return R


def environment() -> dict:
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "threads": THREADS,
        "blas": [
            {k: d.get(k) for k in ("internal_api", "num_threads", "version", "architecture")}
            for d in threadpool_info()
        ],
        "loadavg_start": os.getloadavg(),
    }


def table(R: dict, args) -> str:
    """Wall-clock minima and, in brackets, CPU-time minima (1 thread: the cost)."""
    rows = [("item", "wall s [cpu s]", "ratio wall [cpu]", "target", "ok (wall/cpu)")]

    def t(d):
        return d["min"], d["cpu_min"]

    def fmt(d):
        w, c = t(d)
        return f"{w:.2f} [{c:.2f}]"

    def ratio(a, b, unit, limit):
        (wa, ca), (wb, cb) = t(a), t(b)
        return (f"{wa / wb:.2f} [{ca / cb:.2f}] {unit}", f"{wa / wb <= limit}/{ca / cb <= limit}")

    rows.append(("gradient", fmt(R["gradient"]), "", "", ""))
    r, ok = ratio(R["hvp"], R["gradient"], "x grad", 4)
    rows.append(("HVP", fmt(R["hvp"]), r, "<= 4", ok))
    if "hvp_cached" in R:
        r, ok = ratio(R["hvp_cached"], R["gradient"], "x grad", 4)
        rows.append(("HVP, cached forward", fmt(R["hvp_cached"]), r, "<= 4", ok))
    if "block" in R:
        r, ok = ratio(R["block"], R["hvp"], "x HVP", 8)
        rows.append((f"block of {args.block} HVPs", fmt(R["block"]), r, "<= 8", ok))
    if R.get("torch"):
        for key in ("hvp_fwd_rev", "hvp_rev_rev"):
            r, ok = ratio(R["hvp"], R["torch"][key], "hessref/torch", 1.5)
            rows.append((f"torch.func {key}", fmt(R["torch"][key]), r, "<= 1.5", ok))
        rows.append(("torch.func gradient", fmt(R["torch"]["gradient"]), "", "", ""))
    for key, label in (
        ("eig", f"top-{args.eig_k} eigsh"),
        ("hutchinson", "Hutchinson"),
        ("slq", "SLQ"),
    ):
        if key in R:
            e = R[key]
            proj = e["projected_cpu_seconds_full_N"]
            txt = f"{e['matvecs']} products at N={R['est_N']}"
            rows.append((label, f"{e['seconds']:.1f} [{e['cpu_seconds']:.1f}]", txt, "", ""))
            if proj is not None:
                rows.append(
                    (
                        f"  projected at N={R['N']} (cpu)",
                        f"[{proj:.0f}]",
                        "",
                        "< 600" if key == "eig" else "",
                        str(proj < 600) if key == "eig" else "",
                    )
                )
    rss = R["rss_after_products_mib"]
    rows.append(("RSS after products (MiB)", f"{rss:.0f}", "", "< 2048", str(rss < 2048)))
    rows.append(
        ("peak RSS (MiB)", f"{R['peak_rss_mib']:.0f}", "", "< 2048", str(R["peak_rss_mib"] < 2048))
    )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def main(args) -> dict:
    env = environment()
    print(f"threads={THREADS}  BLAS={env['blas']}  load={env['loadavg_start']}")
    with threadpool_limits(limits=THREADS["threads"]):
        R = run(args)
    R["environment"] = env
    R["environment"]["loadavg_end"] = os.getloadavg()
    R["settings"] = {k: v for k, v in vars(args).items()}
    print()
    print(
        f"MLP {R['sizes']} ({args.activation}), P = {R['P']:,}, N = {R['N']:,}, "
        f"{args.loss}, batch_size = {args.batch_size}, threads = {THREADS['threads']}"
    )
    print(table(R, args))
    with open(args.out, "w") as fh:
        json.dump(R, fh, indent=1, default=float)
    print(f"\nJSON written to {args.out}")
    return R


if __name__ == "__main__":
    main(ARGS)
