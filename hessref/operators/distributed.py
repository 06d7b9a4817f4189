"""Curvature products on a ``dask.distributed`` cluster: data sent once, V per product.

Used by :class:`~hessref.operators.CurvatureOperator` when ``executor=`` is a
``dask.distributed.Client`` or its ``client.get_executor()``. dask is optional
(``pip install "hessref[distributed]"``) and hessref never imports it: a client is
recognised by its module name (:func:`dask_client`) and used through its own methods.

Protocol of one product M V (P, K), with the data split into chunks c = 0..n-1:

1. once per operator (and chunking): θ and each chunk's (X_c, y_c) are scattered
   to the cluster, each kept on ``REPLICAS`` workers; the operator holds the futures
   and releases them on :meth:`DistributedChunks.close` or garbage collection;
2. per product: V is scattered (the client sends 8·P·K bytes once; copies to other
   workers go worker to worker), then one task per chunk computes
   p_c = Σ_{i ∈ c} s M_i V on a worker, and a chain of additions
   t_0 = p_0, t_c = t_{c-1} + p_c runs on the workers in chunk order — the same
   additions in the same order as the serial loop, hence the same bits;
3. the client receives t_{n-1} only (8·P·K bytes).

Faults: every task can be recomputed from futures that live on two workers, so a
killed worker costs a recomputation, not the product. If scattered data was lost
anyway (every replica died), the data are scattered again from the operator's copy
and the product is retried, for at most ``timeout`` seconds. An exception in a chunk arrives as
:class:`~hessref.operators.ChunkError` naming the chunk; a non-finite result is found
by the operator's one scan of the sum, which then names the chunk (see
:func:`~hessref.operators.chunks.locate_non_finite`). A product waits for the
scheduler at most ``timeout`` seconds (``CurvatureOperator.scheduler_timeout``,
default :data:`SCHEDULER_TIMEOUT`) once the client has lost its connection, then
raises ``ConnectionError``.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import CancelledError
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hessref.core.kinds import Curvature
from hessref.core.problem import Problem
from hessref.operators.chunks import chunk_matmat

Array = NDArray[np.float64]

#: Seconds a product waits for a lost scheduler connection before ``ConnectionError``.
SCHEDULER_TIMEOUT = 30.0
#: Workers holding a copy of each scattered chunk (fewer if the cluster is smaller).
REPLICAS = 2
_POLL = 0.25  # seconds between checks of the client's connection while waiting


def dask_client(executor: Any) -> Any:
    """The ``distributed.Client`` behind ``executor`` (a Client or its executor), or None."""
    if not type(executor).__module__.startswith("distributed"):
        return None
    if callable(getattr(executor, "scatter", None)) and callable(getattr(executor, "submit", None)):
        return executor
    client = getattr(executor, "_client", None)  # client.get_executor() keeps its client here
    return client if callable(getattr(client, "scatter", None)) else None


def _remote_chunk(
    shared: tuple, data: tuple, V: Array, kind: Curvature, index: int, start: int
) -> Array:
    """Worker side: rebuild the chunk's Problem from the scattered θ and (X_c, y_c), multiply."""
    theta, model, loss, scale = shared
    # arrays rebuilt from dask's frames may sit at byte offsets that are not multiples of
    # 8 (flags.aligned False); NumPy then takes other loops whose round-off differs, so
    # copy those to aligned memory, as the serial product has it: same bits
    theta, X, y, V = (a if a.flags.aligned else a.copy(order="K") for a in (theta, *data, V))
    problem = Problem(model, theta, model._unflatten_unchecked(theta), X, y, loss, scale)
    return chunk_matmat(problem, V, kind, index, start)


def _remote_add(total: Array, part: Array) -> Array:
    """Worker side: t_c = t_{c-1} + p_c (the serial loop's addition, same bits)."""
    return np.add(total, part)


