"""Top-k eigenpairs of H on a dask LocalCluster vs serially, with one BLAS thread each.

Default problem: MLP [200, 600, 300, 10] (P = 303,910), N = 20,000 Gaussian inputs with
random labels, cross-entropy, θ from ``model.init(rng=0)``; top-10 eigenpairs of H by
``hessref.spectrum.top_eigenpairs`` (ARPACK, same start vector). Serial: this process,
one BLAS thread. Distributed: a LocalCluster of ``--workers`` worker processes with one
thread each (BLAS pinned to one thread by dask), bound to 127.0.0.1, no dashboard.

Prints both wall times, the speed-up ratio, the largest relative eigenvalue difference
(must be ≤ 1e-10), the bytes the client sent per product (counted on its own TCP
connections) and a flop/byte model of one product. Run on an idle machine for a
meaningful ratio; under load, other processes take the cores the workers need.

    python benchmarks/bench_distributed.py                     # the issue's setting
    python benchmarks/bench_distributed.py --products 3        # products only, same size
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref.spectrum import top_eigenpairs


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="200,600,300,10", help="layer widths d_0,...,d_L")
    p.add_argument("--N", type=int, default=20_000, help="number of samples")
    p.add_argument("--k", type=int, default=10, help="number of top eigenpairs")
    p.add_argument("--workers", type=int, default=2, help="dask worker processes")
    p.add_argument("--chunks-per-worker", type=int, default=4, help="data chunks per worker")
    p.add_argument(
        "--products",
        type=int,
        default=0,
        help="time this many H v products instead of the eigensolver (quick run)",
    )
    p.add_argument(
        "--worker-malloc",
        choices=("mmap", "glibc", "dask"),
        default="mmap",
        help="dask: dask's default worker environment, whose MALLOC_TRIM_THRESHOLD_=65536 also "
        "freezes glibc's mmap threshold at 128 KiB, so every large temporary is a fresh mmap "
        "(page faults); mmap (docs/distributed.md): dask's environment plus "
        "MALLOC_MMAP_THRESHOLD_=33554432; glibc: no malloc variable, as the serial process",
    )
    p.add_argument(
        "--control",
        action="store_true",
        help="also time a ProcessPoolExecutor of --workers one-thread processes (no dask): "
        "what parallel processes get on this machine right now",
    )
    return p.parse_args()


def make_problem(sizes: list[int], N: int):
    model = hr.MLP(sizes, activation="tanh")
    rng = np.random.default_rng(0)
    theta = model.init(rng)
    X = rng.normal(size=(N, sizes[0]))
    y = rng.integers(0, sizes[-1], size=N)
    return model, theta, X, y


def count_client_bytes(client):
    """Patch TCP.write to count bytes written on the client's own connections."""
    from distributed.comm.tcp import TCP

    counts = {"sent": 0}
    original = TCP.write

    def owned(comm):
        if comm is client.scheduler_comm.comm:
            return True
        pools = (client.rpc.occupied, client.rpc.available)
        return any(comm in comms for pool in pools for comms in pool.values())

    async def write(self, msg, serializers=None, on_error="message"):
        n = await original(self, msg, serializers=serializers, on_error=on_error)
        if owned(self):
            counts["sent"] += n
        return n

    TCP.write = write
    return counts


