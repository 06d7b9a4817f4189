"""H, G, R operators on a real dask.distributed LocalCluster: bits, bytes, faults, threads.

One cluster (2 worker processes, 1 thread each, 127.0.0.1, no dashboard) serves the
whole module. Every product is compared bit for bit with the serial product computed
in this process with one BLAS thread (dask's nannies start workers with
OMP/OPENBLAS_NUM_THREADS=1, checked below). Skipped only when dask is not installed
(``pip install -e ".[distributed]"``); under CI a missing dask is an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref.core.problem import make_problem
from hessref.operators import ChunkError, CurvatureOperator
from hessref.spectrum import hutchinson_trace, slq_density, top_eigenpairs

if not os.environ.get("CI"):
    pytest.importorskip("distributed", reason='dask not installed: pip install -e ".[distributed]"')
from dask.distributed import Client, LocalCluster  # noqa: E402
from distributed.comm.tcp import TCP  # noqa: E402

FACTORIES = {
    "hessian": hr.hessian_operator,
    "ggn": hr.ggn_operator,
    "residual": hr.residual_operator,
}
CASES = {  # (sizes, loss): a 3-class classifier and a single-output regression (d_L = 1)
    "ce": ([5, 8, 6, 3], "cross_entropy"),
    "mse1": ([4, 7, 1], "mse"),
}


def make_case(sizes, loss, N, seed=0):
    model = hr.MLP(sizes, activation="tanh")
    rng = np.random.default_rng(seed)
    theta = model.init(rng)
    X = rng.normal(size=(N, sizes[0]))
    y = (
        rng.integers(0, sizes[-1], N)
        if loss == "cross_entropy"
        else rng.normal(size=(N, sizes[-1]))
    )
    return model, theta, X, y


def serial(op, V):
    with threadpool_limits(1):
        return op @ V


@pytest.fixture(scope="module")
def cluster():
    kw = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1"}
    cl = LocalCluster(dashboard_address=None, **kw)
    try:
        with Client(cl) as client:
            yield cl, client
    finally:
        close_after_kills(cl)


def close_after_kills(cl) -> None:
    """Close a LocalCluster whose workers the fault tests killed (and its nannies restarted).

    At close, distributed's ``SpecCluster._update_worker_status`` looks up every queued
    "remove" message in its cached ``scheduler_info`` and raises ``KeyError`` for a worker
    that came and went between two refreshes of that cache (dask/distributed#5407). That
    race is dask's own bookkeeping, after every test of the module has finished; anything
    else from close still fails the run.
    """
    try:
        cl.close()
    except KeyError as exc:
        if not str(exc).strip("'").startswith("tcp://"):
            raise


def test_workers_use_one_blas_thread(cluster):
    _, client = cluster
    info = client.run(lambda: __import__("threadpoolctl").threadpool_info())
    assert len(info) == 2
    assert all(lib["num_threads"] == 1 for libs in info.values() for lib in libs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_products_bit_identical_to_serial(cluster, case):
    _, client = cluster
    sizes, loss = CASES[case]
    model, theta, X, y = make_case(sizes, loss, N=11)
    P = model.num_params
    rng = np.random.default_rng(1)
    v, V = rng.normal(size=P), rng.normal(size=(P, 4))
    # ragged 3+3+3+2 and 5+5+1 rows, one chunk; the Client and its get_executor()
    runs = [(3, client), (3, client.get_executor()), (5, client), (11, client)]
    for mode, factory in FACTORIES.items():
        for batch_size, executor in runs:
            kw = {"loss": loss, "batch_size": batch_size}
            ref = factory(model, theta, X, y, **kw)
            want_v, want_V = serial(ref, v), serial(ref, V)
            with factory(model, theta, X, y, executor=executor, **kw) as op:
                for _ in range(2):  # the second product reuses the scattered data
                    got_v, got_V = op @ v, op @ V
                    assert got_v.shape == (P,) and got_V.shape == (P, 4)
                    assert np.array_equal(got_v, want_v), (case, mode, batch_size)
                    assert np.array_equal(got_V, want_V), (case, mode, batch_size)
                assert op.num_matvecs == 10


def test_spectrum_equal_to_serial(cluster):
    _, client = cluster
    model, theta, X, y = make_case([5, 8, 6, 3], "cross_entropy", N=13, seed=2)
    kw = {"loss": "cross_entropy", "batch_size": 4}
    ref = hr.hessian_operator(model, theta, X, y, **kw)
    with threadpool_limits(1):
        want_top = top_eigenpairs(ref, 2, rng=0)
        want_tr = hutchinson_trace(ref, 8, rng=0)
        want_slq = slq_density(ref, m=8, num_probes=2, rng=0)
    # the solvers' own BLAS calls run here: same thread count as for the serial run
    with hr.hessian_operator(model, theta, X, y, executor=client, **kw) as op, threadpool_limits(1):
        top = top_eigenpairs(op, 2, rng=0)
        tr = hutchinson_trace(op, 8, rng=0)
        slq = slq_density(op, m=8, num_probes=2, rng=0)
    assert np.array_equal(top.values, want_top.values)
    assert np.array_equal(top.vectors, want_top.vectors)
    assert (tr.estimate, tr.stderr) == (want_tr.estimate, want_tr.stderr)
    assert np.array_equal(slq.nodes, want_slq.nodes)
    assert np.array_equal(slq.density, want_slq.density)
    # and the serial answer is right: the top eigenvalues of the dense H
    H = hr.hessian(model, theta, X, y, loss="cross_entropy")
    assert np.allclose(top.values, np.linalg.eigvalsh(H)[::-1][:2], rtol=1e-8, atol=0)


# --- data sent once ---------------------------------------------------------------------------


@contextlib.contextmanager
def client_traffic(client):
    """Count bytes written by the client's own TCP connections (to scheduler and workers).

    The scheduler of a LocalCluster lives in this process too; its connections are
    not the client's and are not counted.
    """
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
    try:
        yield counts
    finally:
        TCP.write = original


def test_data_scattered_once_then_only_V_per_product(cluster):
    _, client = cluster
    model, theta, X, y = make_case([50, 20, 3], "cross_entropy", N=4000, seed=3)
    P = model.num_params  # 1083
    data_bytes = X.nbytes + y.nbytes + theta.nbytes  # ≈ 1.6 MB
    V = np.random.default_rng(4).normal(size=(P, 2))
    bound = 2 * 8 * P * 2 + 16_000  # 2 × 8·P·K plus a small constant (task messages)
    assert data_bytes > 30 * bound  # resending the data would fail the bound
    op = hr.hessian_operator(
        model, theta, X, y, loss="cross_entropy", batch_size=500, executor=client
    )  # 8 chunks
    with client_traffic(client) as first:
        op @ V
    per_product = []
    for _ in range(3):
        with client_traffic(client) as later:
            op @ V
        per_product.append(later["sent"])
    assert first["sent"] > data_bytes  # the first product scatters the data
    assert max(per_product) <= bound, (per_product, bound)
    assert min(per_product) >= 8 * P * 2  # V itself is sent (the counter sees the client)
    print(f"\nbytes sent per product: {per_product} (8·P·K = {8 * P * 2}, data {data_bytes})")
    # release on close: the scattered keys leave the scheduler
    keys = {f.key for f in [op._cluster._shared, *op._cluster._data]}
    op.close()
    assert wait_for(lambda: not keys & set(cluster[0].scheduler.tasks), 20)
    # release on garbage collection
    op = hr.hessian_operator(
        model, theta, X, y, loss="cross_entropy", batch_size=500, executor=client
    )
    op @ V
    keys = {f.key for f in [op._cluster._shared, *op._cluster._data]}
    assert keys <= set(cluster[0].scheduler.tasks)
    del op
    gc.collect()
    assert wait_for(lambda: not keys & set(cluster[0].scheduler.tasks), 20)


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# --- faults -----------------------------------------------------------------------------------


def test_worker_killed_mid_product_gives_identical_bits(cluster):
    cl, client = cluster
    model, theta, X, y = make_case([30, 64, 64, 10], "cross_entropy", N=8000, seed=5)
    kw = {"loss": "cross_entropy", "batch_size": 400}  # 20 chunks of ≈ 0.05 s each
    V = np.random.default_rng(6).normal(size=(model.num_params, 4))
    want = serial(hr.hessian_operator(model, theta, X, y, **kw), V)
    op = hr.hessian_operator(model, theta, X, y, executor=client, **kw)
    op @ V[:, :1]  # scatter the data first
    pids = client.run(os.getpid)
    with ThreadPoolExecutor(1) as pool:
        product = pool.submit(op.matmat, V)
        assert wait_for(lambda: _chunks_in_state(cl, "memory") >= 2, 60)
        victim = _worker_processing(cl)
        assert victim is not None and not product.done()
        os.kill(pids[victim], signal.SIGKILL)
        got = product.result(timeout=120)
    assert np.array_equal(got, want)
    assert victim not in client.scheduler_info()["workers"]
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it; later tests use both
    assert np.array_equal(op @ V, want)


def test_all_workers_killed_data_scattered_again(cluster):
    """Every copy of the scattered data lost: the operator scatters it again and retries."""
    cl, client = cluster
    model, theta, X, y = make_case([30, 64, 64, 10], "cross_entropy", N=8000, seed=15)
    kw = {"loss": "cross_entropy", "batch_size": 400}
    V = np.random.default_rng(16).normal(size=(model.num_params, 4))
    want = serial(hr.hessian_operator(model, theta, X, y, **kw), V)
    op = hr.hessian_operator(model, theta, X, y, executor=client, **kw)
    op @ V[:, :1]
    old = {f.key for f in op._cluster._data}
    with ThreadPoolExecutor(1) as pool:
        product = pool.submit(op.matmat, V)
        assert wait_for(lambda: _chunks_in_state(cl, "memory") >= 1, 60)
        assert not product.done()
        for pid in client.run(os.getpid).values():
            os.kill(pid, signal.SIGKILL)
        client.wait_for_workers(2, timeout=60)
        assert np.array_equal(product.result(timeout=120), want)
    assert not old & {f.key for f in op._cluster._data}  # scattered again


def _chunks_in_state(cl, state):
    tasks = list(cl.scheduler.tasks.values())
    return sum(1 for ts in tasks if "chunk" in str(ts.key) and ts.state == state)


def _worker_processing(cl):
    for ts in list(cl.scheduler.tasks.values()):
        if "chunk" in str(ts.key) and ts.state == "processing" and ts.processing_on:
            return ts.processing_on.address
    return None


def test_nan_chunk_raises_error_naming_it(cluster):
    _, client = cluster
    model, theta, X, y = make_case([5, 8, 6, 3], "cross_entropy", N=11, seed=7)
    problem = make_problem(model, theta, X, y, "cross_entropy")
    X_bad = X.copy()
    X_bad[7, 2] = np.nan  # slipped past validation: inserted after make_problem
    bad = dataclasses.replace(problem, X=X_bad)
    message = r"chunk 2 \(rows 6:9 of X\) of the H product is not finite.*X has NaN/inf in 1 row\(s\), first at row 7"
    for executor in (None, client):
        op = CurvatureOperator(bad, "hessian", batch_size=3, executor=executor)
        start = time.monotonic()
        with pytest.raises(ChunkError, match=message):
            op @ np.ones(model.num_params)
        assert time.monotonic() - start < 30
    # the cluster is still fine afterwards
    good = hr.hessian_operator(model, theta, X, y, loss="cross_entropy", batch_size=3)
    v = np.ones(model.num_params)
    with hr.hessian_operator(
        model, theta, X, y, loss="cross_entropy", batch_size=3, executor=client
    ) as op:
        assert np.array_equal(op @ v, serial(good, v))


def test_lost_scheduler_raises_within_timeout(tmp_path):
    """A scheduler process killed mid-product: ConnectionError after scheduler_timeout."""
    file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = None
    try:
        assert wait_for(file.exists, 60)
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(file),
             "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
             "--death-timeout", "10"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = Client(scheduler_file=str(file), timeout=60)
        client.wait_for_workers(1, timeout=60)
        model, theta, X, y = make_case([30, 64, 64, 10], "cross_entropy", N=8000, seed=8)
        op = hr.hessian_operator(
            model, theta, X, y, loss="cross_entropy", batch_size=1000, executor=client
        )
        op.scheduler_timeout = 3.0
        V = np.random.default_rng(9).normal(size=(model.num_params, 8))
        op @ V[:, :1]  # works, and the data are scattered
        with ThreadPoolExecutor(1) as pool:
            product = pool.submit(op.matmat, V)
            assert wait_for(lambda: client.processing() and any(client.processing().values()), 60)
            assert not product.done()
            scheduler.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            with pytest.raises(ConnectionError, match=r"lost the dask scheduler.*3 s"):
                product.result(timeout=60)
            elapsed = time.monotonic() - killed
        assert elapsed < 3.0 + 10.0, elapsed  # the timeout plus slack for a loaded machine
        with pytest.raises(ConnectionError, match="lost the dask scheduler"):
            op @ V[:, 0]  # a new product does not hang either
        client.close(timeout=5)
    finally:
        for proc in (worker, scheduler):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


# --- threads ----------------------------------------------------------------------------------


def test_one_operator_shared_by_threads(cluster):
    _, client = cluster
    model, theta, X, y = make_case([5, 8, 6, 3], "cross_entropy", N=11, seed=10)
    kw = {"loss": "cross_entropy", "batch_size": 3}
    rng = np.random.default_rng(11)
    Vs = [rng.normal(size=(model.num_params, k)) for k in (1, 2, 3) * 4]
    ref = hr.hessian_operator(model, theta, X, y, **kw)
    want = [serial(ref, V) for V in Vs]
    with hr.hessian_operator(model, theta, X, y, executor=client, **kw) as op:
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(op.matmat, Vs))
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
        assert op.num_matvecs == sum(V.shape[1] for V in Vs)
