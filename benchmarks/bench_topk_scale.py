#!/usr/bin/env python
"""Top-k eigenvalues of H at scale: hessref vs curvlinops + eigsh (issues 15 and 20).

Problem (defaults): MLP [784, 1000, 1000, 10] (P = 1,796,010), tanh, mean
cross-entropy, N = 10,000 standard-normal inputs with uniform random labels,
θ = ``model.init(rng)``, data from ``np.random.default_rng(0)`` exactly as in
``bench_operators.py``; the operators see the data in chunks of ``--batch-size`` rows.

* hessref: ``top_eigenpairs(hessian_operator(...), k, method=M, tol=tol)`` with
  ``--method`` M = "arpack" (the default of ``top_eigenpairs``), "block" (block Lanczos
  on (P, b) blocks, b = ``--block-size``, default k: one batched R-op pass per block)
  or "lanczos" (one vector, full reorthogonalization). ``--default`` runs hessref
  exactly as a user who passes nothing but k would: ``hessian_operator(model, θ, X, y,
  loss=...)`` (automatic chunking, the default kept-state budget) and
  ``top_eigenpairs(H, k, tol=tol, rng=0)`` (ARPACK, exact residuals). A method written
  "M+ritz" (e.g. ``--method arpack,arpack+ritz``) runs M with ``residuals="ritz"``,
  "M+nocache" with ``cache_bytes=0`` (the default of hessref 0.2);
* curvlinops: ``HessianLinearOperator(...).to_scipy()`` +
  ``scipy.sparse.linalg.eigsh(k=k, which="LA", tol=tol)`` on the same float64
  ``torch.nn`` model (weights copied from θ), data, in chunks of ``--batch-size`` rows.
  Start vector: with ``--start separate`` (the default with ``--default``) eigsh draws
  its own, as its users run it; with ``--start shared`` it gets v0 = the start vector of
  ``top_eigenpairs(rng=0)``. It runs in a SEPARATE interpreter (``--peers-python``, a
  venv with torch and curvlinops-for-pytorch, see .ci/conformance.sh), started from
  this script.

``--cache-bytes`` sets the hessref operator's budget for kept chunk state (activations,
σ′, σ″, the loss's δ_l: what does not depend on V); "default" leaves the operator's
default (min(¼ of available memory, 2 GiB)), 0 turns it off. ``--hessref-batch-size``
("auto" = ``batch_size=None``, the default) sets hessref's chunks. Both runs use
``--threads`` BLAS/torch threads. Printed: wall and CPU time, operator
columns applied, the top-k values, the largest |Δλ| relative to λ_max, and the time
ratio hessref / curvlinops (target ≤ 0.5; eigenvalues agree to 1e-6). With
``--project-N`` the CPU times are also projected to that N: the products scale with
N (the time of one product is measured at both N), the rest does not. Projections
are labelled as such. ``--scale-to-N`` projects without the full-N timing, scaling
the measured cost of one product linearly in N (a product is one pass over the data).
The runs (one per hessref method, and curvlinops) are separate processes started
together, so they see the same machine load.

Usage::

    python benchmarks/bench_topk_scale.py --default --sizes 784,300,300,10 --N 4000 \
        --peers-python /work/venv-peers/bin/python     # issue 20's default-settings target
    python benchmarks/bench_topk_scale.py --N 1000 --project-N 10000
    python benchmarks/bench_topk_scale.py --quick     # tiny smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="784,1000,1000,10")
    ap.add_argument("--N", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument(
        "--default",
        action="store_true",
        help="hessref with default settings only (arpack, auto chunks, default cache), "
        "tol 1e-8, eigsh with its own start vector",
    )
    ap.add_argument("--start", default=None, choices=("separate", "shared"))
    ap.add_argument("--hessref-batch-size", default="500", help='rows per chunk or "auto"')
    ap.add_argument("--residuals", default=None, choices=("exact", "ritz"))
    ap.add_argument(
        "--method", default=None, help="hessref method(s), comma-separated: block,lanczos,arpack"
    )
    ap.add_argument("--block-size", type=int, default=None, help="block method: b (default k)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--cache-bytes",
        default=None,
        help='hessref: kept chunk state budget in bytes, or "default" (hessian_operator)',
    )
    ap.add_argument("--project-N", type=int, default=None)
    ap.add_argument(
        "--scale-to-N",
        type=int,
        default=None,
        help="project by scaling the measured product cost linearly in N (no full-N timing)",
    )
    ap.add_argument("--peers-python", default=".venv-peers/bin/python")
    ap.add_argument("--side", default="both", choices=("both", "hessref", "curvlinops"))
    ap.add_argument("--out", default="/tmp/bench_topk_scale.json")
    ap.add_argument("--quick", action="store_true", help="[20, 30, 30, 5], N = 300")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.N, args.batch_size = "20,30,30,5", 300, 100
        args.hessref_batch_size = "100"
    if args.default:
        args.method = args.method or "arpack"
        args.tol = 1e-8
        args.cache_bytes = args.cache_bytes or "default"
        args.hessref_batch_size = "auto"
        args.start = args.start or "separate"
    args.start = args.start or "shared"
    args.residuals = args.residuals or "exact"
    args.method = args.method or "block"
    args.cache_bytes = args.cache_bytes or "0"
    return args


def build(args, N):
    """Model, θ and the first N rows of the data (the same for every N ≤ args.N)."""
    import numpy as np

    import hessref as hr

    sizes = [int(s) for s in args.sizes.split(",")]
    model = hr.MLP(sizes, activation="tanh")
    rng = np.random.default_rng(0)
    theta = model.init(rng)
    n = max(N, args.N)
    X = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], size=n)
    return model, theta, X[:N], y[:N]


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def hessref_operator(args, N):
    import hessref as hr

    model, theta, X, y = build(args, N)
    kw = {}
    if args.hessref_batch_size != "auto":
        kw["batch_size"] = int(args.hessref_batch_size)
    if args.cache_bytes != "default":
        kw["cache_bytes"] = int(float(args.cache_bytes))
    return hr.hessian_operator(model, theta, X, y, loss="cross_entropy", **kw)


def curvlinops_operator(args, N):
    import numpy as np
    import torch
    from curvlinops import HessianLinearOperator

    model, theta, X, y = build(args, N)
    layers = []
    for l in range(1, model.num_layers + 1):
        W, b = theta[model.weight_slice(l)], theta[model.bias_slice(l)]
        lin = torch.nn.Linear(model.sizes[l - 1], model.sizes[l]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.reshape(lin.weight.shape)))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.Tanh()] if l < model.num_layers else [lin]
    net = torch.nn.Sequential(*layers)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).long()
    bs = args.batch_size
    data = [(Xt[i : i + bs], yt[i : i + bs]) for i in range(0, len(y), bs)]
    H = HessianLinearOperator(
        net, torch.nn.CrossEntropyLoss(), list(net.parameters()), data, check_deterministic=False
    )
    return H.to_scipy(dtype=np.float64)


def run_side(args) -> dict:
    """Solve on this side; time one solver unit (hessref: a (P, k) block, eigsh: one vector)."""
    import numpy as np
    import scipy.sparse.linalg as spla
    from threadpoolctl import threadpool_limits

    if args.side == "curvlinops":
        import torch

        torch.set_num_threads(args.threads)
    make = hessref_operator if args.side == "hessref" else curvlinops_operator
    width = (args.block_size or args.k) if args.side == "hessref" else 1
    if args.side == "hessref" and args.method != "block":
        width = 1
    out: dict = {"N": args.N}
    with threadpool_limits(args.threads):
        for N, key in ((args.N, "unit_cpu"), (args.project_N, "unit_cpu_projected_N")):
            if N:
                A = make(args, N)
                V = np.random.default_rng(1).standard_normal((A.shape[0], width))
                A @ V  # warm-up (first-call costs of the framework; fills hessref's caches)
                out[key] = timed(lambda A=A, V=V: A @ V)[2]
                del A
        A = make(args, args.N)
        count = [0]

        def mv(x):
            count[0] += 1 if x.ndim == 1 else x.shape[1]
            return A @ x

        op = spla.LinearOperator(A.shape, matvec=mv, matmat=mv, dtype=np.float64)

        def solve():
            if args.side != "hessref":
                # shared: the start vector of top_eigenpairs(rng=0); separate: ARPACK draws
                # its own, as eigsh's users run it
                v0 = np.random.default_rng(0).standard_normal(op.shape[0])
                v0 = v0 if args.start == "shared" else None
                values = spla.eigsh(op, k=args.k, which="LA", tol=args.tol, v0=v0)[0]
                return np.sort(values)[::-1]
            from hessref.spectrum import top_eigenpairs

            kw = {"block_size": args.block_size} if args.method == "block" else {}
            kw["residuals"] = args.residuals
            return top_eigenpairs(op, args.k, method=args.method, tol=args.tol, rng=0, **kw).values

        values, out["wall"], out["cpu"] = timed(solve)
    out.update(values=values.tolist(), matvecs=count[0], units=count[0] / width)
    if args.project_N:
        extra = out["units"] * (out["unit_cpu_projected_N"] - out["unit_cpu"])
        out["cpu_projected_N"] = out["cpu"] + extra
    elif args.scale_to_N:
        extra = out["units"] * out["unit_cpu"] * (args.scale_to_N / args.N - 1.0)
        out["cpu_projected_N"] = out["cpu"] + extra
    return out


def child(args, side: str, method: str = "") -> dict:
    python = sys.executable if side == "hessref" else args.peers_python
    cmd = [python, os.path.abspath(__file__)] + sys.argv[1:] + ["--side", side]
    # "arpack+ritz": that method with top_eigenpairs(residuals="ritz"); "+nocache": the
    # operator with cache_bytes=0 (the 0.2 default)
    method, *options = method.split("+") if method else [""]
    cmd += ["--method", method] if method else []
    cmd += ["--residuals", "ritz"] if "ritz" in options else []
    cmd += ["--cache-bytes", "0"] if "nocache" in options else []
    n = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{side} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("JSON:"))[5:])


def report(args, h: dict, c: dict, method: str) -> None:
    err = max(abs(a - b) for a, b in zip(h["values"], c["values"], strict=True))
    err /= abs(c["values"][0])
    for name, r in ((f"hessref ({method})", h), ("curvlinops + eigsh", c)):
        print(
            f"{name:20s} wall {r['wall']:9.1f} s  cpu {r['cpu']:9.1f} s  "
            f"columns {r['matvecs']:5d}  solver unit {r['unit_cpu']:.2f} s cpu"
        )
        print(f"  top values: {' '.join(f'{x:.9g}' for x in r['values'])}")
    print(f"max |Δλ| / λ_max = {err:.2e}  (target ≤ 1e-6)")
    print(
        f"time ratio hessref / curvlinops: wall {h['wall'] / c['wall']:.3f}, "
        f"cpu {h['cpu'] / c['cpu']:.3f}  (target ≤ 0.5)"
    )
    if args.project_N or args.scale_to_N:
        hp, cp = h["cpu_projected_N"], c["cpu_projected_N"]
        how = "measured at that N" if args.project_N else "scaled linearly in N"
        print(
            f"PROJECTED to N = {args.project_N or args.scale_to_N} (product cost {how}, "
            "product counts as measured at the run's N, rest unchanged): "
            f"hessref {hp:.0f} s cpu, curvlinops {cp:.0f} s cpu, ratio {hp / cp:.3f}"
        )
    h["rel_err_vs_curvlinops"] = err


def main() -> None:
    args = parse_args()
    if args.side != "both":
        print("JSON:" + json.dumps(run_side(args)))
        return
    print(
        f"sizes {args.sizes}, N = {args.N}, curvlinops batch {args.batch_size}, hessref "
        f"batch {args.hessref_batch_size}, cache {args.cache_bytes}, residuals "
        f"{args.residuals}, start vectors {args.start}, k = {args.k}, tol = {args.tol:g}, "
        f"threads = {args.threads}, load {os.getloadavg()}",
        flush=True,
    )
    from concurrent.futures import ThreadPoolExecutor

    jobs = [("hessref", m) for m in args.method.split(",")] + [("curvlinops", "")]
    with ThreadPoolExecutor(len(jobs)) as pool:
        done = list(pool.map(lambda job: child(args, *job), jobs))
    R = {
        (f"hessref-{m}" if side == "hessref" else side): r
        for (side, m), r in zip(jobs, done, strict=True)
    }
    for m in args.method.split(","):
        report(args, R[f"hessref-{m}"], R["curvlinops"], m)
    R["load_after"] = os.getloadavg()
    with open(args.out, "w") as fh:
        json.dump(R, fh, indent=1)


if __name__ == "__main__":
    main()