def main() -> None:
    args = parse()
    from dask.distributed import Client

    sizes = [int(s) for s in args.sizes.split(",")]
    model, theta, X, y = make_problem(sizes, args.N)
    P, N, k = model.num_params, args.N, args.k
    batch = -(-N // (args.workers * args.chunks_per_worker))
    kw = {"loss": "cross_entropy", "batch_size": batch}
    task = f"{args.products} products H v" if args.products else f"top-{k} eigenpairs of H"
    print(f"MLP {sizes}, P = {P:,}, N = {N:,}, {task}, chunks of {batch} rows")
    print(f"machine: {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f}")

    with threadpool_limits(1):
        op = hr.hessian_operator(model, theta, X, y, **kw)
        t = time.perf_counter()
        op @ np.ones(P)
        t_mv = time.perf_counter() - t
        t = time.perf_counter()
        serial, n_serial = solve(op, args, P)
        t_serial = time.perf_counter() - t
    print(
        f"serial, 1 thread: {t_serial:.1f} s for {n_serial} products "
        f"({t_serial / n_serial:.2f} s each; a first product alone took {t_mv:.2f} s)"
    )

    cluster = make_cluster(args)
    with cluster, Client(cluster) as client, threadpool_limits(1):
        dop = hr.hessian_operator(model, theta, X, y, executor=client, **kw)
        counts = count_client_bytes(client)
        t = time.perf_counter()
        dop @ np.ones(P)  # scatters X, y, θ once
        t_scatter = time.perf_counter() - t
        sent_first = counts["sent"]
        t = time.perf_counter()
        dist, n_dist = solve(dop, args, P)
        t_dist = time.perf_counter() - t
        per_product = (counts["sent"] - sent_first) / n_dist
        dop.close()
    print(
        f"dask, {args.workers} workers x 1 thread: {t_dist:.1f} s for {n_dist} products "
        f"({t_dist / n_dist:.2f} s each), after a first product with the scatter of "
        f"{X.nbytes / 1e6:.0f} MB of data in {t_scatter:.1f} s"
    )
    what = "H v entries (relative to max |H v|)" if args.products else f"top-{k} eigenvalues"
    scale = np.max(np.abs(serial)) if args.products else np.abs(serial)
    rel = np.max(np.abs(dist - serial) / scale)
    same = np.array_equal(dist, serial)
    print(f"{what}: max relative difference {rel:.1e} (bit-identical: {same})")
    if not args.products:
        print(f"eigenvalues: {np.array2string(serial, precision=6)}")
    print(
        f"client bytes sent per product: {per_product:,.0f} (8·P = {8 * P:,}; "
        f"data {X.nbytes + y.nbytes:,})"
    )
    if args.control:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(args.workers, mp_context=ctx, initializer=one_thread)
        # the client's own BLAS (the eigensolver's) at one thread too, as in the serial run
        with pool, threadpool_limits(1):
            pop = hr.hessian_operator(model, theta, X, y, executor=pool, **kw)
            pop @ np.ones(P)  # start the processes
            t = time.perf_counter()
            ctrl, n_ctrl = solve(pop, args, P)
            t_ctrl = time.perf_counter() - t
        print(
            f"control, process pool of {args.workers} x 1 thread (no dask): {t_ctrl:.1f} s "
            f"for {n_ctrl} products; serial / pool = {t_serial / t_ctrl:.2f}x, "
            f"pool / dask = {t_ctrl / t_dist:.2f}x (bit-identical: {np.array_equal(ctrl, serial)})"
        )
    analysis(P, N, batch, args.workers, t_serial / n_serial)
    print(
        f"SPEED-UP serial / dask = {t_serial / t_dist:.2f}x "
        f"(target >= 1.5x on an idle 2-core machine; results within 1e-10: {rel <= 1e-10})"
    )


def make_cluster(args: argparse.Namespace):
    """A LocalCluster of one-thread worker processes on 127.0.0.1 (see ``--worker-malloc``)."""
    import dask
    from dask.distributed import LocalCluster

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    if args.worker_malloc == "glibc":
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    elif args.worker_malloc == "mmap":
        environ["MALLOC_MMAP_THRESHOLD_"] = 32 * 2**20
    print(f"worker environment: {environ}")
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                            host="127.0.0.1", dashboard_address=None)  # fmt: skip


def one_thread() -> None:
    """Process-pool initializer: one BLAS thread, as in dask's workers."""
    threadpool_limits(1)


def solve(op, args: argparse.Namespace, P: int) -> tuple[np.ndarray, int]:
    """Top-k eigenvalues (or, with --products n, n products H v) and the product count."""
    if args.products:
        rng = np.random.default_rng(1)
        return np.concatenate(
            [op @ rng.normal(size=P) for _ in range(args.products)]
        ), args.products
    top = top_eigenpairs(op, args.k, rng=0)
    return top.values, top.num_matvecs


def analysis(P: int, N: int, batch: int, workers: int, t_product: float) -> None:
    """Flop and byte model of one H v product (K = 1)."""
    # ≈ 8 passes of (N × d_in) × (d_in × d_out) GEMM-like work over every weight:
    # forward, R-forward (V a and W R{a}), backward δ, R{δ} (W R{δ} and V δ), and the
    # two outer products R{δ} aᵀ, δ R{a}ᵀ; 2 flops each ⇒ ≈ 16 N P
    flops = 16 * N * P
    chunks = -(-N // batch)
    moved = 8 * P * (1 + 1 + chunks)  # V out, result back, partial sums worker to worker
    print(
        f"model of one product: ≈ {flops / 1e9:.0f} GFLOP (≈ 16·N·P); serial rate "
        f"≈ {flops / t_product / 1e9:.1f} GFLOP/s. Data moved ≈ {moved / 1e6:.1f} MB "
        f"(V, result, {chunks - 1} partial sums) ⇒ at ≥ 1 GB/s loopback ≤ "
        f"{moved / 1e9:.3f} s vs ≈ {t_product / workers:.2f} s of compute per worker: "
        "compute-bound, ideal speed-up ≈ the number of free cores"
    )


if __name__ == "__main__":
    main()