class DistributedChunks:
    """The scattered data of one operator on a dask cluster, and its products.

    Parameters
    ----------
    client : distributed.Client
    problem : Problem
        The full data; kept here so that lost data can be scattered again.
    """

    def __init__(self, client: Any, problem: Problem) -> None:
        self.client = client
        self.problem = problem
        self._lock = threading.Lock()
        self._rows: int | None = None
        self._shared: Any = None
        self._data: list[Any] = []
        self._copies = 1

    def close(self) -> None:
        """Release the scattered data (the workers drop it once no future refers to it)."""
        with self._lock:
            self._release()

    def _release(self) -> None:
        # dropping the futures releases the keys (dask counts references); no cancel,
        # which would also cancel the tasks of products still running in other threads
        self._rows, self._shared, self._data = None, None, []

    def _scattered(self, rows: int) -> tuple[Any, list[Any]]:
        """Futures of (θ, model, loss, s) and of the chunks of ``rows`` rows (scattered once)."""
        with self._lock:
            lost = any(f.status != "finished" for f in [self._shared, *self._data] if f)
            if rows != self._rows or lost:
                self._release()
                chunks = [(c.X, c.y) for c in self.problem.chunks(rows)]
                copies = max(1, min(REPLICAS, len(self.client.scheduler_info()["workers"])))
                p = self.problem
                shared = (p.theta, p.model, p.loss, p.scale)  # one future: θ and small metadata
                [self._shared] = self.client.scatter([shared], broadcast=copies, hash=False)
                self._data = self.client.scatter(chunks, broadcast=copies, hash=False)
                self._rows, self._copies = rows, copies
            return self._shared, list(self._data)

    def product(self, V: Array, kind: Curvature, rows: int, timeout: float) -> Array:
        """M V on the cluster (see the module docstring).

        If scattered data was lost with every copy (the product is cancelled, or a
        connection to a dying worker closes), the data are scattered again from the
        operator's copy and the product is retried, for at most ``timeout`` seconds.
        """
        deadline = None
        while True:
            try:
                return self._product(V, kind, rows, timeout)
            except (CancelledError, OSError) as exc:
                if self.client.status != "running":
                    raise self._lost_scheduler(kind, timeout) from None
                deadline = deadline or time.monotonic() + timeout
                if time.monotonic() > deadline:
                    raise ConnectionError(
                        f"{kind.symbol} product: the cluster lost the operator's data and it "
                        f"could not be sent again within {timeout:g} s (scheduler_timeout): "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                with self._lock:
                    self._release()
                while not self.client.scheduler_info()["workers"]:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(_POLL)

    def _product(self, V: Array, kind: Curvature, rows: int, timeout: float) -> Array:
        self._await_scheduler(kind, timeout)
        shared, data = self._scattered(rows)
        client, N = self.client, self.problem.num_samples
        tag = uuid.uuid4().hex[:12]
        try:
            V_future = client.scatter(V, broadcast=self._copies, hash=False, timeout=timeout)
        except TimeoutError:
            raise self._lost_scheduler(kind, timeout) from None
        total = None
        for index, chunk in enumerate(data):
            start, stop = index * rows, min(index * rows + rows, N)
            name = f"hessref-{kind.symbol}-chunk-{index}-rows-{start}-{stop}-{tag}"
            part = client.submit(
                _remote_chunk, shared, chunk, V_future, kind, index, start, key=name
            )
            if total is not None:
                part = client.submit(_remote_add, total, part, key=f"{name}-sum")
            total = part
        return self._wait(total, kind, timeout)

    def _await_scheduler(self, kind: Curvature, timeout: float) -> None:
        """Return once the client is connected; ``ConnectionError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.client.status != "running":
            if time.monotonic() > deadline:
                raise self._lost_scheduler(kind, timeout)
            time.sleep(_POLL)

    def _wait(self, future: Any, kind: Curvature, timeout: float) -> Array:
        """future.result(), but give up ``timeout`` s after the scheduler connection is lost.

        Waits on a done-callback event, not on ``future.result(timeout=...)``: dask's own
        timeout path can turn a cancellation racing with the timeout into an
        ``UnboundLocalError`` (seen with distributed 2026.8 under load).
        """
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        lost_since = None
        while not done.wait(_POLL):
            if self.client.status == "running":
                lost_since = None
            elif lost_since is None:
                lost_since = time.monotonic()
            elif time.monotonic() - lost_since > timeout:
                future.release()
                raise self._lost_scheduler(kind, timeout)
        return future.result()

    def _lost_scheduler(self, kind: Curvature, timeout: float) -> ConnectionError:
        address = getattr(self.client.scheduler, "address", "?")
        return ConnectionError(
            f"lost the dask scheduler at {address} during an {kind.symbol} product "
            f"(client status {self.client.status!r}; waited {timeout:g} s, the operator's "
            "scheduler_timeout); restart the scheduler and build the operator again"
        )


__all__ = ["REPLICAS", "SCHEDULER_TIMEOUT", "DistributedChunks", "dask_client"]
